//! Phase 2 of every call: views of typed-array memory, taken after every JS value has been read
//! ([`crate::read`]) and used before anything can run JavaScript again.
//!
//! A [`Sealed`] token exists only once [`crate::read::Reading::seal`] has ended phase 1, and a
//! [`View`] borrows it: the ordering "read everything, then look at memory" is what the types
//! allow. N-API calls made here (`napi_get_typedarray_info`, `napi_is_arraybuffer`,
//! `napi_is_detached_arraybuffer`) never run JavaScript.

use std::ffi::c_void;
use std::marker::PhantomData;
use std::ptr;

use napi::bindgen_prelude::JsValue;
use napi::{sys, Env};
use normclip_core::{Floats, FloatsMut};

use crate::errors::{Failure, Res};
use crate::read::{describe, typed_array_name, Arg, ArrayArg, Dtype, Shape};

/// The phase-2 token.
pub struct Sealed<'env> {
    env: &'env Env,
}

/// One view asked for: the array, its expected length, and how it is used.
pub struct Request<'r> {
    pub array: &'r ArrayArg<'r>,
    pub len: usize,
    pub access: Access,
    /// The shape the length comes from, named in the message when it does not match.
    pub shape: Option<&'r [usize]>,
}

impl<'r> Request<'r> {
    pub fn new(array: &'r ArrayArg<'r>, len: usize, access: Access) -> Self {
        Request {
            array,
            len,
            access,
            shape: None,
        }
    }

    /// A view of `shape`'s element count, the shape named when the length does not match.
    pub fn of_shape(array: &'r ArrayArg<'r>, shape: &'r Shape, access: Access) -> Self {
        Request {
            array,
            len: shape.len(),
            access,
            shape: Some(shape.dims()),
        }
    }
}

/// Whether a view is only read or also written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

/// A checked view of one typed array's memory: attached, of the expected length and type,
/// aligned. Views handed out together by [`Sealed::views`] never overlap where one is written.
pub struct View<'s> {
    dtype: Dtype,
    data: *mut c_void,
    len: usize,
    access: Access,
    // For `is_shared`, asked only by async calls: a sync call makes no N-API call it does not need.
    env: sys::napi_env,
    buffer: sys::napi_value,
    _sealed: PhantomData<&'s ()>,
}

impl<'env> Sealed<'env> {
    pub(crate) fn new(env: &'env Env) -> Self {
        Sealed { env }
    }

    /// Ends phase 2; the views are gone (they borrow this token).
    pub fn finish(self) -> &'env Env {
        self.env
    }

    /// One view (see [`Sealed::views`]).
    pub fn view(&self, request: &Request) -> Res<View<'_>> {
        self.take(request)
    }

    /// Views of several arrays, each checked to be attached, of `len` elements, aligned, and —
    /// where it is written — disjoint from every other one.
    pub fn views(&self, requests: &[Request]) -> Res<Vec<View<'_>>> {
        let mut views = Vec::with_capacity(requests.len());
        for request in requests {
            views.push(self.take(request)?);
        }
        check_disjoint(requests, &views)?;
        Ok(views)
    }

    fn take(&self, request: &Request) -> Res<View<'_>> {
        let array = request.array;
        self.take_raw(array.raw, Some(array.dtype), array.arg, request)
    }

    /// The view of a value not looked at in phase 1 (`applyBound`, whose arguments run no
    /// JavaScript): its type is checked here, from the same N-API call.
    pub fn view_of_value(
        &self,
        value: &napi::bindgen_prelude::Unknown,
        arg: Arg<'_>,
        len: usize,
        shape: Option<&[usize]>,
        access: Access,
    ) -> Res<View<'_>> {
        let placeholder = ArrayArg {
            raw: value.raw(),
            dtype: Dtype::F32,
            arg,
        };
        let request = Request {
            array: &placeholder,
            len,
            access,
            shape,
        };
        self.take_raw(value.raw(), None, arg, &request)
    }

    fn take_raw(
        &self,
        raw: sys::napi_value,
        known: Option<Dtype>,
        arg: Arg<'_>,
        request: &Request,
    ) -> Res<View<'_>> {
        let (expected, access) = (request.len, request.access);
        let env = self.env.raw();
        let mut kind = 0;
        let mut len = 0usize;
        let mut data: *mut c_void = ptr::null_mut();
        let mut buffer: sys::napi_value = ptr::null_mut();
        let mut offset = 0usize;
        // SAFETY: `raw` is a value of this call's scope; every out-pointer is a valid local. For a
        // value that is not a typed array napi returns `napi_invalid_arg` and writes nothing.
        let status = unsafe {
            sys::napi_get_typedarray_info(
                env,
                raw,
                &mut kind,
                &mut len,
                &mut data,
                &mut buffer,
                &mut offset,
            )
        };
        let dtype = match (status == sys::Status::napi_ok, kind) {
            (true, sys::TypedarrayType::float32_array) => Dtype::F32,
            (true, sys::TypedarrayType::float64_array) => Dtype::F64,
            (true, other) => {
                return Err(Failure::type_error(format!(
                    "{arg}: expected a Float32Array or Float64Array, got {}",
                    typed_array_name(other)
                )))
            }
            (false, _) => {
                // SAFETY: `raw` is a value of this call's scope.
                let value = unsafe { napi::bindgen_prelude::Unknown::from_raw_unchecked(env, raw) };
                return Err(Failure::type_error(format!(
                    "{arg}: expected a Float32Array or Float64Array, got {}",
                    describe(&value)
                )));
            }
        };
        // A phase-1 type is a promise about the object: typed-array types never change.
        debug_assert!(known.is_none_or(|known| known == dtype));
        if len == 0 && is_detached(env, buffer) {
            return Err(Failure::range(format!(
                "{arg}: expected an attached buffer, got a detached {} (it was transferred or detached)",
                dtype.name()
            )));
        }
        if len != expected {
            let product = match request.shape {
                Some(shape) => format!(" (the product of shape {shape:?})"),
                None => String::new(),
            };
            return Err(Failure::range(format!(
                "{arg}: expected length {expected}{product}, got {len}"
            )));
        }
        if len > 0 && (data.is_null() || !(data as usize).is_multiple_of(dtype.size())) {
            return Err(Failure::range(format!(
                "{arg}: its memory is not aligned for a {}",
                dtype.name()
            )));
        }
        Ok(View {
            dtype,
            data,
            len,
            access,
            env,
            buffer,
            _sealed: PhantomData,
        })
    }
}

impl View<'_> {
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the memory belongs to a SharedArrayBuffer: it can be neither detached nor shrunk,
    /// so a reference to the array keeps it valid (other threads may still write it).
    pub fn is_shared(&self) -> bool {
        is_shared(self.env, self.buffer)
    }

    /// The start of the memory, for work that holds the array alive in another way.
    pub fn data_ptr(&self) -> *mut c_void {
        self.data
    }

    /// The elements, read.
    pub fn floats(&self) -> Floats<'_> {
        // SAFETY: the view was checked (attached, `len` elements, aligned) after phase 1, and no
        // JavaScript runs while it lives (it borrows the `Sealed` token); any mutable access goes
        // through `floats_mut`, which needs `&mut self`, and written views are disjoint from
        // every other view of the same call.
        unsafe { self.dtype.floats(self.data, self.len) }
    }

    /// The elements, to be written in place. Only for views requested with [`Access::Write`].
    pub fn floats_mut(&mut self) -> FloatsMut<'_> {
        assert_eq!(
            self.access,
            Access::Write,
            "a read-only view is never written"
        );
        // SAFETY: as in `floats`; and this view is disjoint from every other view of the call, so
        // this is the only reference to its memory while the borrow lasts.
        unsafe { self.dtype.floats_mut(self.data, self.len) }
    }
}

impl Dtype {
    /// `len` elements of this type at `data`, read-only. Empty when `len` is 0 (then `data` may
    /// be anything, e.g. the null pointer of a detached or empty buffer).
    ///
    /// # Safety
    /// Unless `len` is 0: `data` points to `len` aligned elements of this type that stay alive
    /// and unwritten for `'a`.
    pub unsafe fn floats<'a>(self, data: *const c_void, len: usize) -> Floats<'a> {
        use std::slice::from_raw_parts;
        if len == 0 {
            return match self {
                Dtype::F32 => Floats::F32(&[]),
                Dtype::F64 => Floats::F64(&[]),
            };
        }
        // SAFETY: the caller's contract, for a non-empty slice of this type.
        unsafe {
            match self {
                Dtype::F32 => Floats::F32(from_raw_parts(data.cast(), len)),
                Dtype::F64 => Floats::F64(from_raw_parts(data.cast(), len)),
            }
        }
    }

    /// [`Dtype::floats`], writable.
    ///
    /// # Safety
    /// As for [`Dtype::floats`], and nothing else reads or writes the elements during `'a`.
    pub unsafe fn floats_mut<'a>(self, data: *mut c_void, len: usize) -> FloatsMut<'a> {
        use std::slice::from_raw_parts_mut;
        if len == 0 {
            return match self {
                Dtype::F32 => FloatsMut::F32(&mut []),
                Dtype::F64 => FloatsMut::F64(&mut []),
            };
        }
        // SAFETY: the caller's contract, for a non-empty slice of this type.
        unsafe {
            match self {
                Dtype::F32 => FloatsMut::F32(from_raw_parts_mut(data.cast(), len)),
                Dtype::F64 => FloatsMut::F64(from_raw_parts_mut(data.cast(), len)),
            }
        }
    }
}

fn byte_range(view: &View) -> (usize, usize) {
    let start = view.data as usize;
    (start, start + view.len * view.dtype.size())
}

/// Rejects a written view that shares memory with any other view.
fn check_disjoint(requests: &[Request], views: &[View]) -> Res<()> {
    let mut ranges: Vec<(usize, usize, usize)> = views
        .iter()
        .enumerate()
        .filter(|(_, view)| view.len > 0)
        .map(|(index, view)| {
            let (start, end) = byte_range(view);
            (start, end, index)
        })
        .collect();
    if ranges.len() < 2 {
        return Ok(());
    }
    ranges.sort_unstable();
    // Sweep in address order, keeping the range that reaches furthest so far. A range that
    // overlaps an earlier written one also overlaps that furthest-reaching range, or the overlap
    // was already reported when the furthest-reaching one was swept: one pass finds every case.
    let mut reach = ranges[0];
    for &(start, end, index) in &ranges[1..] {
        let (_, reach_end, reach_index) = reach;
        if start < reach_end {
            let written = |i: usize| views[i].access == Access::Write;
            if written(index) || written(reach_index) {
                let (first, second) = (reach_index.min(index), reach_index.max(index));
                return Err(Failure::range(format!(
                    "{}: expected memory of its own, but it overlaps {}",
                    requests[second].array.arg, requests[first].array.arg
                )));
            }
        }
        if end > reach_end {
            reach = (start, end, index);
        }
    }
    Ok(())
}

fn is_detached(env: sys::napi_env, buffer: sys::napi_value) -> bool {
    if buffer.is_null() {
        return false;
    }
    let mut detached = false;
    // SAFETY: `buffer` is the buffer napi just returned for a typed array of this call.
    let status = unsafe { sys::napi_is_detached_arraybuffer(env, buffer, &mut detached) };
    status == sys::Status::napi_ok && detached
}

/// A typed array's buffer is an ArrayBuffer or a SharedArrayBuffer; `napi_is_arraybuffer` is
/// false for the latter. A native check: no JavaScript can fake it.
fn is_shared(env: sys::napi_env, buffer: sys::napi_value) -> bool {
    if buffer.is_null() {
        return false;
    }
    let mut plain = true;
    // SAFETY: as in `is_detached`.
    let status = unsafe { sys::napi_is_arraybuffer(env, buffer, &mut plain) };
    status == sys::Status::napi_ok && !plain
}
