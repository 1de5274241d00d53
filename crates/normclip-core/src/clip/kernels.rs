//! The loops the clipping passes need beyond the constraint kernels (which they reuse for sums of
//! squares and plain scaling): L1 and L∞ reductions, TF's `x · c / d` scale, clipping by value and
//! the weighted sum of per-example gradients. Written once; `kernels/mod.rs` compiles them into
//! every tier's table beside the constraint kernels (`Kernels::abs_sum`, …).

use crate::element::Element;
use crate::kernels::generic::{blocked_lanes, fold_lanes, LANES};

/// Σ|x| in f64: |x| accumulated in the element type over `generic::BLOCK` terms per lane, then flushed
/// into f64 (the accuracy scheme of the sums of squares).
#[inline(always)]
pub fn abs_sum<T: Element>(run: &[T]) -> f64 {
    // Multiplying by -1 is an exact negation (Element has no Neg).
    let minus_one = T::from_f64(-1.0);
    let abs = |x: T| if x < T::ZERO { x * minus_one } else { x };
    let mut lanes64 = [0.0f64; LANES];
    let rest = blocked_lanes(run, &mut lanes64, abs);
    for (k, &x) in rest.iter().enumerate() {
        lanes64[k % LANES] += abs(x).to_f64();
    }
    fold_lanes(lanes64)
}

/// max|x| and whether any element is NaN (a NaN makes every p-norm NaN, as in PyTorch).
#[inline(always)]
pub fn abs_max<T: Element>(run: &[T]) -> (f64, bool) {
    let minus_one = T::from_f64(-1.0);
    let mut lanes = [T::ZERO; LANES];
    let mut nan = [false; LANES];
    let mut chunks = run.chunks_exact(LANES);
    for chunk in &mut chunks {
        for k in 0..LANES {
            let x = chunk[k];
            let a = if x < T::ZERO { x * minus_one } else { x };
            lanes[k] = if a > lanes[k] { a } else { lanes[k] };
            nan[k] |= x.is_nan();
        }
    }
    let mut max = 0.0f64;
    let mut any_nan = false;
    for k in 0..LANES {
        max = max.max(lanes[k].to_f64());
        any_nan |= nan[k];
    }
    for &x in chunks.remainder() {
        max = max.max(x.to_f64().abs());
        any_nan |= x.is_nan();
    }
    (max, any_nan)
}

/// TF's `clip_by_norm` per element, two roundings as TF has them: `(x · c) / d`.
#[inline(always)]
pub fn mul_div_run<T: Element>(run: &mut [T], c: T, d: T) {
    for x in run.iter_mut() {
        *x = (*x * c) / d;
    }
}

/// [`mul_div_run`] on `rows × cols` with one divisor per column.
#[inline(always)]
pub fn mul_div_columns<T: Element>(block: &mut [T], c: T, divisors: &[T]) {
    let cols = divisors.len();
    for row in block.chunks_exact_mut(cols) {
        for j in 0..cols {
            row[j] = (row[j] * c) / divisors[j];
        }
    }
}

/// `clip(x, lo, hi)`; NaN stays NaN (both comparisons are false), as TF's clip_by_value.
#[inline(always)]
pub fn clamp<T: Element>(run: &mut [T], lo: T, hi: T) {
    for x in run.iter_mut() {
        let v = *x;
        *x = if v < lo {
            lo
        } else if v > hi {
            hi
        } else {
            v
        };
    }
}

/// `acc += factor · x` in f64 (the per-example sum is accumulated in f64, rounded once).
#[inline(always)]
pub fn weighted_add<T: Element>(acc: &mut [f64], x: &[T], factor: f64) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += factor * v.to_f64();
    }
}
