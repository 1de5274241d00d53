//! The Node.js binding of `normclip-core`: argument checking, JS errors, and the calls. No maths
//! lives here; the TypeScript wrapper in `src/` owns the public names.
//!
//! Every call validates all of its arguments (type, detached buffer, length, shape, axes,
//! parameters; for a batch, every item and their overlaps) before it writes a single element.

// napi-rs registers the exports only in the cdylib; a `--test` build of this crate (run by
// `cargo clippy --all-targets`) sees every export as unused.
#![cfg_attr(
    test,
    allow(dead_code, reason = "exports are registered only in the cdylib build")
)]

mod arrays;
mod batch;
mod bound;
mod constraint;
mod errors;
mod shape;
mod spec;

use napi_derive::napi;

/// The SIMD tier the kernels run with: `avx512`, `avx2`, `portable` (or `neon` on aarch64).
/// Chosen once per process from the CPU; the `NORMCLIP_TIER` environment variable forces one.
#[napi]
pub fn simd_tier() -> String {
    normclip_core::Tier::active().name().to_string()
}

/// Threads used for tensors of 1M elements and more (`NORMCLIP_THREADS`, else the core count).
/// Results are bit-identical whatever this number is.
#[napi]
pub fn thread_count() -> u32 {
    normclip_core::thread_count() as u32
}

/// Benchmark reference: one sum-of-squares pass plus one in-place scale pass over `array`
/// (multiplied by `factor`), the least memory traffic a norm constraint can cost. Returns the sum.
#[napi(ts_args_type = "array: Float32Array, factor: number")]
pub fn bandwidth_probe(
    env: napi::Env,
    array: napi::bindgen_prelude::Unknown,
    factor: f64,
) -> napi::Result<f64> {
    use crate::errors::OrThrow;
    let view = arrays::ArrayView::from_value(&env, &array, "array").or_throw(&env)?;
    if view.dtype != arrays::Dtype::F32 {
        return Err(errors::throw(
            &env,
            normclip_core::Error::type_error("array: expected a Float32Array"),
        ));
    }
    // SAFETY: the view was taken in this synchronous call and is the only slice of its memory.
    let data = unsafe { view.f32_mut() };
    Ok(normclip_core::probe::two_pass_probe(data, factor as f32) as f64)
}
