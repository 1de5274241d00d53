//! Norms of whole tensors, of per-example segments and of slices along axes, in f64.
//!
//! Sums of squares go through the constraint kernels (`Kernels::sum_squares`,
//! `Kernels::accumulate_columns`: element-type blocks of 16 terms flushed into f64). A sum that
//! overflowed or may have lost bits to underflow is recomputed by [`exact_l2`], scaled by the
//! largest magnitude, so a norm is accurate over the whole element range (f32 and f64) and is
//! infinite only when an element is. Large tensors are cut into parts that depend on the length
//! only, so results are bit-identical whatever the thread count.

use rayon::prelude::*;

use crate::element::{Element, SquareSum};
use crate::kernels::Kernels;
use crate::layout::{Inner, Plan};
use crate::parallel::{reduction_parts, use_threads};

/// Which p-norm (PyTorch's `norm_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormType {
    L1,
    L2,
    Inf,
}

/// Below this an f32 sum of squares may have lost bits (squares of |x| < 1e-19 are denormal).
const TINY_SUM_F32: f64 = 8.077935669463161e-28; // 2^-90
/// The same for f64 sums (squares of |x| < 1.5e-154 are denormal).
const TINY_SUM_F64: f64 = 1.2882297539194267e-231; // 2^-766

fn tiny_sum<T: Element>() -> f64 {
    if T::SQUARES_CAN_OVERFLOW {
        TINY_SUM_F32
    } else {
        TINY_SUM_F64
    }
}

/// Runs `f` on the fixed parts of `data` and folds the results in order.
fn over_parts<T: Element, R: Send>(
    data: &[T],
    f: impl Fn(&[T]) -> R + Sync + Send,
    fold: impl Fn(R, R) -> R,
) -> Option<R> {
    let parts = reduction_parts(data.len());
    if parts == 1 {
        return Some(f(data));
    }
    let part_len = data.len().div_ceil(parts);
    let partials: Vec<R> = if use_threads(data.len()) {
        data.par_chunks(part_len).map(&f).collect()
    } else {
        data.chunks(part_len).map(&f).collect()
    };
    partials.into_iter().reduce(fold)
}

/// The L2 norm of a contiguous run.
pub fn l2_norm<T: Element>(data: &[T], k: &Kernels<T>) -> f64 {
    let sum = over_parts(data, |part| (k.sum_squares)(part).to_f64(), |a, b| a + b).unwrap_or(0.0);
    if sum.is_nan() {
        return f64::NAN;
    }
    if sum >= tiny_sum::<T>() && sum < f64::INFINITY {
        return sum.sqrt();
    }
    if sum == 0.0 && data.is_empty() {
        return 0.0;
    }
    exact_l2(data)
}

/// The L2 norm as `m · sqrt(Σ (x/m)²)` with `m = max|x|`: no overflow or underflow anywhere in the
/// range. The rare path (sums that overflowed or are tiny), so plain scalar loops.
pub fn exact_l2<T: Element>(data: &[T]) -> f64 {
    let mut max = 0.0f64;
    for &x in data {
        let a = x.to_f64().abs();
        if a.is_nan() {
            return f64::NAN;
        }
        max = max.max(a);
    }
    if max == 0.0 || max == f64::INFINITY {
        return max;
    }
    let mut sum = 0.0f64;
    for &x in data {
        let r = x.to_f64() / max;
        sum += r * r;
    }
    max * sum.sqrt()
}

/// The p-norm of a contiguous run, in f64. NaN if an element is NaN.
pub fn norm<T: Element>(data: &[T], p: NormType, k: &Kernels<T>) -> f64 {
    match p {
        NormType::L2 => l2_norm(data, k),
        NormType::L1 => {
            let sum = over_parts(data, |part| (k.abs_sum)(part), |a, b| a + b).unwrap_or(0.0);
            if sum == f64::INFINITY {
                // Only f64 elements near the top of the range get here; their sum is infinite.
                data.iter().fold(0.0, |s, &x| s + x.to_f64().abs())
            } else {
                sum
            }
        }
        NormType::Inf => {
            let (max, nan) = over_parts(
                data,
                |part| (k.abs_max)(part),
                |(a, na), (b, nb)| (a.max(b), na | nb),
            )
            .unwrap_or((0.0, false));
            if nan {
                f64::NAN
            } else {
                max
            }
        }
    }
}

/// The p-norm of a list of norms (PyTorch's total norm: `vector_norm(stack(norms), p)`), and TF's
/// global norm for p = 2 — without overflow for L2 (scaled by the largest norm when needed).
pub fn combine(norms: &[f64], p: NormType) -> f64 {
    if norms.iter().any(|n| n.is_nan()) {
        return f64::NAN;
    }
    match p {
        NormType::L1 => norms.iter().sum(),
        NormType::Inf => norms.iter().fold(0.0, |m, &n| m.max(n)),
        NormType::L2 => {
            let max = norms.iter().fold(0.0f64, |m, &n| m.max(n));
            if max == 0.0 || max == f64::INFINITY {
                return max;
            }
            if max < 1e150 && norms.iter().all(|&n| n == 0.0 || n > 1e-150) {
                norms.iter().map(|n| n * n).sum::<f64>().sqrt()
            } else {
                max * norms
                    .iter()
                    .map(|n| (n / max) * (n / max))
                    .sum::<f64>()
                    .sqrt()
            }
        }
    }
}

/// The L2 norm of every slice of `data` along the axes of `plan`, into `norms` (one per slice).
/// `data` must not be empty (an empty tensor has nothing to clip, and its slice count may be huge).
pub fn slice_l2_norms<T: Element>(data: &[T], plan: &Plan, k: &Kernels<T>, norms: &mut [f64]) {
    debug_assert!(!data.is_empty() && norms.len() == plan.slices);
    let group_len = plan.group_len();
    let per_group = plan.slices_per_group();
    norms.fill(0.0);
    match plan.inner {
        Inner::Runs { run_len, .. } if plan.groups() == 1 && per_group == 1 => {
            // One slice, one run: the whole-tensor path (parts, threads, exact recheck).
            norms[0] = l2_norm(&data[..run_len], k);
            return;
        }
        _ => {}
    }
    let mut scratch = match plan.inner {
        Inner::Columns { cols, .. } => vec![T::ZERO; cols * T::SCRATCH_PER_COLUMN],
        Inner::Runs { .. } => Vec::new(),
    };
    // Sums first (in the element type's accumulator, then `norms`), square roots after.
    let mut all_sums = vec![T::Sum::default(); plan.slices];
    for (group, block) in data.chunks_exact(group_len).enumerate() {
        let base = plan.group_base(group);
        let sums = &mut all_sums[base..base + per_group];
        match plan.inner {
            Inner::Columns { cols, .. } => (k.accumulate_columns)(block, cols, &mut scratch, sums),
            Inner::Runs { run_len, .. } => {
                for (sum, run) in sums.iter_mut().zip(block.chunks_exact(run_len)) {
                    *sum = sum.merge((k.sum_squares)(run));
                }
            }
        }
    }
    for (norm, sum) in norms.iter_mut().zip(all_sums) {
        *norm = sum.to_f64();
    }
    let tiny = tiny_sum::<T>();
    let suspect = |sum: f64| !(sum.is_nan() || (sum >= tiny && sum < f64::INFINITY));
    let suspects: Vec<bool> = if norms.iter().any(|&sum| suspect(sum)) {
        norms.iter().map(|&sum| suspect(sum)).collect()
    } else {
        Vec::new()
    };
    for value in norms.iter_mut() {
        *value = value.sqrt();
    }
    if !suspects.is_empty() {
        exact_slice_norms(data, plan, &suspects, norms);
    }
}

/// [`exact_l2`] for the `suspects` slices, written into `norms`: two walks over the tensor (the
/// largest magnitude of each slice, then the scaled sums). Rare: only slices whose sum overflowed
/// or is tiny get here.
fn exact_slice_norms<T: Element>(data: &[T], plan: &Plan, suspects: &[bool], norms: &mut [f64]) {
    let mut max = vec![0.0f64; plan.slices];
    let mut nan = vec![false; plan.slices];
    for (&x, slice) in data.iter().zip(slice_of_each(plan, data.len())) {
        if suspects[slice] {
            let a = x.to_f64().abs();
            nan[slice] |= a.is_nan();
            max[slice] = max[slice].max(a);
        }
    }
    let mut scaled = vec![0.0f64; plan.slices];
    for (&x, slice) in data.iter().zip(slice_of_each(plan, data.len())) {
        let m = max[slice];
        if suspects[slice] && m > 0.0 && m < f64::INFINITY {
            let r = x.to_f64() / m;
            scaled[slice] += r * r;
        }
    }
    for slice in 0..plan.slices {
        if suspects[slice] {
            let m = max[slice];
            norms[slice] = if nan[slice] {
                f64::NAN
            } else if m == 0.0 || m == f64::INFINITY {
                m
            } else {
                m * scaled[slice].sqrt()
            };
        }
    }
}

/// The slice of each element, in memory order: the slow, general walk, zipped with the data
/// (rare paths only: it works out every element's slice on its own).
pub(super) fn slice_of_each(plan: &Plan, len: usize) -> impl Iterator<Item = usize> + '_ {
    let group_len = plan.group_len();
    let groups = len.checked_div(group_len).unwrap_or(0);
    (0..groups).flat_map(move |group| {
        let base = plan.group_base(group);
        (0..group_len).map(move |offset| match plan.inner {
            Inner::Columns { cols, .. } => base + offset % cols,
            Inner::Runs { run_len, .. } => base + offset / run_len,
        })
    })
}
