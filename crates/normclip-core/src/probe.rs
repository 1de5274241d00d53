//! The bandwidth probe both benchmarks compare against: the least work a norm constraint can do —
//! one sum-of-squares pass and one in-place scale pass — as plain loops with enough independent
//! accumulators to run at memory speed, compiled for a given CPU tier.

use crate::kernels::Tier;

const LANES: usize = 64;

#[inline(always)]
fn sum_squares_body(data: &[f32]) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let mut chunks = data.chunks_exact(LANES);
    for chunk in &mut chunks {
        for k in 0..LANES {
            lanes[k] += chunk[k] * chunk[k];
        }
    }
    lanes.iter().sum::<f32>() + chunks.remainder().iter().map(|x| x * x).sum::<f32>()
}

#[inline(always)]
fn scale_body(data: &mut [f32], factor: f32) {
    for x in data.iter_mut() {
        *x *= factor;
    }
}

/// Each probe pass compiled for each tier, dispatched on the tier asked for.
macro_rules! per_tier {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) -> $ret:ty = $body:ident) => {
        $(#[$doc])*
        ///
        /// Panics if this CPU does not support `tier`.
        pub fn $name(tier: Tier, $($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2,fma")]
            fn avx2($($arg: $ty),*) -> $ret {
                $body($($arg),*)
            }
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn avx512($($arg: $ty),*) -> $ret {
                $body($($arg),*)
            }
            assert!(tier.is_supported(), "the probe cannot run {} on this CPU", tier.name());
            match tier {
                Tier::Portable => $body($($arg),*),
                #[cfg(target_arch = "x86_64")]
                // SAFETY: the tier was checked as supported by this CPU just above (avx2 + fma).
                Tier::Avx2 => unsafe { avx2($($arg),*) },
                #[cfg(target_arch = "x86_64")]
                // SAFETY: as above (avx512f; every AVX-512 CPU has avx2 + fma).
                Tier::Avx512 => unsafe { avx512($($arg),*) },
                #[cfg(not(target_arch = "x86_64"))]
                Tier::Avx2 | Tier::Avx512 => unreachable!("is_supported is false off x86-64"),
            }
        }
    };
}

per_tier!(
    /// The probe's read pass alone: the sum of squares (4 B/element).
    sum_squares(data: &[f32]) -> f32 = sum_squares_body
);
per_tier!(
    /// The probe's write pass alone: `data *= factor` in place (8 B/element).
    scale(data: &mut [f32], factor: f32) -> () = scale_body
);

/// Both passes over `data` (multiplying it by `factor`): 12 B/element. Returns the sum of squares.
pub fn two_pass(tier: Tier, data: &mut [f32], factor: f32) -> f32 {
    let sum = sum_squares(tier, data);
    scale(tier, data, factor);
    sum
}

/// [`two_pass`] with the tier the kernels use.
pub fn two_pass_probe(data: &mut [f32], factor: f32) -> f32 {
    two_pass(Tier::active(), data, factor)
}
