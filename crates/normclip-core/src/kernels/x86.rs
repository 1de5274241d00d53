//! Loops written with x86 intrinsics where LLVM's vectorisation of the generic code proved
//! unreliable. Each does exactly the arithmetic of its generic loop, in the same order: the same
//! bits, which the reference tests check tier against tier.

use std::arch::x86_64::{
    __m256, __m256d, _mm256_add_pd, _mm256_add_ps, _mm256_castps256_ps128, _mm256_cvtps_pd,
    _mm256_extractf128_ps, _mm256_loadu_pd, _mm256_loadu_ps, _mm256_mul_ps, _mm256_setzero_ps,
    _mm256_storeu_pd,
};

use super::generic::{BLOCK, LANES};

const _: () = assert!(LANES == 32, "four vectors of eight float32 lanes");

/// What `generic::sum_squares` does before its last < [`LANES`] elements, for float32: lane
/// `k`'s squares added in float32 over [`BLOCK`] chunks of [`LANES`] (fewer in the last block),
/// then the lane added to `lanes64[k]`. Returns the elements after the last whole chunk; the
/// generic code then adds its (empty) partial lanes, +0.0 each (a sum of squares is never -0),
/// and those last elements.
///
/// Why by hand: the generic loop is vectorised by LLVM's SLP pass, and in the addon's build it
/// came out uneven (lanes in one 4-wide, six 2-wide and two 8-wide groups, the f64 lanes on the
/// stack): a `[16M]` norm pass took 4.3 ms where the same source in another build took 3.0
/// (Intel Xeon, Sapphire Rapids-class, AVX-512 tier). Four accumulators of eight lanes and eight
/// f64 accumulators fit AVX2's sixteen registers.
///
/// # Safety
/// The CPU supports AVX2.
#[target_feature(enable = "avx2")]
pub unsafe fn blocked_squares<'a>(run: &'a [f32], lanes64: &mut [f64; LANES]) -> &'a [f32] {
    let wide = lanes64.as_mut_ptr();
    // SAFETY: `lanes64` holds 32 f64s: quarters 0..8 each cover 4 of them.
    let mut sums: [__m256d; 8] =
        std::array::from_fn(|q| unsafe { _mm256_loadu_pd(wide.add(4 * q)) });
    // Whole blocks go through a loop of constant trip count (unrolled); the last, partial
    // block through the same steps with as many whole chunks as it has.
    let mut blocks = run.chunks_exact(LANES * BLOCK);
    for block in &mut blocks {
        add_block(&mut sums, block);
    }
    let last = blocks.remainder();
    let whole = last.len() - last.len() % LANES;
    add_block(&mut sums, &last[..whole]);
    for (q, sum) in sums.iter().enumerate() {
        // SAFETY: as for the loads.
        unsafe { _mm256_storeu_pd(wide.add(4 * q), *sum) };
    }
    &last[whole..]
}

/// Lane `k`'s squares of `block`'s chunks (at most [`BLOCK`] of [`LANES`]) added in float32, then
/// the lanes into `sums`. (Inlined into `blocked_squares`, which has the same features.)
#[target_feature(enable = "avx2")]
#[inline]
fn add_block(sums: &mut [__m256d; 8], block: &[f32]) {
    let mut lanes: [__m256; 4] = [_mm256_setzero_ps(); 4];
    for chunk in block.chunks_exact(LANES) {
        let at = chunk.as_ptr();
        for (g, lane) in lanes.iter_mut().enumerate() {
            // SAFETY: `chunk` holds 32 f32s: group `g` reads 8 of them from `8 * g`.
            let x = unsafe { _mm256_loadu_ps(at.add(8 * g)) };
            *lane = _mm256_add_ps(*lane, _mm256_mul_ps(x, x));
        }
    }
    for (g, lane) in lanes.iter().enumerate() {
        let low = _mm256_cvtps_pd(_mm256_castps256_ps128(*lane));
        let high = _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(*lane));
        sums[2 * g] = _mm256_add_pd(sums[2 * g], low);
        sums[2 * g + 1] = _mm256_add_pd(sums[2 * g + 1], high);
    }
}
