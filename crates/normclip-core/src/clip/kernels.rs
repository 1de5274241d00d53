//! The loops the clipping passes need beyond the constraint kernels (which they reuse for sums of
//! squares and plain scaling): L1 and L∞ reductions, TF's `x · c / d` scale, clipping by value and
//! the weighted sum of per-example gradients. Written once, compiled per tier like the core's
//! kernels, chosen with the same [`Tier`].

use crate::element::Element;
use crate::kernels::generic::BLOCK;
use crate::kernels::Tier;

const LANES: usize = 32;

/// Σ|x| in f64: |x| accumulated in the element type over [`BLOCK`] terms per lane, then flushed
/// into f64 (the accuracy scheme of the sums of squares).
#[inline(always)]
fn abs_sum_body<T: Element>(run: &[T]) -> f64 {
    // Multiplying by -1 is an exact negation (Element has no Neg).
    let minus_one = T::from_f64(-1.0);
    let abs = |x: T| if x < T::ZERO { x * minus_one } else { x };
    let mut lanes64 = [0.0f64; LANES];
    let mut blocks = run.chunks_exact(LANES * BLOCK);
    for block in &mut blocks {
        let mut lanes = [T::ZERO; LANES];
        for chunk in block.chunks_exact(LANES) {
            for k in 0..LANES {
                lanes[k] += abs(chunk[k]);
            }
        }
        for k in 0..LANES {
            lanes64[k] += lanes[k].to_f64();
        }
    }
    for (k, &x) in blocks.remainder().iter().enumerate() {
        lanes64[k % LANES] += abs(x).to_f64();
    }
    let mut width = LANES;
    while width > 1 {
        width /= 2;
        for k in 0..width {
            lanes64[k] += lanes64[k + width];
        }
    }
    lanes64[0]
}

/// max|x| and whether any element is NaN (a NaN makes every p-norm NaN, as in PyTorch).
#[inline(always)]
fn abs_max_body<T: Element>(run: &[T]) -> (f64, bool) {
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
fn mul_div_run_body<T: Element>(run: &mut [T], c: T, d: T) {
    for x in run.iter_mut() {
        *x = (*x * c) / d;
    }
}

/// [`mul_div_run_body`] on `rows × cols` with one divisor per column.
#[inline(always)]
fn mul_div_columns_body<T: Element>(block: &mut [T], c: T, divisors: &[T]) {
    let cols = divisors.len();
    for row in block.chunks_exact_mut(cols) {
        for j in 0..cols {
            row[j] = (row[j] * c) / divisors[j];
        }
    }
}

/// `clip(x, lo, hi)`; NaN stays NaN (both comparisons are false), as TF's clip_by_value.
#[inline(always)]
fn clamp_body<T: Element>(run: &mut [T], lo: T, hi: T) {
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
fn weighted_add_body<T: Element>(acc: &mut [f64], x: &[T], factor: f64) {
    for (a, &v) in acc.iter_mut().zip(x) {
        *a += factor * v.to_f64();
    }
}

/// One safe entry point per loop, dispatching on the tier to a copy compiled with its features.
macro_rules! per_tier {
    ($(#[$doc:meta])* $name:ident<$t:ident>($($arg:ident: $ty:ty),*) $(-> $ret:ty)? = $body:ident) => {
        $(#[$doc])*
        pub fn $name<$t: Element>(tier: Tier, $($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2<$t: Element>($($arg: $ty),*) $(-> $ret)? {
                $body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512<$t: Element>($($arg: $ty),*) $(-> $ret)? {
                $body($($arg),*)
            }
            match tier {
                #[cfg(target_arch = "x86_64")]
                // SAFETY: a `Tier` other than Portable reaches here only from `Kernels::for_tier`
                // / `Tier::active`, which checked `is_supported` (avx2 + fma) on this CPU; the
                // clip entry points take the tier from those and re-check it below.
                Tier::Avx2 if tier.is_supported() => unsafe { avx2($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above, for avx512f (checked by `is_supported` in the guard).
                Tier::Avx512 if tier.is_supported() => unsafe { avx512($($arg),*) },
                _ => $body($($arg),*),
            }
        }
    };
}

per_tier!(
    /// Σ|x| of a run, in f64.
    abs_sum<T>(run: &[T]) -> f64 = abs_sum_body
);
per_tier!(
    /// max|x| of a run and whether it holds a NaN.
    abs_max<T>(run: &[T]) -> (f64, bool) = abs_max_body
);
per_tier!(
    /// `x = (x · c) / d` over a run.
    mul_div_run<T>(run: &mut [T], c: T, d: T) = mul_div_run_body
);
per_tier!(
    /// `x = (x · c) / d[column]` over rows of `divisors.len()` columns.
    mul_div_columns<T>(block: &mut [T], c: T, divisors: &[T]) = mul_div_columns_body
);
per_tier!(
    /// `x = clip(x, lo, hi)` over a run.
    clamp<T>(run: &mut [T], lo: T, hi: T) = clamp_body
);
per_tier!(
    /// `acc += factor · x` (f64 accumulator).
    weighted_add<T>(acc: &mut [f64], x: &[T], factor: f64) = weighted_add_body
);
