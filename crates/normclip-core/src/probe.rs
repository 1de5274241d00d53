//! The bandwidth probe the benchmarks compare against: the least work a norm constraint can do —
//! one sum-of-squares pass and one in-place scale pass — as plain loops with enough independent
//! accumulators to run at memory speed. Benchmark code (cargo feature `probe`): compiled into each
//! tier's kernel table like the kernels themselves, so "% of probe" compares like with like.

use rayon::prelude::*;

use crate::element::Element;
use crate::error::Result;
use crate::kernels::{Kernels, Tier};

const LANES: usize = 64;

#[inline(always)]
pub(crate) fn sum_squares_body<T: Element>(data: &[T]) -> T {
    let mut lanes = [T::ZERO; LANES];
    let mut chunks = data.chunks_exact(LANES);
    for chunk in &mut chunks {
        for k in 0..LANES {
            lanes[k] += chunk[k] * chunk[k];
        }
    }
    let rest = chunks.remainder().iter().fold(T::ZERO, |s, &x| s + x * x);
    lanes.iter().fold(T::ZERO, |s, &x| s + x) + rest
}

#[inline(always)]
pub(crate) fn scale_body<T: Element>(data: &mut [T], factor: T) {
    for x in data.iter_mut() {
        *x = *x * factor;
    }
}

/// The probe's read pass alone: the sum of squares (4 B/element), on `tier`.
pub fn sum_squares(tier: Tier, data: &[f32]) -> Result<f32> {
    Ok((Kernels::for_tier(tier)?.probe_sum_squares)(data))
}

/// The probe's write pass alone: `data *= factor` in place (8 B/element), on `tier`.
pub fn scale(tier: Tier, data: &mut [f32], factor: f32) -> Result<()> {
    (Kernels::for_tier(tier)?.probe_scale)(data, factor);
    Ok(())
}

fn both_passes(kernels: &Kernels<f32>, data: &mut [f32], factor: f32) -> f32 {
    let sum = (kernels.probe_sum_squares)(data);
    (kernels.probe_scale)(data, factor);
    sum
}

/// Both passes over `data` (multiplying it by `factor`): 12 B/element. Returns the sum of squares.
pub fn two_pass(tier: Tier, data: &mut [f32], factor: f32) -> Result<f32> {
    Ok(both_passes(Kernels::for_tier(tier)?, data, factor))
}

/// [`two_pass`] with the tier the kernels use.
pub fn two_pass_probe(data: &mut [f32], factor: f32) -> f32 {
    both_passes(Kernels::active(), data, factor)
}

/// [`two_pass_probe`] on the threads large calls use (`NORMCLIP_THREADS`): each pass cut into one
/// contiguous part per thread, and the sum pass finished before the scale pass starts, as a norm
/// must be before it can be applied. The bound for a multi-threaded call.
pub fn two_pass_probe_parallel(data: &mut [f32], factor: f32) -> f32 {
    let kernels = Kernels::active();
    let part = data.len().div_ceil(crate::parallel::thread_count()).max(1);
    let sum = data
        .par_chunks(part)
        .map(|chunk| (kernels.probe_sum_squares)(chunk))
        .sum();
    data.par_chunks_mut(part)
        .for_each(|chunk| (kernels.probe_scale)(chunk, factor));
    sum
}

/// Deterministic normal data for benchmarks and instruction counts (splitmix64 + Box-Muller):
/// the same values on every machine and run, so counts and outputs compare across builds.
pub fn normal(len: usize, seed: u64, scale: f64) -> Vec<f64> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    (0..len)
        .map(|_| {
            let (u1, u2) = (1.0 - next(), next());
            scale * (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
        })
        .collect()
}
