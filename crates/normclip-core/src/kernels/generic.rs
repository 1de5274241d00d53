//! The loops themselves, written once in portable Rust and generic over the element type.
//!
//! They are `#[inline(always)]` so that each tier in `kernels/mod.rs` compiles its own copy inside a
//! `#[target_feature]` function: the same source becomes SSE2, AVX2 or AVX-512 code.
//!
//! Accuracy (the float32 norm loops; float64 norms use `compensated`): squares are accumulated in
//! float32 across at most [`BLOCK`] terms per lane, then flushed into `f64`. That keeps the vector
//! loop as fast as a plain sum while every norm stays within 2 ulp of the correctly rounded value,
//! even for one norm over 16M elements (a single f32 accumulator is off by 1e-2 there). There is no
//! fused multiply-add: `x * x + acc` rounds the same way in every tier, so every tier returns
//! bit-identical results.

use crate::element::Element;

/// Terms per lane accumulated in the element type before a flush into `f64`.
pub const BLOCK: usize = 16;
/// Independent lanes of the horizontal sums (4 AVX2 registers of f32, enough to hide add latency).
pub const LANES: usize = 32;

/// Columns summed together in registers by [`accumulate_columns`]: 4 AVX2 vectors of f32 (2 of
/// AVX-512, 8 of SSE2). Two tiles go in one pass where the row has them (8 AVX2 accumulators
/// and the squares in flight still fit the 16 registers), which halves the loop and set-up cost
/// per column.
pub const TILE: usize = 32;
/// Up to this many columns a block's rows are walked tile by tile; wider rows row by row (see
/// [`accumulate_columns`]). Measured on AMD Zen 4 (cargo bench, MaxNorm in place, % of the
/// same-run probe, median of 3 interleaved runs): tiles lift [3,3,256,256] over [0,1,2] from 71%
/// to 76% (compliant weights 54% -> 65%) and [784,512] from 66% to 70%, but at 4096 columns the
/// 16 rows a tile reads at once (16 KiB apart) cost more than the scratch traffic they save
/// (compliant 70% -> 61%).
pub const TILED_MAX_COLUMNS: usize = 1024;

/// Adds the column sums of squares of `block` (`rows × cols`, row-major) into `sums` (`cols`).
/// `scratch` holds at least `cols` elements.
///
/// Every column is summed the same way whatever the path: squares in the element type, four rows
/// at a time as `(r0² + r1²) + (r2² + r3²)`, then the left-over rows one by one, across at most
/// [`BLOCK`] rows, then flushed into the f64 sum. The tiled path keeps a tile's partial sums in
/// registers for a whole block (one read of each element, one f64 update per column per block);
/// the row path keeps them in `scratch` (a load and a store of it per four rows).
#[inline(always)]
pub fn accumulate_columns<T: Element>(
    block: &[T],
    cols: usize,
    scratch: &mut [T],
    sums: &mut [f64],
) {
    let sums = &mut sums[..cols];
    let tiled = if cols <= TILED_MAX_COLUMNS {
        cols - cols % TILE
    } else {
        0
    };
    for rows in block.chunks(BLOCK * cols) {
        // Two tiles per pass where they fit: the loop and set-up costs are paid once for both.
        let mut first = 0;
        while first + 2 * TILE <= tiled {
            accumulate_tile::<T, { 2 * TILE }>(
                rows,
                cols,
                first,
                &mut sums[first..first + 2 * TILE],
            );
            first += 2 * TILE;
        }
        if first < tiled {
            accumulate_tile::<T, TILE>(rows, cols, first, &mut sums[first..first + TILE]);
        }
        if tiled < cols {
            accumulate_rows(
                rows,
                cols,
                tiled,
                &mut scratch[tiled..cols],
                &mut sums[tiled..],
            );
        }
    }
}

/// Columns `first..first + W` of at most [`BLOCK`] rows, summed in registers.
#[inline(always)]
fn accumulate_tile<T: Element, const W: usize>(
    rows: &[T],
    cols: usize,
    first: usize,
    sums: &mut [f64],
) {
    assert!(first + W <= cols && sums.len() >= W);
    // Each row is `cols` long, so with the assert above every tile is in bounds: the loops carry
    // no checks, and the rows are split off with `split_at` (no division per tile).
    let tile = |row: &[T]| -> [T; W] {
        let mut out = [T::ZERO; W];
        out.copy_from_slice(&row[first..first + W]);
        out
    };
    let mut acc = [T::ZERO; W];
    let mut rest = rows;
    while rest.len() >= 4 * cols {
        let (r0, tail) = rest.split_at(cols);
        let (r1, tail) = tail.split_at(cols);
        let (r2, tail) = tail.split_at(cols);
        let (r3, tail) = tail.split_at(cols);
        rest = tail;
        let (r0, r1, r2, r3) = (tile(r0), tile(r1), tile(r2), tile(r3));
        for c in 0..W {
            acc[c] += (r0[c] * r0[c] + r1[c] * r1[c]) + (r2[c] * r2[c] + r3[c] * r3[c]);
        }
    }
    while rest.len() >= cols {
        let (r0, tail) = rest.split_at(cols);
        rest = tail;
        let r0 = tile(r0);
        for c in 0..W {
            acc[c] += r0[c] * r0[c];
        }
    }
    for c in 0..W {
        sums[c] += acc[c].to_f64();
    }
}

/// Columns `first..cols` of at most [`BLOCK`] rows, row by row through `scratch`
/// (`cols - first` elements).
#[inline(always)]
fn accumulate_rows<T: Element>(
    rows: &[T],
    cols: usize,
    first: usize,
    scratch: &mut [T],
    sums: &mut [f64],
) {
    let width = cols - first;
    let (scratch, sums) = (&mut scratch[..width], &mut sums[..width]);
    scratch.fill(T::ZERO);
    let mut quads = rows.chunks_exact(4 * cols);
    for quad in &mut quads {
        let (r0, rest) = quad.split_at(cols);
        let (r1, rest) = rest.split_at(cols);
        let (r2, r3) = rest.split_at(cols);
        let (r0, r1, r2, r3) = (&r0[first..], &r1[first..], &r2[first..], &r3[first..cols]);
        for c in 0..width {
            scratch[c] += (r0[c] * r0[c] + r1[c] * r1[c]) + (r2[c] * r2[c] + r3[c] * r3[c]);
        }
    }
    for row in quads.remainder().chunks_exact(cols) {
        let row = &row[first..];
        for c in 0..width {
            scratch[c] += row[c] * row[c];
        }
    }
    for c in 0..width {
        sums[c] += scratch[c].to_f64();
    }
}

/// The same as [`accumulate_columns`] for narrow rows (few columns): the block is read as a flat
/// stream and accumulated into `period` lanes (a multiple of `cols`, so lane `j` always holds
/// column `j % cols`), which keeps whole vectors busy when a row is shorter than a vector.
/// `scratch` and `lane_sums` hold at least `period` elements; the caller folds `lane_sums` into
/// per-column sums.
#[inline(always)]
pub fn accumulate_narrow<T: Element>(
    block: &[T],
    period: usize,
    scratch: &mut [T],
    lane_sums: &mut [f64],
) {
    let scratch = &mut scratch[..period];
    let lane_sums = &mut lane_sums[..period];
    let mut chunks = block.chunks_exact(period * BLOCK);
    for chunk in &mut chunks {
        scratch.fill(T::ZERO);
        for stripe in chunk.chunks_exact(period) {
            for j in 0..period {
                scratch[j] += stripe[j] * stripe[j];
            }
        }
        for j in 0..period {
            lane_sums[j] += scratch[j].to_f64();
        }
    }
    for (j, &x) in chunks.remainder().iter().enumerate() {
        lane_sums[j % period] += x.to_f64() * x.to_f64();
    }
}

/// Adds `term(x)` of every element of the whole `LANES × BLOCK` blocks of `run` into `lanes64`:
/// accumulated in the element type across [`BLOCK`] terms per lane, then flushed into f64.
/// Returns what is left after the last whole block.
#[inline(always)]
pub fn blocked_lanes<'a, T: Element>(
    run: &'a [T],
    lanes64: &mut [f64; LANES],
    term: impl Fn(T) -> T,
) -> &'a [T] {
    let mut blocks = run.chunks_exact(LANES * BLOCK);
    for block in &mut blocks {
        let mut lanes = [T::ZERO; LANES];
        for chunk in block.chunks_exact(LANES) {
            for k in 0..LANES {
                lanes[k] += term(chunk[k]);
            }
        }
        for k in 0..LANES {
            lanes64[k] += lanes[k].to_f64();
        }
    }
    blocks.remainder()
}

/// The lanes' total in a fixed pairwise order: the result depends only on the data, never on
/// the caller.
#[inline(always)]
pub fn fold_lanes(mut lanes64: [f64; LANES]) -> f64 {
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for k in 0..width {
            lanes64[k] += lanes64[k + width];
        }
    }
    lanes64[0]
}

/// Sum of squares of one contiguous run.
#[inline(always)]
pub fn sum_squares<T: Element>(run: &[T]) -> f64 {
    sum_squares_by(run, |run, lanes64| blocked_lanes(run, lanes64, |x| x * x))
}

/// [`sum_squares`] with its whole blocks summed by `blocked` (what `blocked_lanes` does with
/// squares; a tier may bring its own loop for it, which must add the same terms in the same order).
#[inline(always)]
pub fn sum_squares_by<'a, T: Element>(
    run: &'a [T],
    blocked: impl FnOnce(&'a [T], &mut [f64; LANES]) -> &'a [T],
) -> f64 {
    if run.len() < LANES {
        // Too short for the lanes to pay: exact f64 squares, in order.
        return run
            .iter()
            .fold(0.0, |sum, &x| sum + x.to_f64() * x.to_f64());
    }
    let mut lanes64 = [0.0f64; LANES];
    let rest = blocked(run, &mut lanes64);
    let mut chunks = rest.chunks_exact(LANES);
    if chunks.len() > 0 {
        // (Without a whole chunk the lanes would add +0.0 each: nothing, a sum of squares is
        // never -0. Short runs skip that work.)
        let mut lanes = [T::ZERO; LANES];
        for chunk in &mut chunks {
            for k in 0..LANES {
                lanes[k] += chunk[k] * chunk[k];
            }
        }
        for k in 0..LANES {
            lanes64[k] += lanes[k].to_f64();
        }
    }
    for (k, &x) in chunks.remainder().iter().enumerate() {
        lanes64[k] += x.to_f64() * x.to_f64();
    }
    fold_lanes(lanes64)
}

/// Each slice's norm from its sum of squares into `norms`; whether any sum is suspect (may have
/// lost bits: `Element::sum_is_suspect`). One pass the tier vectorizes (IEEE square roots: the
/// same bits in every tier).
#[inline(always)]
pub fn norms_of_sums<T: Element>(sums: &[T::Sum], norms: &mut [T]) -> bool {
    let mut suspect = false;
    for (norm, &sum) in norms.iter_mut().zip(sums) {
        *norm = T::norm_of_sum(sum);
        suspect |= T::sum_is_suspect(sum);
    }
    suspect
}

/// The largest magnitude of each column of `block` (`rows × cols`) into `largest` (`cols`, running
/// maxima), and `flags[c] += |x| · 0` for each element: 0 unless a NaN or an infinity passed. For
/// the slices whose sums are suspect (a zero tensor makes every one suspect).
#[inline(always)]
pub fn largest_columns<T: Element>(block: &[T], cols: usize, largest: &mut [T], flags: &mut [T]) {
    let largest = &mut largest[..cols];
    let flags = &mut flags[..cols];
    for row in block.chunks_exact(cols) {
        for c in 0..cols {
            let a = row[c].abs();
            largest[c] = if a > largest[c] { a } else { largest[c] };
            flags[c] += a * T::ZERO;
        }
    }
}

/// [`largest_columns`] for one contiguous run: `(largest magnitude, flag)`.
#[inline(always)]
pub fn largest_run<T: Element>(run: &[T]) -> (T, T) {
    let mut largest = [T::ZERO; LANES];
    let mut flags = [T::ZERO; LANES];
    let mut chunks = run.chunks_exact(LANES);
    for chunk in &mut chunks {
        for k in 0..LANES {
            let a = chunk[k].abs();
            largest[k] = if a > largest[k] { a } else { largest[k] };
            flags[k] += a * T::ZERO;
        }
    }
    for (k, &x) in chunks.remainder().iter().enumerate() {
        let a = x.abs();
        largest[k] = if a > largest[k] { a } else { largest[k] };
        flags[k] += a * T::ZERO;
    }
    let max = largest
        .iter()
        .fold(T::ZERO, |m, &a| if a > m { a } else { m });
    let flag = flags.iter().fold(T::ZERO, |f, &x| f + x);
    (max, flag)
}

/// What the scale pass does with an element and its slice's value: `constraint::Scale` chosen at
/// compile time, one kernel per operation.
pub trait ScaleOp: Copy + Send + Sync + 'static {
    fn apply<T: Element>(x: T, value: T) -> T;
}

/// `x * factor` (MaxNorm, MinMaxNorm).
#[derive(Clone, Copy)]
pub struct Multiply;
/// `x / divisor` (UnitNorm: Keras divides, and so do we, to match it to the last bit).
#[derive(Clone, Copy)]
pub struct Divide;

impl ScaleOp for Multiply {
    #[inline(always)]
    fn apply<T: Element>(x: T, value: T) -> T {
        x * value
    }
}

impl ScaleOp for Divide {
    #[inline(always)]
    fn apply<T: Element>(x: T, value: T) -> T {
        x / value
    }
}

/// Rows of a block scaled together by [`scale_columns`]: each tile of values, loaded into
/// registers once, serves this many rows (few enough streams for the prefetchers).
const SCALE_ROWS: usize = 4;

/// Every row of `block` (`cols` wide) combined element-wise with `values` (`cols`).
///
/// Rows go [`SCALE_ROWS`] at a time, [`TILE`] columns at a time: a tile's values stay in registers
/// for its rows (a load, an operation and a store per vector, and a value load per
/// `SCALE_ROWS` vectors), then the columns past the last whole tile. Every element gets
/// `Op::apply(x, value)` once, in any order: the same bits as a row-by-row loop.
#[inline(always)]
pub fn scale_columns<T: Element, Op: ScaleOp>(block: &mut [T], cols: usize, values: &[T]) {
    let values = &values[..cols];
    let tiled = cols - cols % TILE;
    let mut groups = block.chunks_exact_mut(SCALE_ROWS * cols);
    for group in &mut groups {
        let (r0, rest) = group.split_at_mut(cols);
        let (r1, rest) = rest.split_at_mut(cols);
        let (r2, r3) = rest.split_at_mut(cols);
        let (tiles, _) = values.as_chunks::<TILE>();
        let (x0, _) = r0.as_chunks_mut::<TILE>();
        let (x1, _) = r1.as_chunks_mut::<TILE>();
        let (x2, _) = r2.as_chunks_mut::<TILE>();
        let (x3, _) = r3.as_chunks_mut::<TILE>();
        let n = tiles.len();
        assert!(x0.len() == n && x1.len() == n && x2.len() == n && x3.len() == n);
        for i in 0..n {
            // Four calls, not a loop over the rows: a loop over an array of row references
            // is left rolled in some builds (the addon's LTO build kept the four pointers on
            // the stack and reloaded one per row).
            let tile = &tiles[i];
            scale_tile::<T, Op>(&mut x0[i], tile);
            scale_tile::<T, Op>(&mut x1[i], tile);
            scale_tile::<T, Op>(&mut x2[i], tile);
            scale_tile::<T, Op>(&mut x3[i], tile);
        }
        if tiled < cols {
            let rest = &values[tiled..];
            for row in [r0, r1, r2, r3] {
                for (x, &value) in row[tiled..].iter_mut().zip(rest) {
                    *x = Op::apply(*x, value);
                }
            }
        }
    }
    for row in groups.into_remainder().chunks_exact_mut(cols) {
        for c in 0..cols {
            row[c] = Op::apply(row[c], values[c]);
        }
    }
}

/// One tile of a row combined with its values.
#[inline(always)]
fn scale_tile<T: Element, Op: ScaleOp>(x: &mut [T; TILE], values: &[T; TILE]) {
    for c in 0..TILE {
        x[c] = Op::apply(x[c], values[c]);
    }
}

/// Every `period`-long stripe of `block` combined with `pattern` (`values` repeated to `period`).
#[inline(always)]
pub fn scale_narrow<T: Element, Op: ScaleOp>(block: &mut [T], pattern: &[T]) {
    let period = pattern.len();
    let mut stripes = block.chunks_exact_mut(period);
    for stripe in &mut stripes {
        for j in 0..period {
            stripe[j] = Op::apply(stripe[j], pattern[j]);
        }
    }
    for (x, &value) in stripes.into_remainder().iter_mut().zip(pattern) {
        *x = Op::apply(*x, value);
    }
}

/// One run combined with one value.
#[inline(always)]
pub fn scale_run<T: Element, Op: ScaleOp>(run: &mut [T], value: T) {
    for x in run.iter_mut() {
        *x = Op::apply(*x, value);
    }
}

/// Keras 3's `maximum(w, 0)`: negatives and -0 become +0, NaN stays NaN (checked against Keras 3
/// on its numpy, jax and tensorflow backends).
#[inline(always)]
pub fn non_negative<T: Element>(values: &mut [T]) {
    for x in values.iter_mut() {
        if *x <= T::ZERO {
            *x = T::ZERO;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The tiled path sums every column in the order the row path does: the same bits.
    #[test]
    fn tiles_and_rows_give_the_same_bits() {
        let mut state = 7u64;
        let mut next = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
        };
        for cols in [32, 33, 63, 64, 100, 1024, 1025] {
            for rows in [1, 3, 4, 5, 15, 16, 17, 37] {
                let block: Vec<f32> = (0..rows * cols).map(|_| next()).collect();
                let (mut tiled, mut by_rows) = (vec![0.25f64; cols], vec![0.25f64; cols]);
                let mut scratch = vec![0.0f32; cols];
                accumulate_columns(&block, cols, &mut scratch, &mut tiled);
                for part in block.chunks(BLOCK * cols) {
                    accumulate_rows(part, cols, 0, &mut scratch, &mut by_rows);
                }
                let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&tiled), bits(&by_rows), "{rows} x {cols}");
            }
        }
    }
}
