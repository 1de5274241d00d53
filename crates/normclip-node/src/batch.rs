//! `applyBatch`: many `{ array, shape, constraint, output? }` items in one crossing — a model's
//! whole weight set. Every item is read (phase 1) before any memory is looked at, so a getter on
//! item k cannot free the memory of item j; every view is checked, and written views checked
//! disjoint from all others, before anything is written.

use napi::bindgen_prelude::{AsyncTask, ClassInstance, FromNapiValue, JsValue, Unknown};
use napi::{Env, ValueType};
use napi_derive::napi;
use normclip_core::apply::Prepared;
use normclip_core::batch::{apply_batch as run_batch, Job};
use normclip_core::spec::quoted;
use normclip_core::Error as CoreError;

use crate::constraint::NativeConstraint;
use crate::errors::{guard, Failure, OrThrow, Res};
use crate::read::{describe, Arg, ArrayArg, Reading, Shape};
use crate::task::{hold_all, ApplyTask, Pending};
use crate::views::{Access, Request};

/// One item of `applyBatch`.
#[cfg_attr(
    not(test),
    expect(
        dead_code,
        reason = "declares the TypeScript interface; the binding reads the items key by key to name a bad one"
    )
)]
#[napi(object)]
pub struct NativeBatchItem {
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub array: Unknown<'static>,
    pub shape: Vec<f64>,
    #[napi(ts_type = "NativeConstraint")]
    pub constraint: Unknown<'static>,
    /// Where the constrained values go (a new array of the same type and length, sharing memory
    /// with no other array of the batch); `array` is then only read. `applyBatch` only.
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub output: Option<Unknown<'static>>,
}

/// An item after phase 1.
struct Item {
    array: ArrayArg<'static>,
    output: Option<ArrayArg<'static>>,
    shape: Shape,
    prepared: Prepared,
}

const ITEM_KEYS: [&str; 4] = ["array", "shape", "constraint", "output"];

fn read_items(reading: &Reading, items: &Unknown, with_output: bool) -> Res<Vec<Item>> {
    let Some(count) = reading.array_length(items) else {
        return Err(Failure::type_error(format!(
            "items: expected an array of {{ array, shape, constraint }}, got {}",
            describe(items)
        )));
    };
    let keys = if with_output {
        &ITEM_KEYS[..]
    } else {
        &ITEM_KEYS[..3]
    };
    let mut read = Vec::with_capacity(count.min(1 << 16) as usize);
    for index in 0..count {
        let item = reading.element(items, index)?;
        if item.get_type().ok() != Some(ValueType::Object) || item.is_array().unwrap_or(false) {
            return Err(Failure::type_error(format!(
                "items[{index}]: expected {{ array, shape, constraint }}, got {}",
                describe(&item)
            )));
        }
        for key in reading.keys(&item)? {
            if !keys.contains(&key.as_str()) {
                return Err(Failure::type_error(format!(
                    "items[{index}]: unknown key {key:?}; expected {}",
                    quoted(keys)
                )));
            }
        }
        let field = |name: &'static str| -> Res<Unknown> {
            reading
                .property(&item, name)?
                .ok_or_else(|| Failure::type_error(format!("items[{index}].{name}: missing")))
        };
        let constraint_value = field("constraint")?;
        // SAFETY: `constraint_value` is a value of this call's scope. `ClassInstance` unwraps it
        // and checks napi-rs' type tag for `NativeConstraint` (no JavaScript runs), failing for
        // anything else.
        let constraint = unsafe {
            ClassInstance::<NativeConstraint>::from_napi_value(
                reading.env().raw(),
                constraint_value.raw(),
            )
        }
        .map_err(|_| {
            Failure::type_error(format!(
                "items[{index}].constraint: expected a NativeConstraint, got {}",
                describe(&constraint_value)
            ))
        })?
        .inner
        .clone();
        let array = reading.array(&field("array")?, Arg::item(index, "array"))?;
        let shape = reading.shape(&field("shape")?, Arg::item(index, "shape"))?;
        let output = match with_output {
            true => match reading.property(&item, "output")? {
                Some(value) => Some(reading.array(&value, Arg::item(index, "output"))?),
                None => None,
            },
            false => None,
        };
        if let Some(output) = &output {
            if output.dtype != array.dtype {
                return Err(Failure::type_error(format!(
                    "items[{index}].output: expected a {} like items[{index}].array, got a {}",
                    array.dtype.name(),
                    output.dtype.name()
                )));
            }
        }
        let prepared = constraint
            .prepare(shape.len(), shape.dims())
            .map_err(|error| CoreError {
                message: format!("items[{index}].{}", error.message),
                ..error
            })?;
        read.push(Item {
            array,
            output,
            shape,
            prepared,
        });
    }
    Ok(read)
}

fn apply_batch_inner(env: &Env, items: Unknown) -> Res<()> {
    let reading = Reading::begin(env);
    let items = read_items(&reading, &items, true)?;
    let sealed = reading.seal();
    let mut requests = Vec::with_capacity(items.len() * 2);
    for item in &items {
        match &item.output {
            None => requests.push(Request::of_shape(&item.array, &item.shape, Access::Write)),
            Some(output) => {
                requests.push(Request::of_shape(&item.array, &item.shape, Access::Read));
                requests.push(Request::of_shape(output, &item.shape, Access::Write));
            }
        }
    }
    let mut views = sealed.views(&requests)?;
    // One job per item, in place or a copy (one view read, the next written): the core checks
    // and schedules them.
    let mut views = views.iter_mut();
    let mut jobs = Vec::with_capacity(items.len());
    for item in &items {
        let view = views.next().expect("a view per request");
        jobs.push(match &item.output {
            None => Job::in_place(&item.prepared, view.floats_mut()),
            Some(_) => Job::copy(
                &item.prepared,
                view.floats(),
                views.next().expect("a view per request").floats_mut(),
            ),
        });
    }
    run_batch(&mut jobs)?;
    Ok(())
}

fn apply_batch_async_inner(env: &Env, items: Unknown) -> Res<ApplyTask> {
    let reading = Reading::begin(env);
    let items = read_items(&reading, &items, false)?;
    let pending = items
        .iter()
        .map(|item| Pending {
            array: item.array,
            shape: &item.shape,
            prepared: item.prepared.clone(),
        })
        .collect();
    hold_all(reading.seal(), pending)
}

/// Applies each item's constraint, in one call: in place, or into the item's `output` when it
/// has one. Every item is checked (and no written array may share memory with another) before
/// any array is written.
#[napi(catch_unwind, ts_args_type = "items: NativeBatchItem[]")]
pub fn apply_batch(env: Env, items: Unknown) -> napi::Result<()> {
    guard(&env, || apply_batch_inner(&env, items).or_throw(&env))
}

/// `applyBatch` on the libuv thread pool, in place (no `output`), with the memory rules of
/// `NativeConstraint.applyInPlaceAsync`: arrays over a SharedArrayBuffer are constrained where
/// they are, others are copied now and written back when the Promise settles — all of them, or,
/// if one was detached or resized meanwhile, none (the Promise rejects with a RangeError).
#[napi(
    catch_unwind,
    ts_args_type = "items: NativeBatchItem[]",
    ts_return_type = "Promise<void>"
)]
pub fn apply_batch_async(env: Env, items: Unknown) -> napi::Result<AsyncTask<ApplyTask>> {
    guard(&env, || {
        let task = apply_batch_async_inner(&env, items).or_throw(&env)?;
        Ok(AsyncTask::new(task))
    })
}
