//! Gradient and update clipping over lists of typed arrays: one crossing per list.
//!
//! Every export follows the boundary's two phases (`read`, `views`): phase 1 reads every JS value
//! (a list's elements — an Array's index getters can run JS — shapes, axes) into owned values and
//! records each array's length; phase 2 takes the views, checked attached, of the recorded length
//! and pairwise disjoint where written. All calls are synchronous (the optimizer step needs the
//! result at once), so no memory outlives the call. Panics become JS errors (`guard`).

use std::ptr;

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env, ValueType};
use napi_derive::napi;
use normclip_core::clip::{self, Bounds, NormType, PerExampleStyle, TensorMut, TensorRef};
use normclip_core::{Axes, Error as CoreError, FloatsMut};

use crate::errors::{guard, Failure, OrThrow, Res};
use crate::read::{describe, number, Arg, ArrayArg, Dtype, Reading};
use crate::views::{Access, Request, View};

/// A list argument read in phase 1: each element's name (`arrays[0]`, …), handle, element type
/// and length at the time it was read (phase 2 re-checks the length).
struct List {
    names: Vec<String>,
    items: Vec<(sys::napi_value, Dtype, usize)>,
}

impl List {
    /// The elements as phase-2 arguments (they borrow the names).
    fn args(&self) -> Vec<(ArrayArg<'_>, usize)> {
        self.names
            .iter()
            .zip(&self.items)
            .map(|(name, &(raw, dtype, len))| {
                let arg = Arg::plain(name);
                (ArrayArg { raw, dtype, arg }, len)
            })
            .collect()
    }
}

/// Phase 1 for a list: each element checked to be a float typed array, with its length now.
/// Nothing is sized by the length the Array claims: `new Array(2 ** 32 - 1)` is four billion
/// holes in a few bytes, and its first hole is an error.
fn read_list(reading: &Reading, list: &Unknown, name: &str) -> Res<List> {
    let count = reading.array_length(list).ok_or_else(|| {
        Failure::type_error(format!(
            "{name}: expected an array of Float32Array / Float64Array, got {}",
            describe(list)
        ))
    })?;
    let capacity = count.min(1 << 16) as usize;
    let mut out = List {
        names: Vec::with_capacity(capacity),
        items: Vec::with_capacity(capacity),
    };
    for index in 0..count {
        let name = format!("{name}[{index}]");
        let element = reading.element(list, index)?;
        let array = reading.array(&element, Arg::plain(&name))?;
        let len = typed_len(reading.env(), &array);
        out.items.push((array.raw, array.dtype, len));
        out.names.push(name);
    }
    Ok(out)
}

/// The element count of a checked typed array (no JS runs). Phase 2 re-checks it.
fn typed_len(env: &Env, array: &ArrayArg) -> usize {
    let mut kind = 0;
    let mut len = 0usize;
    // SAFETY: `array.raw` is a typed array of this call's scope (checked by `Reading::array`);
    // the out-pointers are valid locals, the others null (napi skips them).
    let status = unsafe {
        sys::napi_get_typedarray_info(
            env.raw(),
            array.raw,
            &mut kind,
            &mut len,
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        )
    };
    if status == sys::Status::napi_ok {
        len
    } else {
        0
    }
}

fn requests<'r>(list: &'r [(ArrayArg<'r>, usize)], access: Access) -> Vec<Request<'r>> {
    list.iter()
        .map(|(array, len)| Request::new(array, *len, access))
        .collect()
}

fn as_tensor(floats: FloatsMut<'_>) -> TensorMut<'_> {
    match floats {
        FloatsMut::F32(d) => TensorMut::F32(d),
        FloatsMut::F64(d) => TensorMut::F64(d),
    }
}

fn tensors<'v>(views: &'v mut [View<'_>]) -> Vec<TensorMut<'v>> {
    views
        .iter_mut()
        .map(|v| as_tensor(v.floats_mut()))
        .collect()
}

/// Reads the list `arrays`, takes its views with `access` and runs `f` on them, under the panic
/// guard: the whole of a list call.
fn on_list<T>(
    env: &Env,
    arrays: &Unknown,
    access: Access,
    f: impl FnOnce(&mut [View]) -> Result<T, CoreError>,
) -> napi::Result<T> {
    guard(env, || {
        let run = || -> Res<T> {
            let reading = Reading::begin(env);
            let list = read_list(&reading, arrays, "arrays")?;
            let items = list.args();
            let sealed = reading.seal();
            let mut views = sealed.views(&requests(&items, access))?;
            Ok(f(&mut views)?)
        };
        run().or_throw(env)
    })
}

/// [`on_list`] on written views (disjoint: a written list refuses arrays that share memory).
fn on_arrays<T>(
    env: &Env,
    arrays: &Unknown,
    f: impl FnOnce(&mut [TensorMut]) -> Result<T, CoreError>,
) -> napi::Result<T> {
    on_list(env, arrays, Access::Write, |views| f(&mut tensors(views)))
}

/// [`on_list`] on read-only views: the arrays may share memory (TF's `global_norm([t, t])` is a
/// norm like any other).
fn on_arrays_read<T>(
    env: &Env,
    arrays: &Unknown,
    f: impl FnOnce(&[TensorRef]) -> Result<T, CoreError>,
) -> napi::Result<T> {
    on_list(env, arrays, Access::Read, |views| {
        f(&views.iter().map(tensor_ref).collect::<Vec<_>>())
    })
}

fn tensor_ref<'v>(view: &'v View<'_>) -> TensorRef<'v> {
    match view.floats() {
        normclip_core::Floats::F32(d) => TensorRef::F32(d),
        normclip_core::Floats::F64(d) => TensorRef::F64(d),
    }
}

fn norm_type(p: f64) -> Result<NormType, CoreError> {
    NormType::from_p(p)
}

/// The p-norm (1, 2 or Infinity) of each array, in float64.
#[napi(
    catch_unwind,
    ts_args_type = "arrays: Array<Float32Array | Float64Array>, normType: number"
)]
pub fn clip_tensor_norms(
    env: Env,
    arrays: Unknown,
    norm_type_value: f64,
) -> napi::Result<Vec<f64>> {
    let p = norm_type(norm_type_value).or_throw(&env)?;
    on_arrays_read(&env, &arrays, |list| clip::tensor_norms(list, p))
}

/// TF `clip_by_global_norm` in place; returns the global norm (or `useNorm`).
#[napi(
    catch_unwind,
    ts_args_type = "arrays: Array<Float32Array | Float64Array>, clipNorm: number, useNorm: number | null"
)]
pub fn clip_by_global_norm(
    env: Env,
    arrays: Unknown,
    clip_norm: f64,
    use_norm: Option<f64>,
) -> napi::Result<f64> {
    on_arrays(&env, &arrays, |list| {
        clip::clip_by_global_norm(list, clip_norm, use_norm)
    })
}

/// TF `clip_by_norm` of one array along `axes` (null: all) in place.
#[napi(
    catch_unwind,
    ts_args_type = "array: Float32Array | Float64Array, shape: number[], axes: number[] | null, clipNorm: number"
)]
pub fn clip_by_norm(
    env: Env,
    array: Unknown,
    shape: Unknown,
    axes: Unknown,
    clip_norm: f64,
) -> napi::Result<()> {
    guard(&env, || {
        clip_by_norm_inner(&env, &array, &shape, &axes, clip_norm).or_throw(&env)
    })
}

fn clip_by_norm_inner(
    env: &Env,
    array: &Unknown,
    shape: &Unknown,
    axes: &Unknown,
    clip_norm: f64,
) -> Res<()> {
    let reading = Reading::begin(env);
    let array = reading.array(array, Arg::plain("array"))?;
    let shape = reading.shape(shape, Arg::plain("shape"))?;
    let axes = read_axes(&reading, axes)?;
    let sealed = reading.seal();
    let mut view = sealed.view(&Request::of_shape(&array, &shape, Access::Write))?;
    match view.floats_mut() {
        FloatsMut::F32(data) => clip::clip_by_norm(data, shape.dims(), &axes, clip_norm)?,
        FloatsMut::F64(data) => clip::clip_by_norm(data, shape.dims(), &axes, clip_norm)?,
    }
    Ok(())
}

/// Keras `clipnorm`: each array clipped by its own L2 norm (TF `clip_by_norm`, all axes).
#[napi(
    catch_unwind,
    ts_args_type = "arrays: Array<Float32Array | Float64Array>, clipNorm: number"
)]
pub fn clip_each_by_norm(env: Env, arrays: Unknown, clip_norm: f64) -> napi::Result<()> {
    on_arrays(&env, &arrays, |list| {
        clip::check_bound("clipNorm", clip_norm)?;
        for tensor in list.iter_mut() {
            match tensor {
                TensorMut::F32(data) => {
                    let len = data.len();
                    clip::clip_by_norm(data, &[len], &Axes::All, clip_norm)?
                }
                TensorMut::F64(data) => {
                    let len = data.len();
                    clip::clip_by_norm(data, &[len], &Axes::All, clip_norm)?
                }
            }
        }
        Ok(())
    })
}

/// Keras `clipvalue`: every element clipped to `[-clipValue, clipValue]` in place.
#[napi(
    catch_unwind,
    ts_args_type = "arrays: Array<Float32Array | Float64Array>, clipValue: number"
)]
pub fn clip_by_value(env: Env, arrays: Unknown, clip_value: f64) -> napi::Result<()> {
    on_arrays(&env, &arrays, |list| clip::clip_by_value(list, clip_value))
}

/// PyTorch `get_total_norm`.
#[napi(
    catch_unwind,
    ts_args_type = "arrays: Array<Float32Array | Float64Array>, normType: number, errorIfNonfinite: boolean"
)]
pub fn clip_total_norm(
    env: Env,
    arrays: Unknown,
    norm_type_value: f64,
    error_if_nonfinite: bool,
) -> napi::Result<f64> {
    let p = norm_type(norm_type_value).or_throw(&env)?;
    on_arrays_read(&env, &arrays, |list| {
        clip::total_norm(list, p, error_if_nonfinite)
    })
}

/// PyTorch `clip_grads_with_norm_` in place.
#[napi(
    catch_unwind,
    ts_args_type = "arrays: Array<Float32Array | Float64Array>, maxNorm: number, totalNorm: number"
)]
pub fn clip_grads_with_norm(
    env: Env,
    arrays: Unknown,
    max_norm: f64,
    total: f64,
) -> napi::Result<()> {
    on_arrays(&env, &arrays, |list| {
        clip::clip_grads_with_norm(list, max_norm, total)
    })
}

/// PyTorch `clip_grad_norm_` in place; returns the total norm.
#[napi(
    catch_unwind,
    ts_args_type = "arrays: Array<Float32Array | Float64Array>, maxNorm: number, normType: number, errorIfNonfinite: boolean"
)]
pub fn clip_grad_norm(
    env: Env,
    arrays: Unknown,
    max_norm: f64,
    norm_type_value: f64,
    error_if_nonfinite: bool,
) -> napi::Result<f64> {
    let p = norm_type(norm_type_value).or_throw(&env)?;
    on_arrays(&env, &arrays, |list| {
        clip::clip_grad_norm(list, max_norm, p, error_if_nonfinite)
    })
}

/// Per-example clipping: `grads[t]` holds `batch` examples; their clipped sum goes to `out[t]`.
/// `bounds` has one entry (flat clipping) or one per tensor (`perLayer`). Returns the counts of
/// clipped examples (one, or one per tensor).
#[napi(
    catch_unwind,
    ts_args_type = "grads: Array<Float32Array | Float64Array>, batch: number, bounds: number[], perLayer: boolean, style: 'opacus' | 'optax' | 'tfPrivacy', out: Array<Float32Array | Float64Array>"
)]
pub fn clip_per_example(
    env: Env,
    grads: Unknown,
    batch: f64,
    bounds: Unknown,
    per_layer: bool,
    style: String,
    out: Unknown,
) -> napi::Result<Vec<u32>> {
    guard(&env, || {
        clip_per_example_inner(&env, &grads, batch, &bounds, per_layer, &style, &out).or_throw(&env)
    })
}

fn clip_per_example_inner(
    env: &Env,
    grads: &Unknown,
    batch: f64,
    bounds: &Unknown,
    per_layer: bool,
    style: &str,
    out: &Unknown,
) -> Res<Vec<u32>> {
    let style = PerExampleStyle::parse(style)?;
    if !(batch >= 0.0 && batch.fract() == 0.0 && batch <= u32::MAX as f64) {
        return Err(Failure::range(format!(
            "batch: expected a non-negative integer, got {batch}"
        )));
    }
    let reading = Reading::begin(env);
    let bounds = read_numbers(&reading, bounds, "clipNorm")?;
    let bounds = if per_layer {
        Bounds::PerLayer(bounds)
    } else {
        match bounds.as_slice() {
            [c] => Bounds::Flat(*c),
            other => {
                return Err(Failure::range(format!(
                    "clipNorm: expected one bound, got {}",
                    other.len()
                )))
            }
        }
    };
    let grad_list = read_list(&reading, grads, "grads")?;
    let out_list = read_list(&reading, out, "out")?;
    let (grad_items, out_items) = (grad_list.args(), out_list.args());
    let sealed = reading.seal();
    let mut all = requests(&grad_items, Access::Read);
    all.extend(requests(&out_items, Access::Write));
    let mut views = sealed.views(&all)?;
    let (grad_views, out_views) = views.split_at_mut(grad_items.len());
    let refs: Vec<TensorRef> = grad_views.iter().map(tensor_ref).collect();
    let mut outs = tensors(out_views);
    let counts = clip::clip_per_example(&refs, batch as usize, &bounds, style, &mut outs)?;
    Ok(counts.into_iter().map(|c| c as u32).collect())
}

/// Federated update clipping in place; returns `[norm, clipped ? 1 : 0]`.
#[napi(
    catch_unwind,
    ts_args_type = "arrays: Array<Float32Array | Float64Array>, clipNorm: number"
)]
pub fn clip_update(env: Env, arrays: Unknown, clip_norm: f64) -> napi::Result<Vec<f64>> {
    on_arrays(&env, &arrays, |list| {
        let result = clip::clip_update(list, clip_norm)?;
        Ok(vec![result.norm, if result.clipped { 1.0 } else { 0.0 }])
    })
}

/// `axes`: `null` (all axes) or an array of integers, read in phase 1.
fn read_axes(reading: &Reading, value: &Unknown) -> Res<Axes> {
    match value.get_type().ok() {
        Some(ValueType::Null) | Some(ValueType::Undefined) => return Ok(Axes::All),
        _ => {}
    }
    let axes = reading.rank_list(
        value,
        &"axes",
        ("null or an array of integers", "axes"),
        |element, index| match (element.get_type().ok(), number(element)) {
            (Some(ValueType::Number), Some(n)) if n.fract() == 0.0 && n.abs() <= 1e9 => {
                Ok(n as i64)
            }
            _ => Err(Failure::type_error(format!(
                "axes: expected integers, got {} at index {index}",
                describe(element)
            ))),
        },
    )?;
    Ok(Axes::List(axes))
}

/// A list of numbers (the per-example bounds), read in phase 1; like [`read_list`], nothing is
/// sized by the length the Array claims.
fn read_numbers(reading: &Reading, value: &Unknown, name: &str) -> Res<Vec<f64>> {
    let count = reading.array_length(value).ok_or_else(|| {
        Failure::type_error(format!(
            "{name}: expected an array of numbers, got {}",
            describe(value)
        ))
    })?;
    let mut numbers = Vec::with_capacity(count.min(1 << 16) as usize);
    for index in 0..count {
        let element = reading.element(value, index)?;
        let n = number(&element).ok_or_else(|| {
            Failure::type_error(format!(
                "{name}[{index}]: expected a number, got {}",
                describe(&element)
            ))
        })?;
        numbers.push(n);
    }
    Ok(numbers)
}
