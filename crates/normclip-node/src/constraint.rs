//! `NativeConstraint`: one validated constraint, applied to typed arrays.

use std::borrow::Cow;

use napi::bindgen_prelude::{AsyncTask, Either, Float32Array, Float64Array, Unknown};
use napi::{Env, Task};
use napi_derive::napi;
use normclip_core::apply::{norms, Prepared};
use normclip_core::kernels::{Kernels, Tier};
use normclip_core::{Constraint, Element};

use crate::arrays::{ArrayView, Dtype, HeldArray};
use crate::errors::OrThrow;
use crate::shape::{read_shape, to_js_shape};
use crate::spec::read_spec;

/// A weight constraint built once from a spec (validated there) and applied to many buffers.
#[napi]
pub struct NativeConstraint {
    pub(crate) inner: Constraint,
}

/// The keepdims norms of a tensor and their shape.
#[napi(object)]
pub struct NativeNorms {
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub norms: Either<Float32Array, Float64Array>,
    pub shape: Vec<f64>,
}

/// A checked call: the buffer, its shape, and the plan the core prepared for it.
pub(crate) struct CheckedCall {
    pub view: ArrayView,
    pub shape: Vec<usize>,
    pub prepared: Prepared,
}

impl NativeConstraint {
    pub(crate) fn check(
        &self,
        env: &Env,
        array: &Unknown,
        shape: &Unknown,
        prefix: &str,
    ) -> napi::Result<CheckedCall> {
        // Argument names are built only for batch items: a plain call allocates none.
        let named = |base: &'static str| -> Cow<'static, str> {
            if prefix.is_empty() {
                Cow::Borrowed(base)
            } else {
                Cow::Owned(format!("{prefix}{base}"))
            }
        };
        let view = ArrayView::from_value(env, array, &named("array")).or_throw(env)?;
        let shape = read_shape(shape, &named("shape")).or_throw(env)?;
        let prepared = self
            .inner
            .prepare(view.len, &shape)
            .map_err(|error| normclip_core::Error {
                message: format!("{prefix}{}", error.message),
                ..error
            })
            .or_throw(env)?;
        Ok(CheckedCall {
            view,
            shape,
            prepared,
        })
    }
}

/// Runs a prepared call on a buffer with the process's tier.
pub(crate) fn run_on<T: Element>(constraint: &Constraint, prepared: &Prepared, data: &mut [T]) {
    let kernels = Kernels::<T>::for_tier(Tier::active())
        .expect("the active tier is supported by construction");
    constraint.run_prepared(prepared, data, &kernels);
}

/// A constrained copy of `source` with the process's tier (copy and scale fused per chunk).
fn copy_on<T: Element>(constraint: &Constraint, prepared: &Prepared, source: &[T]) -> Vec<T> {
    let kernels = Kernels::<T>::for_tier(Tier::active())
        .expect("the active tier is supported by construction");
    constraint.run_prepared_copy(prepared, source, &kernels)
}

#[napi]
impl NativeConstraint {
    /// Builds a constraint; throws a TypeError or RangeError naming the bad field.
    #[napi(constructor)]
    pub fn new(
        env: Env,
        #[napi(ts_arg_type = "NativeConstraintSpec")] spec: Unknown,
    ) -> napi::Result<Self> {
        Ok(NativeConstraint {
            inner: read_spec(&spec).or_throw(&env)?,
        })
    }

    /// `'maxNorm' | 'minMaxNorm' | 'unitNorm' | 'nonNeg' | 'radialConstraint'`.
    #[napi(
        getter,
        ts_return_type = "'maxNorm' | 'minMaxNorm' | 'unitNorm' | 'nonNeg' | 'radialConstraint'"
    )]
    pub fn kind(&self) -> &'static str {
        match self.inner {
            Constraint::MaxNorm { .. } => "maxNorm",
            Constraint::MinMaxNorm { .. } => "minMaxNorm",
            Constraint::UnitNorm { .. } => "unitNorm",
            Constraint::NonNeg => "nonNeg",
            Constraint::Radial => "radialConstraint",
        }
    }

    /// Applies the constraint to `array` (row-major, of `shape`) in place, without copying.
    /// Throws before writing anything if an argument is wrong.
    #[napi(ts_args_type = "array: Float32Array | Float64Array, shape: number[]")]
    pub fn apply_in_place(&self, env: Env, array: Unknown, shape: Unknown) -> napi::Result<()> {
        let call = self.check(&env, &array, &shape, "")?;
        // SAFETY: the view was taken in this synchronous call; JS cannot run (or detach the buffer)
        // until we return, and this is the only slice of it.
        match call.view.dtype {
            // SAFETY: the view was taken in this synchronous call (JS cannot run or detach the buffer before we return) and is the only slice of its memory.
            Dtype::F32 => run_on(&self.inner, &call.prepared, unsafe { call.view.f32_mut() }),
            // SAFETY: the view was taken in this synchronous call (JS cannot run or detach the buffer before we return) and is the only slice of its memory.
            Dtype::F64 => run_on(&self.inner, &call.prepared, unsafe { call.view.f64_mut() }),
        }
        Ok(())
    }

    /// A constrained copy of `array`, of the same type; `array` is left untouched.
    #[napi(
        ts_args_type = "array: Float32Array | Float64Array, shape: number[]",
        ts_return_type = "Float32Array | Float64Array"
    )]
    pub fn apply_copy(
        &self,
        env: Env,
        array: Unknown,
        shape: Unknown,
    ) -> napi::Result<Either<Float32Array, Float64Array>> {
        let call = self.check(&env, &array, &shape, "")?;
        Ok(match call.view.dtype {
            Dtype::F32 => {
                // SAFETY: the view was taken in this synchronous call (JS cannot run or detach the
                // buffer before we return); it is only read.
                let source: &[f32] = unsafe { call.view.f32_mut() };
                Either::A(Float32Array::new(copy_on(
                    &self.inner,
                    &call.prepared,
                    source,
                )))
            }
            Dtype::F64 => {
                // SAFETY: as above.
                let source: &[f64] = unsafe { call.view.f64_mut() };
                Either::B(Float64Array::new(copy_on(
                    &self.inner,
                    &call.prepared,
                    source,
                )))
            }
        })
    }

    /// Applies the constraint in place on the libuv thread pool. The arguments are checked now
    /// (a bad one throws at once); the Promise settles when the buffer has been written.
    /// Do not read or write `array` from JavaScript until it settles.
    #[napi(
        ts_args_type = "array: Float32Array | Float64Array, shape: number[]",
        ts_return_type = "Promise<void>"
    )]
    pub fn apply_in_place_async(
        &self,
        env: Env,
        array: Unknown,
        shape: Unknown,
    ) -> napi::Result<AsyncTask<ApplyTask>> {
        let call = self.check(&env, &array, &shape, "")?;
        let held = HeldArray::hold(&call.view, &array)?;
        Ok(AsyncTask::new(ApplyTask {
            jobs: vec![(self.inner.clone(), call.prepared, held)],
        }))
    }

    /// The L2 norms along the constraint's axes, with `keepdims` (NonNeg and RadialConstraint have
    /// no axes and throw).
    #[napi(ts_args_type = "array: Float32Array | Float64Array, shape: number[]")]
    pub fn norms(&self, env: Env, array: Unknown, shape: Unknown) -> napi::Result<NativeNorms> {
        let Some(options) = self.inner.options() else {
            return Err(crate::errors::throw(
                &env,
                normclip_core::Error::type_error(format!(
                    "norms: {} has no norm axes",
                    self.inner.class_name()
                )),
            ));
        };
        let call = self.check(&env, &array, &shape, "")?;
        // SAFETY: as in `apply_in_place`; only read.
        Ok(match call.view.dtype {
            Dtype::F32 => {
                let result = norms(
                    // SAFETY: the view was taken in this synchronous call (JS cannot run or detach the buffer before we return) and is the only slice of its memory.
                    unsafe { call.view.f32_mut() } as &[f32],
                    &call.shape,
                    &options.axes,
                )
                .or_throw(&env)?;
                NativeNorms {
                    norms: Either::A(Float32Array::new(result.values)),
                    shape: to_js_shape(&result.shape),
                }
            }
            Dtype::F64 => {
                let result = norms(
                    // SAFETY: the view was taken in this synchronous call (JS cannot run or detach the buffer before we return) and is the only slice of its memory.
                    unsafe { call.view.f64_mut() } as &[f64],
                    &call.shape,
                    &options.axes,
                )
                .or_throw(&env)?;
                NativeNorms {
                    norms: Either::B(Float64Array::new(result.values)),
                    shape: to_js_shape(&result.shape),
                }
            }
        })
    }
}

/// Constraint jobs run on the libuv pool; each job's array is kept alive by a reference.
pub struct ApplyTask {
    pub(crate) jobs: Vec<(Constraint, Prepared, HeldArray)>,
}

impl Task for ApplyTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        let run = |(constraint, prepared, held): &mut (Constraint, Prepared, HeldArray)| match held
        {
            // SAFETY: the reference keeps each array alive; the caller was told not to touch the
            // arrays until the Promise settles, and the batch checked they do not overlap.
            HeldArray::F32(array) => run_on(constraint, prepared, unsafe { array.as_mut() }),
            // SAFETY: the reference keeps the array alive; the caller must not touch it until the Promise settles, and batch items were checked not to overlap.
            HeldArray::F64(array) => run_on(constraint, prepared, unsafe { array.as_mut() }),
        };
        crate::batch::run_jobs(&mut self.jobs, run);
        Ok(())
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}
