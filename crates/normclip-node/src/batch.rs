//! `applyBatch`: many (array, shape, constraint) items in one crossing — a model's whole weight set.

use napi::bindgen_prelude::{Array, AsyncTask, ClassInstance, JsValue, Object, Unknown};
use napi::{Env, ValueType};
use napi_derive::napi;
use normclip_core::apply::Prepared;
use normclip_core::{Constraint, Error as CoreError};
use rayon::prelude::*;

use crate::arrays::{describe, ArrayView, Dtype, HeldArray};
use crate::constraint::{run_on, ApplyTask, CheckedCall, NativeConstraint};
use crate::errors::{throw, OrThrow};

/// Items smaller than this are not worth a thread of their own.
const PARALLEL_BATCH_ELEMENTS: usize = 1 << 18;

struct BatchItem<'env> {
    constraint: ClassInstance<'env, NativeConstraint>,
    array: Unknown<'env>,
    call: CheckedCall,
}

/// Reads and checks every item, and that no two arrays share memory, before anything is written.
fn check_items<'env>(env: &Env, items: &Unknown<'env>) -> napi::Result<Vec<BatchItem<'env>>> {
    if !items.is_array().unwrap_or(false) {
        return Err(throw(
            env,
            CoreError::type_error(format!(
                "items: expected an array of {{ array, shape, constraint }}, got {}",
                describe(items)
            )),
        ));
    }
    // SAFETY: checked to be an Array just above.
    let list = unsafe { items.cast::<Array>()? };
    let mut checked = Vec::with_capacity(list.len() as usize);
    for index in 0..list.len() {
        let item: Unknown = list.get(index)?.expect("index below length");
        if item.get_type()? != ValueType::Object {
            return Err(throw(
                env,
                CoreError::type_error(format!(
                    "items[{index}]: expected {{ array, shape, constraint }}, got {}",
                    describe(&item)
                )),
            ));
        }
        // SAFETY: checked to be an object just above.
        let object = unsafe { item.cast::<Object>()? };
        let field = |name: &str| -> napi::Result<Unknown<'env>> {
            match object.get::<Unknown>(name)? {
                Some(value) => Ok(value),
                None => Err(throw(
                    env,
                    CoreError::type_error(format!("items[{index}].{name}: missing")),
                )),
            }
        };
        let constraint_value = field("constraint")?;
        // SAFETY: `ClassInstance` checks the wrapped type and fails for anything else.
        let constraint = unsafe { constraint_value.cast::<ClassInstance<NativeConstraint>>() }
            .map_err(|_| {
                throw(
                    env,
                    CoreError::type_error(format!(
                        "items[{index}].constraint: expected a NativeConstraint, got {}",
                        describe(&constraint_value)
                    )),
                )
            })?;
        let array = field("array")?;
        let call = constraint.check(env, &array, &field("shape")?, &format!("items[{index}]."))?;
        checked.push(BatchItem {
            constraint,
            array,
            call,
        });
    }
    reject_overlaps(checked.iter().map(|item| &item.call.view)).or_throw(env)?;
    Ok(checked)
}

fn reject_overlaps<'a>(views: impl Iterator<Item = &'a ArrayView>) -> Result<(), CoreError> {
    let mut ranges: Vec<(usize, usize, usize)> = views
        .enumerate()
        .filter(|(_, view)| view.len > 0)
        .map(|(index, view)| {
            let (start, end) = view.byte_range();
            (start, end, index)
        })
        .collect();
    ranges.sort_unstable();
    for pair in ranges.windows(2) {
        let ((_, end, first), (start, _, second)) = (pair[0], pair[1]);
        if start < end {
            let (a, b) = (first.min(second), first.max(second));
            return Err(CoreError::range(format!(
                "items[{b}].array: expected memory of its own, but it overlaps items[{a}].array"
            )));
        }
    }
    Ok(())
}

/// Runs independent jobs, in parallel when there is enough work for two threads.
pub(crate) fn run_jobs<J: Send>(jobs: &mut [J], run: impl Fn(&mut J) + Sync + Send) {
    if jobs.len() > 1 && normclip_core::thread_count() > 1 {
        jobs.par_iter_mut().with_min_len(1).for_each(run);
    } else {
        jobs.iter_mut().for_each(run);
    }
}

/// A job of a synchronous batch: a slice of a JS array that no other job touches.
struct SyncJob<'a> {
    constraint: &'a Constraint,
    prepared: &'a Prepared,
    target: Target<'a>,
}

enum Target<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
}

/// Applies each item's constraint to its array in place, in one call. Every item is checked
/// (and the arrays checked not to overlap) before any array is written.
#[napi(ts_args_type = "items: NativeBatchItem[]")]
pub fn apply_batch(env: Env, items: Unknown) -> napi::Result<()> {
    let items = check_items(&env, &items)?;
    let total: usize = items.iter().map(|item| item.call.view.len).sum();
    let mut jobs: Vec<SyncJob> = items
        .iter()
        .map(|item| SyncJob {
            constraint: &item.constraint.inner,
            prepared: &item.call.prepared,
            // SAFETY: the views come from this synchronous call (JS cannot run meanwhile) and were
            // checked pairwise disjoint, so each slice is the only one of its memory.
            target: match item.call.view.dtype {
                // SAFETY: the view was taken in this synchronous call (JS cannot run or detach the buffer before we return) and is the only slice of its memory.
                Dtype::F32 => Target::F32(unsafe { item.call.view.f32_mut() }),
                // SAFETY: the view was taken in this synchronous call (JS cannot run or detach the buffer before we return) and is the only slice of its memory.
                Dtype::F64 => Target::F64(unsafe { item.call.view.f64_mut() }),
            },
        })
        .collect();
    let run = |job: &mut SyncJob| match &mut job.target {
        Target::F32(data) => run_on(job.constraint, job.prepared, data),
        Target::F64(data) => run_on(job.constraint, job.prepared, data),
    };
    if total >= PARALLEL_BATCH_ELEMENTS {
        run_jobs(&mut jobs, run);
    } else {
        jobs.iter_mut().for_each(run);
    }
    Ok(())
}

/// `applyBatch` on the libuv thread pool. Items are checked now (a bad one throws at once); do
/// not touch the arrays until the Promise settles.
#[napi(
    ts_args_type = "items: NativeBatchItem[]",
    ts_return_type = "Promise<void>"
)]
pub fn apply_batch_async(env: Env, items: Unknown) -> napi::Result<AsyncTask<ApplyTask>> {
    let items = check_items(&env, &items)?;
    let mut jobs = Vec::with_capacity(items.len());
    for item in items {
        let held = HeldArray::hold(&item.call.view, &item.array)?;
        jobs.push((item.constraint.inner.clone(), item.call.prepared, held));
    }
    Ok(AsyncTask::new(ApplyTask { jobs }))
}

/// One item of `applyBatch`.
#[allow(
    dead_code,
    reason = "declares the TypeScript interface only; the binding reads the fields one by one to name a bad one in its error"
)]
#[napi(object)]
pub struct NativeBatchItem {
    #[napi(ts_type = "Float32Array | Float64Array")]
    pub array: Unknown<'static>,
    pub shape: Vec<f64>,
    #[napi(ts_type = "NativeConstraint")]
    pub constraint: Unknown<'static>,
}
