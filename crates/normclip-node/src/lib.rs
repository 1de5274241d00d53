//! The Node.js binding of `normclip-core`: argument reading, JS errors, async plumbing. No maths
//! lives here; the TypeScript wrapper in `src/` owns the public names.
//!
//! The boundary is a security boundary. JavaScript can run during any property read (getters,
//! Proxy traps) and can detach, transfer or resize any buffer then, or while async work runs. So
//! every call:
//! 1. reads and copies every argument that can run user code ([`read`]): shapes, specs, batch
//!    items — nothing looks at typed-array memory yet;
//! 2. takes its typed-array views last ([`views`]), each checked attached, of the expected
//!    length and type, and disjoint from the others where written, and runs the core with no
//!    JavaScript in between;
//! 3. for async work, holds only memory JavaScript cannot free or shrink ([`task`]).
//!
//! Every export turns a panic into a JS `Error` (`#[napi(catch_unwind)]`, [`errors::guard_raw`]
//! for the raw `applyBound`, `catch_unwind` in the pool's compute step).

// napi-rs registers the exports only in the cdylib; a `--test` build of this crate (run by
// `cargo clippy --all-targets`) sees every export as unused. `allow`, not `expect`: a crate-level
// `expect(dead_code)` is reported unfulfilled although the lint fires (rustc 1.95).
#![cfg_attr(
    test,
    allow(dead_code, reason = "exports are registered only in the cdylib build")
)]

mod batch;
mod bound;
mod clip;
mod constraint;
mod errors;
mod files;
#[cfg(feature = "probe")]
mod probe;
mod read;
mod task;
mod tf;
mod views;

use napi::Env;
use napi_derive::napi;

use crate::errors::Failure;

// Keras' defaults and the limits, owned by the core and read from there by the TypeScript.

/// Keras' `backend.epsilon()`, added to every norm in Keras mode.
#[napi]
pub const DEFAULT_EPSILON: f64 = normclip_core::DEFAULT_EPSILON;
/// `MaxNorm`'s default `maxValue` (Keras: `max_value=2`).
#[napi]
pub const MAX_NORM_MAX_VALUE: f64 = normclip_core::spec::defaults::MAX_NORM_MAX_VALUE;
/// `MinMaxNorm`'s default `minValue` (Keras: `min_value=0.0`).
#[napi]
pub const MIN_MAX_NORM_MIN_VALUE: f64 = normclip_core::spec::defaults::MIN_MAX_NORM_MIN_VALUE;
/// `MinMaxNorm`'s default `maxValue` (Keras: `max_value=1.0`).
#[napi]
pub const MIN_MAX_NORM_MAX_VALUE: f64 = normclip_core::spec::defaults::MIN_MAX_NORM_MAX_VALUE;
/// `MinMaxNorm`'s default `rate` (Keras: `rate=1.0`).
#[napi]
pub const MIN_MAX_NORM_RATE: f64 = normclip_core::spec::defaults::MIN_MAX_NORM_RATE;
/// The largest rank a tensor may have.
#[napi]
pub const MAX_RANK: u32 = normclip_core::layout::MAX_RANK as u32;

/// The SIMD tier the kernels run with: `avx512`, `avx2`, `portable` (or `neon` on aarch64).
/// Chosen once per process from the CPU; the `NORMCLIP_TIER` environment variable forces one.
#[napi(catch_unwind)]
pub fn simd_tier() -> String {
    normclip_core::Tier::active().name().to_string()
}

/// Threads used for tensors of 1M elements and more (`NORMCLIP_THREADS`, else the core count;
/// at most 4 per core). Results are bit-identical whatever this number is.
#[napi(catch_unwind)]
pub fn thread_count() -> u32 {
    normclip_core::thread_count() as u32
}

/// Panics on purpose, so tests can prove that a panic in each kind of entry point becomes a JS
/// `Error` instead of aborting Node: `'sync'` here, `'bound'` through `applyBound`'s guard,
/// `'async'` on the libuv pool. Not part of the public API.
#[napi(
    catch_unwind,
    js_name = "__panicForTests",
    ts_args_type = "kind: 'sync' | 'bound' | 'async'",
    ts_return_type = "void | Promise<void>"
)]
pub fn panic_for_tests(
    env: Env,
    kind: String,
) -> napi::Result<Option<napi::bindgen_prelude::AsyncTask<task::PanicTask>>> {
    match kind.as_str() {
        "sync" => errors::guard(&env, || panic!("a test asked for a panic")),
        "bound" => {
            errors::guard_raw(env.raw(), || panic!("a test asked for a panic"));
            Err(napi::Error::from_status(napi::Status::PendingException))
        }
        "async" => Ok(Some(napi::bindgen_prelude::AsyncTask::new(task::PanicTask))),
        other => Err(Failure::range(format!(
            "kind: expected 'sync', 'bound' or 'async', got {other:?}"
        ))
        .throw(&env)),
    }
}
