//! `NativeConstraint`: one validated constraint, applied to typed arrays.
//!
//! Every method reads its arguments first ([`Reading`]), then takes its views ([`Sealed`]), then
//! runs the core; results are allocated in phase 1, so nothing is allocated while views exist.

use napi::bindgen_prelude::{AsyncTask, Object, Unknown};
use napi::Env;
use napi_derive::napi;
use normclip_core::layout::{norms_shape, Plan};
use normclip_core::{norms_on, Constraint, Floats};

use crate::errors::{guard, Failure, OrThrow, Res};
use crate::read::{Arg, Reading, Shape};
use crate::task::{hold_all, ApplyTask, Pending};
use crate::views::{Access, Request};

/// A weight constraint, validated once from a spec (a snapshot: later changes to the spec
/// object change nothing) and applied to many buffers. Made by `NativeConstraint.create(spec)`.
#[napi]
pub struct NativeConstraint {
    pub(crate) inner: Constraint,
}

/// What a `NativeConstraint` is built from. Unset fields take Keras' defaults; keys a kind does
/// not take are a TypeError.
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "declares the TypeScript interface; the binding reads the object key by key to reject unknown keys and name a bad one"
    )
)]
#[napi(object)]
pub struct NativeConstraintSpec {
    /// `'maxNorm' | 'minMaxNorm' | 'unitNorm' | 'nonNeg' | 'radialConstraint'`.
    #[napi(ts_type = "'maxNorm' | 'minMaxNorm' | 'unitNorm' | 'nonNeg' | 'radialConstraint'")]
    pub kind: String,
    /// Upper bound of the norm: MaxNorm default 2, MinMaxNorm default 1. Finite, >= 0.
    pub max_value: Option<f64>,
    /// MinMaxNorm lower bound, default 0. Finite, >= 0, <= maxValue.
    pub min_value: Option<f64>,
    /// MinMaxNorm rate in [0, 1], default 1 (1 = move onto the bound at once).
    pub rate: Option<f64>,
    /// Axes the norm is taken over: undefined → 0 (Keras' default), null → all axes (one norm),
    /// `[]` → none (each element its own slice). Negative axes count from the end.
    #[napi(ts_type = "number | number[] | null")]
    pub axis: Option<Vec<i64>>,
    /// `'keras'` (default, Keras' exact formula) or `'projection'` (only out-of-bound slices move,
    /// exactly onto the bound).
    #[napi(ts_type = "'keras' | 'projection'")]
    pub mode: Option<String>,
    /// Added to every norm in Keras mode, default 1e-7 (Keras' `backend.epsilon()`); finite, > 0.
    pub epsilon: Option<f64>,
}

/// The keepdims norms of a tensor and their shape.
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "declares the TypeScript interface; `norms` builds the object itself around an array allocated by V8"
    )
)]
#[napi(object)]
pub struct NativeNorms {
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub norms: Vec<f64>,
    pub shape: Vec<f64>,
}

/// Phase 1 of a one-array call: the array's type, the shape, the plan.
struct OneArray<'env> {
    reading: Reading<'env>,
    array: crate::read::ArrayArg<'static>,
    shape: Shape,
}

impl NativeConstraint {
    fn read<'env>(env: &'env Env, array: &Unknown, shape: &Unknown) -> Res<OneArray<'env>> {
        let reading = Reading::begin(env);
        let array = reading.array(array, Arg::plain("array"))?;
        let shape = reading.shape(shape, Arg::plain("shape"))?;
        Ok(OneArray {
            reading,
            array,
            shape,
        })
    }

    fn apply_in_place_inner(&self, env: &Env, array: Unknown, shape: Unknown) -> Res<()> {
        let OneArray {
            reading,
            array,
            shape,
        } = Self::read(env, &array, &shape)?;
        let prepared = self.inner.prepare(shape.len(), shape.dims())?;
        let sealed = reading.seal();
        let mut view = sealed.view(&Request::of_shape(&array, &shape, Access::Write))?;
        prepared.run_on(&mut view.floats_mut());
        Ok(())
    }

    fn apply_copy_inner<'env>(
        &self,
        env: &'env Env,
        array: Unknown,
        shape: Unknown,
    ) -> Res<Unknown<'env>> {
        let OneArray {
            reading,
            array,
            shape,
        } = Self::read(env, &array, &shape)?;
        let prepared = self.inner.prepare(shape.len(), shape.dims())?;
        let (result, output) = reading.new_array(array.dtype, shape.len(), Arg::plain("result"))?;
        let sealed = reading.seal();
        let mut views = sealed.views(&[
            Request::of_shape(&array, &shape, Access::Read),
            Request::new(&output, shape.len(), Access::Write),
        ])?;
        let (source, out) = views.split_at_mut(1);
        prepared.copy_on(source[0].floats(), &mut out[0].floats_mut())?;
        Ok(result)
    }

    fn norms_inner<'env>(
        &self,
        env: &'env Env,
        array: Unknown,
        shape: Unknown,
    ) -> Res<Object<'env>> {
        let Some(options) = self.inner.options() else {
            return Err(Failure::type_error(format!(
                "norms: {} has no norm axes",
                self.inner.class_name()
            )));
        };
        let OneArray {
            reading,
            array,
            shape,
        } = Self::read(env, &array, &shape)?;
        let plan = Plan::new(shape.dims(), &options.axes)?;
        let (result, output) = reading.new_array(array.dtype, plan.slices, Arg::plain("norms"))?;
        let sealed = reading.seal();
        {
            let mut views = sealed.views(&[
                Request::of_shape(&array, &shape, Access::Read),
                Request::new(&output, plan.slices, Access::Write),
            ])?;
            let (source, out) = views.split_at_mut(1);
            let source: Floats = source[0].floats();
            norms_on(source, &plan, out[0].floats_mut())?;
        }
        let env = sealed.finish();
        let mut object = Object::new(env).map_err(pending)?;
        object.set("norms", result).map_err(pending)?;
        let dims: Vec<f64> = norms_shape(shape.dims(), plan.reduced)
            .into_iter()
            .map(|dim| dim as f64)
            .collect();
        object.set("shape", dims).map_err(pending)?;
        Ok(object)
    }

    fn apply_in_place_async_inner(
        &self,
        env: &Env,
        array: Unknown,
        shape: Unknown,
    ) -> Res<ApplyTask> {
        let OneArray {
            reading,
            array,
            shape,
        } = Self::read(env, &array, &shape)?;
        let prepared = self.inner.prepare(shape.len(), shape.dims())?;
        hold_all(
            reading.seal(),
            vec![Pending {
                array,
                shape: &shape,
                prepared,
            }],
        )
    }
}

fn pending(error: napi::Error) -> Failure {
    Failure::Pending(error.status)
}

#[napi]
impl NativeConstraint {
    /// Builds a constraint; throws a TypeError or RangeError naming the bad field or key.
    #[napi(factory, catch_unwind)]
    pub fn create(
        env: Env,
        #[napi(ts_arg_type = "NativeConstraintSpec")] spec: Unknown,
    ) -> napi::Result<Self> {
        guard(&env, || {
            let inner = Reading::begin(&env).spec(&spec).or_throw(&env)?;
            Ok(NativeConstraint { inner })
        })
    }

    /// `'maxNorm' | 'minMaxNorm' | 'unitNorm' | 'nonNeg' | 'radialConstraint'`.
    #[napi(
        getter,
        ts_return_type = "'maxNorm' | 'minMaxNorm' | 'unitNorm' | 'nonNeg' | 'radialConstraint'"
    )]
    pub fn kind(&self) -> &'static str {
        self.inner.kind().name()
    }

    /// Applies the constraint to `array` (row-major, of `shape`) in place, without copying.
    /// Throws before writing anything if an argument is wrong.
    #[napi(
        catch_unwind,
        ts_args_type = "array: Float32Array | Float64Array, shape: number[]"
    )]
    pub fn apply_in_place(&self, env: Env, array: Unknown, shape: Unknown) -> napi::Result<()> {
        guard(&env, || {
            self.apply_in_place_inner(&env, array, shape).or_throw(&env)
        })
    }

    /// A constrained copy of `array`, of the same type; `array` is left untouched.
    #[napi(
        catch_unwind,
        ts_args_type = "array: Float32Array | Float64Array, shape: number[]",
        ts_return_type = "Float32Array | Float64Array"
    )]
    pub fn apply_copy<'env>(
        &self,
        env: &'env Env,
        array: Unknown,
        shape: Unknown,
    ) -> napi::Result<Unknown<'env>> {
        guard(env, || {
            self.apply_copy_inner(env, array, shape).or_throw(env)
        })
    }

    /// Applies the constraint in place on the libuv thread pool. Arguments are checked now (a
    /// bad one throws at once). An array over a SharedArrayBuffer is constrained where it is;
    /// any other array is copied now and written back when the Promise settles — if by then it
    /// was detached, transferred or resized, the Promise rejects with a RangeError and nothing
    /// is written. Writes made to the array meanwhile are overwritten.
    #[napi(
        catch_unwind,
        ts_args_type = "array: Float32Array | Float64Array, shape: number[]",
        ts_return_type = "Promise<void>"
    )]
    pub fn apply_in_place_async(
        &self,
        env: Env,
        array: Unknown,
        shape: Unknown,
    ) -> napi::Result<AsyncTask<ApplyTask>> {
        guard(&env, || {
            let task = self
                .apply_in_place_async_inner(&env, array, shape)
                .or_throw(&env)?;
            Ok(AsyncTask::new(task))
        })
    }

    /// The L2 norms along the constraint's axes, with `keepdims` (NonNeg and RadialConstraint have
    /// no axes and throw).
    #[napi(
        catch_unwind,
        ts_args_type = "array: Float32Array | Float64Array, shape: number[]",
        ts_return_type = "NativeNorms"
    )]
    pub fn norms<'env>(
        &self,
        env: &'env Env,
        array: Unknown,
        shape: Unknown,
    ) -> napi::Result<Object<'env>> {
        guard(env, || self.norms_inner(env, array, shape).or_throw(env))
    }

    /// This constraint bound to one `shape` (checked and planned now): the fastest way to apply
    /// it many times, e.g. to the same weight after every training step. Apply it with
    /// `applyBound(bound, array)`.
    #[napi(
        catch_unwind,
        ts_args_type = "shape: number[]",
        ts_return_type = "ExternalObject<'NativeBoundConstraint'>"
    )]
    pub fn bind<'env>(&self, env: &'env Env, shape: Unknown) -> napi::Result<Unknown<'env>> {
        guard(env, || {
            let reading = Reading::begin(env);
            let shape = reading.shape(&shape, Arg::plain("shape")).or_throw(env)?;
            crate::bound::create(env, &self.inner, shape).or_throw(env)
        })
    }
}
