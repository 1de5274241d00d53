//! The benchmarks' bandwidth probe, in the `probe` build of the addon only (bench/probe.ts builds
//! and loads it); the shipped addon has no such export.

use napi::bindgen_prelude::Unknown;
use napi::Env;
use napi_derive::napi;

use crate::errors::{self, Failure, OrThrow};
use crate::read::{self, Arg, Dtype, Reading};
use crate::views::{Access, Request};

/// Benchmark reference (builds with the `probe` feature only; `bench/probe.ts` builds and loads
/// one): one sum-of-squares pass plus one in-place scale pass over `array`
/// (multiplied by `factor`), the least memory traffic a norm constraint can cost. Returns the sum.
/// `parallel`: on the threads of large calls (`NORMCLIP_THREADS`), each pass split between them.
#[napi(
    catch_unwind,
    ts_args_type = "array: Float32Array, factor: number, parallel?: boolean"
)]
pub fn bandwidth_probe(
    env: Env,
    array: Unknown,
    factor: f64,
    parallel: Option<bool>,
) -> napi::Result<f64> {
    errors::guard(&env, || {
        let reading = Reading::begin(&env);
        let array = reading.array(&array, Arg::plain("array")).or_throw(&env)?;
        if array.dtype != Dtype::F32 {
            return Err(Failure::type_error("array: expected a Float32Array").throw(&env));
        }
        let len = array_length(&env, &array);
        let sealed = reading.seal();
        let mut view = sealed
            .view(&Request::new(&array, len, Access::Write))
            .or_throw(&env)?;
        let normclip_core::FloatsMut::F32(data) = view.floats_mut() else {
            unreachable!("checked to be a Float32Array")
        };
        let sum = if parallel == Some(true) {
            normclip_core::probe::two_pass_probe_parallel(data, factor as f32)
        } else {
            normclip_core::probe::two_pass_probe(data, factor as f32)
        };
        Ok(sum as f64)
    })
}

/// The current length of a typed array (for calls that take whatever length it has).
fn array_length(env: &Env, array: &read::ArrayArg) -> usize {
    let mut len = 0usize;
    // SAFETY: `array.raw` is a typed array of this call's scope; other outputs may be null.
    unsafe {
        napi::sys::napi_get_typedarray_info(
            env.raw(),
            array.raw,
            std::ptr::null_mut(),
            &mut len,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    len
}
