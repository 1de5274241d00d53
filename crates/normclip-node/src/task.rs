//! Work on the libuv thread pool, on memory JavaScript cannot free or shrink while it runs.
//!
//! Node-API gives an addon no way to pin an ArrayBuffer's memory: any plain ArrayBuffer can be
//! transferred (`structuredClone`, `postMessage`, `ArrayBuffer.prototype.transfer`), freed, or
//! shrunk (`resize`) while work is pending, and Node's `markAsUntransferable` does not stop
//! `transfer()` (checked on Node 22). So the pool never touches such memory:
//! - an array over a **SharedArrayBuffer** is used in place. A SharedArrayBuffer can be neither
//!   detached nor shrunk, and the reference this task holds keeps it alive;
//! - any other array is **copied in** when the call is made, the copy is constrained on the
//!   pool, and it is **copied back** when the Promise settles, on the main thread, after checking
//!   afresh that every array is still attached and of the same length. If one is not, nothing is
//!   written and the Promise rejects with a RangeError.

use std::ffi::c_void;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env, Error, Status, Task};
use normclip_core::apply::Prepared;
use normclip_core::batch::{apply_batch, Job};
use normclip_core::{Floats, FloatsMut};

use crate::errors::{panic_message, range_error_value, Failure, Res};
use crate::read::{Arg, ArrayArg, Dtype, Reading, Shape};
use crate::views::{Access, Request, Sealed, View};

/// A reference to a JS value, created in the call and released in `finally`, both on the main
/// thread; the pool thread only carries it.
struct JsRef(sys::napi_ref);

// SAFETY: the handle is an opaque pointer that is only dereferenced (by N-API) on the main thread
// that created it: in `resolve` and `finally`. The pool thread moves it, never uses it.
unsafe impl Send for JsRef {}

/// The start of a SharedArrayBuffer's memory.
struct SharedMemory(*mut c_void);

// SAFETY: the memory belongs to a SharedArrayBuffer kept alive by the task's reference; it is
// neither freed nor moved while the task exists (SharedArrayBuffers cannot be detached, and
// growable ones grow in place), and no other job of the task touches it (checked disjoint).
unsafe impl Send for SharedMemory {}

enum Owned {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

enum Memory {
    Shared {
        data: SharedMemory,
        len: usize,
        dtype: Dtype,
    },
    Copied(Owned),
}

/// One array of an async call: its constraint, plan and memory.
pub struct AsyncItem {
    prepared: Prepared,
    memory: Memory,
    target: JsRef,
    dtype: Dtype,
    len: usize,
    arg: Arg<'static>,
}

impl Owned {
    fn floats(&self) -> Floats<'_> {
        match self {
            Owned::F32(data) => Floats::F32(data),
            Owned::F64(data) => Floats::F64(data),
        }
    }
}

impl Memory {
    fn floats_mut(&mut self) -> FloatsMut<'_> {
        match self {
            Memory::Copied(Owned::F32(data)) => FloatsMut::F32(data),
            Memory::Copied(Owned::F64(data)) => FloatsMut::F64(data),
            // SAFETY: see `SharedMemory`: the memory is alive, `len` elements long (checked
            // when the call was made), aligned, and this job's alone.
            Memory::Shared { data, len, dtype } => unsafe { dtype.floats_mut(data.0, *len) },
        }
    }
}

impl Memory {
    /// What the pool works on for a view just checked in phase 2: its shared memory, or a copy.
    fn of(view: &View) -> Memory {
        if view.is_shared() {
            Memory::Shared {
                data: SharedMemory(view.data_ptr()),
                len: view.len(),
                dtype: view.dtype(),
            }
        } else {
            Memory::Copied(match view.floats() {
                Floats::F32(data) => Owned::F32(data.to_vec()),
                Floats::F64(data) => Owned::F64(data.to_vec()),
            })
        }
    }
}

/// Arrays of an async call, with the plan each was checked against.
pub struct Pending<'a> {
    pub array: ArrayArg<'static>,
    pub shape: &'a Shape,
    pub prepared: Prepared,
}

/// Phase 2 of an async call: checks every array (attached, of its shape's length, not sharing
/// memory with another), takes hold of its memory (see the module docs), then references each
/// array so that it stays alive until the Promise settles.
pub fn hold_all(sealed: Sealed, pending: Vec<Pending>) -> Res<ApplyTask> {
    let requests: Vec<Request> = pending
        .iter()
        .map(|p| Request::of_shape(&p.array, p.shape, Access::Write))
        .collect();
    let views = sealed.views(&requests)?;
    let memories: Vec<Memory> = views.iter().map(Memory::of).collect();
    drop(views);
    drop(requests);
    let env = sealed.finish().raw();
    let mut items = Vec::with_capacity(pending.len());
    for (p, memory) in pending.into_iter().zip(memories) {
        let mut reference = ptr::null_mut();
        // SAFETY: `p.array.raw` is a value of this call's scope; the views are gone.
        let status = unsafe { sys::napi_create_reference(env, p.array.raw, 1, &mut reference) };
        if status != sys::Status::napi_ok {
            for item in items {
                let item: AsyncItem = item;
                // SAFETY: created just above on this thread, deleted once.
                unsafe { sys::napi_delete_reference(env, item.target.0) };
            }
            return Err(Failure::from_status(env, status));
        }
        items.push(AsyncItem {
            len: p.shape.len(),
            prepared: p.prepared,
            memory,
            target: JsRef(reference),
            dtype: p.array.dtype,
            arg: p.array.arg,
        });
    }
    Ok(ApplyTask { items })
}

/// Constraint work on the libuv pool: one or many arrays (a batch), all settled together.
pub struct ApplyTask {
    items: Vec<AsyncItem>,
}

impl Task for ApplyTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        let items = &mut self.items;
        guarded(|| {
            let mut jobs: Vec<Job> = items
                .iter_mut()
                .map(|item| {
                    let AsyncItem {
                        prepared, memory, ..
                    } = item;
                    Job::in_place(prepared, memory.floats_mut())
                })
                .collect();
            apply_batch(&mut jobs)
        })?
        // Unreachable: each held buffer has the length its call was prepared for.
        .map_err(|error| Error::new(Status::GenericFailure, error.message))
    }

    fn resolve(&mut self, env: Env, _output: ()) -> napi::Result<()> {
        let copied: Vec<(usize, ArrayArg<'static>)> = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, item)| matches!(item.memory, Memory::Copied(_)))
            .map(|(index, item)| item.target_arg(&env).map(|array| (index, array)))
            .collect::<napi::Result<_>>()?;
        if copied.is_empty() {
            return Ok(());
        }
        let sealed = Reading::begin(&env).seal();
        let requests: Vec<Request> = copied
            .iter()
            .map(|(index, array)| Request::new(array, self.items[*index].len, Access::Write))
            .collect();
        let mut views = match sealed.views(&requests) {
            Ok(views) => views,
            Err(Failure::Core(error)) => {
                let message = format!(
                    "{}; it changed while the async call ran, so nothing was written",
                    error.message
                );
                return Err(Error::from(range_error_value(&env, &message)?));
            }
            Err(failure) => return Err(failure.throw(&env)),
        };
        for ((index, _), view) in copied.iter().zip(views.iter_mut()) {
            let Memory::Copied(data) = &self.items[*index].memory else {
                unreachable!("only copied items are listed")
            };
            view.floats_mut()
                .copy_from(data.floats())
                .expect("an array's element type and length never change");
        }
        Ok(())
    }

    fn finally(self, env: Env) -> napi::Result<()> {
        for item in self.items {
            // SAFETY: the reference was created in the call, on this thread, and is deleted once.
            unsafe { sys::napi_delete_reference(env.raw(), item.target.0) };
        }
        Ok(())
    }
}

impl AsyncItem {
    /// The held array as an argument of the settle step.
    fn target_arg(&self, env: &Env) -> napi::Result<ArrayArg<'static>> {
        let mut value = ptr::null_mut();
        // SAFETY: the reference is alive (deleted only in `finally`); this runs on the main thread.
        napi::check_status!(unsafe {
            sys::napi_get_reference_value(env.raw(), self.target.0, &mut value)
        })?;
        // SAFETY: a strong reference's value is the typed array it was made for.
        let _ = unsafe { Unknown::from_raw_unchecked(env.raw(), value) };
        Ok(ArrayArg {
            raw: value,
            dtype: self.dtype,
            arg: self.arg,
        })
    }
}

/// Runs a compute step on the pool, turning a panic into the Promise's rejection: unwinding into
/// libuv would abort Node.
fn guarded<R>(step: impl FnOnce() -> R) -> napi::Result<R> {
    catch_unwind(AssertUnwindSafe(step))
        .map_err(|payload| Error::new(Status::GenericFailure, panic_message(payload.as_ref())))
}

/// A task whose compute step panics (see `__panicForTests`).
pub struct PanicTask;

impl Task for PanicTask {
    type Output = ();
    type JsValue = ();

    fn compute(&mut self) -> napi::Result<()> {
        guarded(|| panic!("a test asked for a panic on the pool"))
    }

    fn resolve(&mut self, _env: Env, _output: ()) -> napi::Result<()> {
        Ok(())
    }
}
