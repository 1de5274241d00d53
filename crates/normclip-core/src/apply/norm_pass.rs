//! The norm pass: every slice's sum of squares, in the SIMD tier's kernels, and the exact norm of
//! each slice whose sum may have lost bits.

use rayon::prelude::*;

use crate::element::{Element, SquareSum};
use crate::exact::{add_square, Dd, Split};
use crate::kernels::Kernels;
use crate::layout::{Inner, Plan};
use crate::parallel::{reduction_parts, use_threads};
use crate::wide::{pow2, Scaled};

use super::is_plain_norm;

/// Rows narrower than this use the flat-stream kernel (`generic::accumulate_narrow`).
const NARROW_COLUMNS: usize = 32;

/// The norm of every slice into `norms`, with `sums` (zeroed, one per slice) as accumulators.
///
/// Slices whose sum may have lost bits (squares that overflowed or underflowed, and zero sums,
/// which tiny elements can fake) are recomputed exactly ([`exact_norms`]): those exact norms are
/// returned, by slice, with whether any norm is outside the element type's normal range. Keras'
/// own sums overflow there (zeros for the slice from MaxNorm and UnitNorm, NaN from MinMaxNorm)
/// or lose bits: the one place where we deliberately differ from Keras.
pub(super) fn slice_norms<T: Element>(
    data: &[T],
    plan: &Plan,
    kernels: &Kernels<T>,
    sums: &mut [T::Sum],
    norms: &mut [T],
) -> (Vec<(usize, Scaled)>, bool) {
    let group_len = plan.group_len();
    let per_group = plan.slices_per_group();
    for group in 0..plan.groups() {
        let block = &data[group * group_len..(group + 1) * group_len];
        let base = plan.group_base(group);
        let out = &mut sums[base..base + per_group];
        match plan.inner {
            Inner::Columns { rows, cols } => column_sums(block, rows, cols, out, kernels),
            Inner::Runs { runs, run_len } => run_sums(block, runs, run_len, out, kernels),
        }
    }
    if !(kernels.norms_of_sums)(sums, norms) {
        // Every other sum gives a norm in the normal range (see `Element::sum_is_suspect`).
        return (Vec::new(), false);
    }
    let suspects: Vec<usize> = (0..sums.len())
        .filter(|&s| T::sum_is_suspect(sums[s]))
        .collect();
    let recomputed = exact_norms(data, plan, &suspects, kernels);
    let mut abnormal = false;
    for (&slice, &norm) in suspects.iter().zip(&recomputed) {
        norms[slice] = T::from_wide(norm);
        abnormal |= !is_plain_norm(norms[slice]);
    }
    (suspects.into_iter().zip(recomputed).collect(), abnormal)
}

/// The exact norms of the slices `listed` (sorted), as [`Scaled`] values: a first pass finds each
/// slice's largest magnitude, a second sums the squares of its elements scaled by the power of
/// two that brings that magnitude to `[1, 2)` (exact, so no square overflows and none that
/// matters underflows), as a double-double of exact squares. Elements below 2^-484 of the
/// largest weigh less than 2^-968 each: they cannot change the rounded norm.
pub(super) fn exact_norms<T: Element>(
    data: &[T],
    plan: &Plan,
    listed: &[usize],
    kernels: &Kernels<T>,
) -> Vec<Scaled> {
    let (largest, has_nan) = largest_magnitudes(data, plan, listed, kernels);
    let mut norms: Vec<Scaled> = Vec::with_capacity(listed.len());
    // The slots with a finite non-zero largest magnitude, their exponent and 2^-exponent as two
    // exact factors (2^-k alone may not be a double).
    let mut scaled: Vec<(usize, i64, f64, f64)> = Vec::new();
    for slot in 0..listed.len() {
        let max = largest[slot];
        if has_nan[slot] {
            norms.push(Scaled::from_f64(f64::NAN));
            continue;
        }
        // 0 and inf are their own norms; anything else is summed below.
        norms.push(Scaled::from_f64(max));
        if max > 0.0 && max.is_finite() {
            let k = Scaled::from_f64(max).exponent();
            let half = -k / 2;
            scaled.push((slot, k, pow2(half), pow2(-k - half)));
        }
    }
    if scaled.is_empty() {
        return norms; // all-zero (or NaN, or infinite) slices: no second pass
    }
    let sublist: Vec<usize> = scaled.iter().map(|&(slot, ..)| listed[slot]).collect();
    let mut sums = vec![(0.0f64, 0.0f64); scaled.len()];
    walk_slices(data, plan, &sublist, |i, x| {
        let (_, _, a, b) = scaled[i];
        let (sum, comp) = &mut sums[i];
        add_square::<Split>(sum, comp, x.to_f64() * a * b);
    });
    for (&(slot, k, ..), &(sum, comp)) in scaled.iter().zip(&sums) {
        norms[slot] = Scaled::from_f64(Dd::new(sum, comp).sqrt()).scale(k);
    }
    norms
}

/// The largest magnitude of each slice `listed` (sorted), and whether it holds a NaN. Where a
/// group's slices are all listed (a tensor of zeros: every sum is suspect), the SIMD kernels.
fn largest_magnitudes<T: Element>(
    data: &[T],
    plan: &Plan,
    listed: &[usize],
    kernels: &Kernels<T>,
) -> (Vec<f64>, Vec<bool>) {
    let mut largest = vec![0.0f64; listed.len()];
    let mut has_nan = vec![false; listed.len()];
    let group_len = plan.group_len();
    let per_group = plan.slices_per_group();
    let exact_walk =
        |block: &[T], base: usize, slices: &[usize], max: &mut [f64], nan: &mut [bool]| {
            walk_group(block, plan, base, slices, |slot, x| {
                let a = x.to_f64().abs();
                max[slot] = max[slot].max(a);
                nan[slot] |= a.is_nan();
            })
        };
    let mut group_max: Vec<T> = Vec::new();
    let mut flags: Vec<T> = Vec::new();
    for group in 0..plan.groups() {
        let block = &data[group * group_len..(group + 1) * group_len];
        let base = plan.group_base(group);
        let first = listed.partition_point(|&s| s < base);
        let end = listed.partition_point(|&s| s < base + per_group);
        if first == end {
            continue;
        }
        let (max, nan) = (&mut largest[first..end], &mut has_nan[first..end]);
        if end - first < per_group {
            exact_walk(block, base, &listed[first..end], max, nan);
            continue;
        }
        group_max.clear();
        group_max.resize(per_group, T::ZERO);
        flags.clear();
        flags.resize(per_group, T::ZERO);
        match plan.inner {
            Inner::Columns { cols, .. } => {
                (kernels.largest_columns)(block, cols, &mut group_max, &mut flags)
            }
            Inner::Runs { run_len, .. } => {
                for (j, run) in block.chunks_exact(run_len).enumerate() {
                    (group_max[j], flags[j]) = (kernels.largest_run)(run);
                }
            }
        }
        for j in 0..per_group {
            max[j] = max[j].max(group_max[j].to_f64());
        }
        // A flag is NaN where a NaN or an infinity passed: find out which, element by element.
        let flagged: Vec<usize> = (0..per_group).filter(|&j| flags[j].is_nan()).collect();
        if !flagged.is_empty() {
            let slices: Vec<usize> = flagged.iter().map(|&j| base + j).collect();
            let (mut m, mut n) = (vec![0.0; slices.len()], vec![false; slices.len()]);
            exact_walk(block, base, &slices, &mut m, &mut n);
            for (i, &j) in flagged.iter().enumerate() {
                max[j] = max[j].max(m[i]);
                nan[j] |= n[i];
            }
        }
    }
    (largest, has_nan)
}

/// Calls `f(slot, x)` for every element `x` of the slices `listed` (sorted; `slot` is the index in
/// `listed`), group by group in memory order.
pub(super) fn walk_slices<T: Element>(
    data: &[T],
    plan: &Plan,
    listed: &[usize],
    mut f: impl FnMut(usize, T),
) {
    let group_len = plan.group_len();
    let per_group = plan.slices_per_group();
    for group in 0..plan.groups() {
        let block = &data[group * group_len..(group + 1) * group_len];
        let base = plan.group_base(group);
        let first = listed.partition_point(|&s| s < base);
        let end = listed.partition_point(|&s| s < base + per_group);
        if first < end {
            walk_group(block, plan, base, &listed[first..end], |slot, x| {
                f(first + slot, x)
            });
        }
    }
}

/// [`walk_slices`] within one group (`block`, feeding slices from `base`); `listed` holds only
/// slices of this group.
pub(super) fn walk_group<T: Element>(
    block: &[T],
    plan: &Plan,
    base: usize,
    listed: &[usize],
    mut f: impl FnMut(usize, T),
) {
    match plan.inner {
        Inner::Columns { cols, .. } => {
            for row in block.chunks_exact(cols) {
                for (slot, &slice) in listed.iter().enumerate() {
                    f(slot, row[slice - base]);
                }
            }
        }
        Inner::Runs { run_len, .. } => {
            for (slot, &slice) in listed.iter().enumerate() {
                let j = slice - base;
                for &x in &block[j * run_len..(j + 1) * run_len] {
                    f(slot, x);
                }
            }
        }
    }
}

/// The lane period of the flat-stream kernels for rows of `cols` columns, or `None` for rows wide
/// enough to be walked row by row.
pub(super) fn narrow_period(cols: usize) -> Option<usize> {
    if cols >= NARROW_COLUMNS {
        return None;
    }
    // A multiple of `cols` that fills whole vectors (16 f32 lanes) and is at least 64 lanes wide,
    // so enough independent accumulators hide the add latency.
    let lcm = cols / gcd(cols, 16) * 16;
    Some(lcm * 64usize.div_ceil(lcm))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Adds the column sums of squares of `block` (`rows × cols`) into `out`. Large blocks are cut into
/// a fixed number of row ranges (a function of the size only), summed apart and added in order.
fn column_sums<T: Element>(
    block: &[T],
    rows: usize,
    cols: usize,
    out: &mut [T::Sum],
    kernels: &Kernels<T>,
) {
    let parts = reduction_parts(block.len());
    let period = narrow_period(cols);
    if parts == 1 {
        add_column_sums(block, cols, period, out, kernels);
        return;
    }
    let rows_per_part = rows.div_ceil(parts).max(1);
    let part_sums = |part: &[T]| -> Vec<T::Sum> {
        let mut sums = vec![T::Sum::default(); cols];
        add_column_sums(part, cols, period, &mut sums, kernels);
        sums
    };
    let partials: Vec<Vec<T::Sum>> = if use_threads(block.len()) {
        block
            .par_chunks(rows_per_part * cols)
            .map(part_sums)
            .collect()
    } else {
        block.chunks(rows_per_part * cols).map(part_sums).collect()
    };
    for partial in partials {
        for (sum, part) in out.iter_mut().zip(partial) {
            *sum = sum.merge(part);
        }
    }
}

/// Runs `f` on `len` elements set to `zero`: on the stack up to [`STACK_SCRATCH`] (small tensors:
/// no allocation per call, and a small one zeroes only a small buffer), else on the heap.
fn with_scratch<E: Copy, R>(len: usize, zero: E, f: impl FnOnce(&mut [E]) -> R) -> R {
    /// Scratch up to this many elements lives on the stack.
    const STACK_SCRATCH: usize = 512;
    const SMALL_SCRATCH: usize = 64;
    if len <= SMALL_SCRATCH {
        f(&mut [zero; SMALL_SCRATCH][..len])
    } else if len <= STACK_SCRATCH {
        f(&mut [zero; STACK_SCRATCH][..len])
    } else {
        f(&mut vec![zero; len])
    }
}

/// Adds the column sums of squares of `block` into `sums` (`cols`).
fn add_column_sums<T: Element>(
    block: &[T],
    cols: usize,
    period: Option<usize>,
    sums: &mut [T::Sum],
    kernels: &Kernels<T>,
) {
    let per_column = T::SCRATCH_PER_COLUMN;
    match period {
        Some(period) => with_scratch(period * per_column, T::ZERO, |scratch| {
            with_scratch(period, T::Sum::default(), |lanes| {
                (kernels.accumulate_narrow)(block, period, scratch, lanes);
                for (j, &lane) in lanes.iter().enumerate() {
                    sums[j % cols] = sums[j % cols].merge(lane);
                }
            })
        }),
        None => with_scratch(cols * per_column, T::ZERO, |scratch| {
            (kernels.accumulate_columns)(block, cols, scratch, sums)
        }),
    }
}

/// Adds the sum of squares of each run of `block` (`runs × run_len`) into `out`.
fn run_sums<T: Element>(
    block: &[T],
    runs: usize,
    run_len: usize,
    out: &mut [T::Sum],
    kernels: &Kernels<T>,
) {
    if runs == 1 {
        // One long run: fixed parts, summed apart and added in order.
        let parts = reduction_parts(run_len);
        if parts == 1 {
            out[0] = out[0].merge((kernels.sum_squares)(block));
            return;
        }
        let part_len = run_len.div_ceil(parts);
        let partials: Vec<T::Sum> = if use_threads(run_len) {
            block
                .par_chunks(part_len)
                .map(|part| (kernels.sum_squares)(part))
                .collect()
        } else {
            block
                .chunks(part_len)
                .map(|part| (kernels.sum_squares)(part))
                .collect()
        };
        let total = partials
            .iter()
            .fold(T::Sum::default(), |total, &part| total.merge(part));
        out[0] = out[0].merge(total);
    } else if use_threads(block.len()) {
        out.par_iter_mut()
            .zip(block.par_chunks(run_len))
            .for_each(|(sum, run)| *sum = sum.merge((kernels.sum_squares)(run)));
    } else {
        for (sum, run) in out.iter_mut().zip(block.chunks_exact(run_len)) {
            *sum = sum.merge((kernels.sum_squares)(run));
        }
    }
}
