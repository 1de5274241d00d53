//! Zero-copy paths for tensors that live outside JavaScript: the TensorFlow op family
//! (`normclip-tf`, for tfjs-node) and fused copies between views of a backend's own memory (the
//! tfjs wasm heap). The TypeScript side is `src/backends/`.

use std::panic::catch_unwind;

use napi::bindgen_prelude::{Array, ClassInstance, Unknown};
use napi::Env;
use napi_derive::napi;

use crate::constraint::NativeConstraint;
use crate::errors::{guard, Failure, OrThrow, Res};
use crate::read::{Arg, Reading};
use crate::views::{Access, Request};

/// Whether normclip's TensorFlow ops are registered in this process, and where.
#[napi(object)]
pub struct TfOpsStatus {
    /// True once `NormclipConstrain` (and the rest of the family) can be executed by name.
    pub available: bool,
    /// Why not, when unavailable.
    pub reason: Option<String>,
    /// The TensorFlow library the C API was resolved from.
    pub library: Option<String>,
    /// `TF_Version()` of that library.
    pub tensorflow_version: Option<String>,
    /// The registered op names.
    pub ops: Vec<String>,
}

/// Registers normclip's ops with the TensorFlow library already loaded in this process (by
/// tfjs-node), once; later calls report the first outcome. Never loads TensorFlow itself: without
/// it (or with `NORMCLIP_TF_OPS=0`) the answer is `{ available: false, reason }`, and is asked
/// again on the next call, so it may be called before tfjs-node is loaded.
#[napi(catch_unwind)]
pub fn tf_ops_register() -> TfOpsStatus {
    let outcome = catch_unwind(normclip_tf::register)
        .unwrap_or_else(|_| Err("internal error while registering".into()));
    match outcome {
        Ok(registration) => TfOpsStatus {
            available: true,
            reason: None,
            library: Some(registration.library),
            tensorflow_version: Some(registration.tensorflow_version),
            ops: registration.ops,
        },
        Err(reason) => TfOpsStatus {
            available: false,
            reason: Some(reason),
            library: None,
            tensorflow_version: None,
            ops: Vec::new(),
        },
    }
}

/// What TensorFlow let the kernels do with their outputs, since the process started.
#[napi(object)]
pub struct TfOpsOutputCounts {
    /// Outputs computed in place, on an input buffer TensorFlow forwarded (no one else held it).
    pub forwarded: f64,
    /// Outputs computed into a fresh buffer from their input, in one fused pass.
    pub copied: f64,
}

/// Counts of the op family's outputs by how they were computed (see `TfOpsOutputCounts`).
#[napi(catch_unwind)]
pub fn tf_ops_output_counts() -> TfOpsOutputCounts {
    let (forwarded, copied) = normclip_tf::output_counts();
    TfOpsOutputCounts {
        forwarded: forwarded as f64,
        copied: copied as f64,
    }
}

/// The `spec` attribute of `NormclipConstrain` for these constraints (one per input, in order):
/// their exact parameters, as the kernel parses them.
#[napi(catch_unwind, ts_args_type = "constraints: NativeConstraint[]")]
pub fn tf_op_spec(env: Env, constraints: Array) -> napi::Result<String> {
    guard(&env, || {
        // Sized by what is read, not by the claimed length (a sparse Array of 2**32-1 holes).
        let mut list = Vec::with_capacity(constraints.len().min(1 << 16) as usize);
        for index in 0..constraints.len() {
            let item = constraints
                .get::<ClassInstance<NativeConstraint>>(index)
                .ok()
                .flatten()
                .ok_or_else(|| {
                    Failure::type_error(format!(
                        "constraints[{index}]: expected a NativeConstraint"
                    ))
                    .throw(&env)
                })?;
            list.push(item.inner.clone());
        }
        Ok(normclip_tf::spec::encode(&list))
    })
}

/// Writes `constraint` applied to `source` (row-major, of `shape`) into `target` in one fused
/// pass, `source` left as it is: a constrained copy between two views of memory the caller
/// owns (the tfjs wasm heap). Both of one type and of the shape's length; they must not overlap.
#[napi(
    catch_unwind,
    ts_args_type = "constraint: NativeConstraint, source: Float32Array | Float64Array, target: Float32Array | Float64Array, shape: number[]"
)]
pub fn apply_copy_into(
    env: Env,
    constraint: &NativeConstraint,
    source: Unknown,
    target: Unknown,
    shape: Unknown,
) -> napi::Result<()> {
    guard(&env, || {
        copy_into(&env, constraint, &source, &target, &shape).or_throw(&env)
    })
}

fn copy_into(
    env: &Env,
    constraint: &NativeConstraint,
    source: &Unknown,
    target: &Unknown,
    shape: &Unknown,
) -> Res<()> {
    let reading = Reading::begin(env);
    let source = reading.array(source, Arg::plain("source"))?;
    let target = reading.array(target, Arg::plain("target"))?;
    let shape = reading.shape(shape, Arg::plain("shape"))?;
    if source.dtype != target.dtype {
        return Err(Failure::type_error(format!(
            "target: expected a {} like source, got a {}",
            source.dtype.name(),
            target.dtype.name()
        )));
    }
    let prepared = constraint.inner.prepare(shape.len(), shape.dims())?;
    let sealed = reading.seal();
    let mut views = sealed.views(&[
        Request::of_shape(&source, &shape, Access::Read),
        Request::of_shape(&target, &shape, Access::Write),
    ])?;
    let (from, into) = views.split_at_mut(1);
    prepared.copy_on(from[0].floats(), &mut into[0].floats_mut())?;
    Ok(())
}
