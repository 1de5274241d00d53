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
