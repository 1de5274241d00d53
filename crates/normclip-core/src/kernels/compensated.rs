//! The float64 norm loops: exact squares into compensated sums (see `exact`), in a fixed lane
//! order so that every tier and thread count gives the same bits. `S` is the tier's way to the
//! square's error (a fused multiply-add or Dekker's product); both give the same exact value.
//!
//! Like `generic`, every function is `#[inline(always)]` so each tier compiles its own copy.
//! Accumulators are kept as separate arrays of sums and of errors so the loops vectorise.

use crate::exact::{add_square, Dd, ExactSquare};

/// Independent lanes of a run's sum (4 AVX2 registers of sums and 4 of errors).
const LANES: usize = 16;

/// Adds the column sums of squares of `block` (`rows × cols`) into `sums` (`cols`). `scratch`
/// holds `2 × cols` elements: the running sums, then their errors.
#[inline(always)]
pub fn accumulate_columns<S: ExactSquare>(
    block: &[f64],
    cols: usize,
    scratch: &mut [f64],
    sums: &mut [Dd],
) {
    let (hi, lo) = scratch[..2 * cols].split_at_mut(cols);
    let sums = &mut sums[..cols];
    hi.fill(0.0);
    lo.fill(0.0);
    let mut quads = block.chunks_exact(4 * cols);
    for quad in &mut quads {
        let (r0, rest) = quad.split_at(cols);
        let (r1, rest) = rest.split_at(cols);
        let (r2, r3) = rest.split_at(cols);
        for c in 0..cols {
            let (mut s, mut e) = (hi[c], lo[c]);
            add_square::<S>(&mut s, &mut e, r0[c]);
            add_square::<S>(&mut s, &mut e, r1[c]);
            add_square::<S>(&mut s, &mut e, r2[c]);
            add_square::<S>(&mut s, &mut e, r3[c]);
            hi[c] = s;
            lo[c] = e;
        }
    }
    for row in quads.remainder().chunks_exact(cols) {
        for c in 0..cols {
            add_square::<S>(&mut hi[c], &mut lo[c], row[c]);
        }
    }
    for c in 0..cols {
        sums[c] = sums[c].plus(Dd::new(hi[c], lo[c]));
    }
}

/// [`accumulate_columns`] for narrow rows, read as a flat stream of `period`-lane stripes (lane
/// `j` always holds column `j % cols`). `scratch` holds `2 × period` elements; `lane_sums`
/// (`period`) receives each lane's sum.
#[inline(always)]
pub fn accumulate_narrow<S: ExactSquare>(
    block: &[f64],
    period: usize,
    scratch: &mut [f64],
    lane_sums: &mut [Dd],
) {
    let (hi, lo) = scratch[..2 * period].split_at_mut(period);
    let lane_sums = &mut lane_sums[..period];
    hi.fill(0.0);
    lo.fill(0.0);
    let mut stripes = block.chunks_exact(period);
    for stripe in &mut stripes {
        for j in 0..period {
            add_square::<S>(&mut hi[j], &mut lo[j], stripe[j]);
        }
    }
    for (j, &x) in stripes.remainder().iter().enumerate() {
        add_square::<S>(&mut hi[j], &mut lo[j], x);
    }
    for j in 0..period {
        lane_sums[j] = lane_sums[j].plus(Dd::new(hi[j], lo[j]));
    }
}

/// The sum of squares of one contiguous run.
#[inline(always)]
pub fn sum_squares<S: ExactSquare>(run: &[f64]) -> Dd {
    if run.len() < LANES {
        let (mut s, mut e) = (0.0, 0.0);
        for &x in run {
            add_square::<S>(&mut s, &mut e, x);
        }
        return Dd::new(s, e);
    }
    let mut hi = [0.0f64; LANES];
    let mut lo = [0.0f64; LANES];
    let mut chunks = run.chunks_exact(LANES);
    for chunk in &mut chunks {
        for k in 0..LANES {
            add_square::<S>(&mut hi[k], &mut lo[k], chunk[k]);
        }
    }
    for (k, &x) in chunks.remainder().iter().enumerate() {
        add_square::<S>(&mut hi[k], &mut lo[k], x);
    }
    // A fixed pairwise order: the result depends only on the data.
    let mut lanes = [Dd::ZERO; LANES];
    for k in 0..LANES {
        lanes[k] = Dd::new(hi[k], lo[k]);
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for k in 0..width {
            lanes[k] = lanes[k].plus(lanes[k + width]);
        }
    }
    lanes[0]
}
