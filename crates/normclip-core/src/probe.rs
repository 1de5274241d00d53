//! The bandwidth probe benchmarks compare against: the least work a norm constraint can do — one
//! sum-of-squares pass and one in-place scale pass over the whole buffer, as plain loops with
//! enough independent accumulators to run at memory speed — compiled for the same CPU tier.

use crate::kernels::Tier;

const LANES: usize = 16;

#[inline(always)]
fn sum_then_scale(data: &mut [f32], factor: f32) -> f32 {
    let mut lanes = [0.0f32; LANES];
    let mut chunks = data.chunks_exact(LANES);
    for chunk in &mut chunks {
        for k in 0..LANES {
            lanes[k] += chunk[k] * chunk[k];
        }
    }
    let tail: f32 = chunks.remainder().iter().map(|x| x * x).sum();
    for x in data.iter_mut() {
        *x *= factor;
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn sum_then_scale_avx2(data: &mut [f32], factor: f32) -> f32 {
    sum_then_scale(data, factor)
}

/// Runs the two passes over `data` (multiplying it by `factor`) and returns the sum of squares,
/// with the tier the kernels use.
pub fn two_pass_probe(data: &mut [f32], factor: f32) -> f32 {
    match Tier::active() {
        #[cfg(target_arch = "x86_64")]
        Tier::Avx2 | Tier::Avx512 => {
            // SAFETY: `Tier::active` only returns a tier that this CPU supports, and both imply AVX2+FMA.
            unsafe { sum_then_scale_avx2(data, factor) }
        }
        _ => sum_then_scale(data, factor),
    }
}
