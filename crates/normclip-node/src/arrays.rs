//! Float32Array / Float64Array arguments: checked, then borrowed in place (sync calls) or held by
//! a reference (async calls).

use std::ffi::c_void;
use std::ptr;

use napi::bindgen_prelude::{Float32Array, Float64Array, JsValue, Unknown};
use napi::{sys, Env, ValueType};
use normclip_core::Error as CoreError;

/// The element type of an array argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

/// A checked, attached Float32Array or Float64Array, borrowed for the duration of a sync call.
pub struct ArrayView {
    pub dtype: Dtype,
    data: *mut c_void,
    pub len: usize,
}

impl ArrayView {
    /// Checks that `value` is a Float32Array or Float64Array that is not detached.
    /// `name` is the argument's name in messages (`array`, `items[2].array`).
    pub fn from_value(env: &Env, value: &Unknown, name: &str) -> Result<ArrayView, CoreError> {
        let raw_env = env.raw();
        let raw = value.raw();
        let mut kind = 0;
        let mut len = 0usize;
        let mut data: *mut c_void = ptr::null_mut();
        let mut buffer: sys::napi_value = ptr::null_mut();
        let mut offset = 0usize;
        // SAFETY: `raw_env` and `raw` come from the live call frame this function runs in; every
        // out-pointer is a valid local. For a value that is not a typed array napi returns
        // `napi_invalid_arg` and writes nothing.
        let status = unsafe {
            sys::napi_get_typedarray_info(
                raw_env,
                raw,
                &mut kind,
                &mut len,
                &mut data,
                &mut buffer,
                &mut offset,
            )
        };
        if status != sys::Status::napi_ok {
            return Err(CoreError::type_error(format!(
                "{name}: expected a Float32Array or Float64Array, got {}",
                describe(value)
            )));
        }
        let dtype = match kind {
            sys::TypedarrayType::float32_array => Dtype::F32,
            sys::TypedarrayType::float64_array => Dtype::F64,
            _ => {
                return Err(CoreError::type_error(format!(
                    "{name}: expected a Float32Array or Float64Array, got {}",
                    typed_array_name(kind)
                )))
            }
        };
        if len == 0 && is_detached(raw_env, buffer) {
            return Err(CoreError::range(format!(
                "{name}: expected an attached buffer, got a detached {} (it was transferred or detached)",
                typed_array_name(kind)
            )));
        }
        Ok(ArrayView { dtype, data, len })
    }

    /// The bytes this view covers, for overlap checks.
    pub fn byte_range(&self) -> (usize, usize) {
        let start = self.data as usize;
        (start, start + self.len * self.element_size())
    }

    fn element_size(&self) -> usize {
        match self.dtype {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }

    /// The elements, to be written in place.
    ///
    /// # Safety
    /// The caller must still be inside the call that produced the view (the JS array is alive and
    /// not detached: JS cannot run meanwhile), and must not create two live slices of one array.
    pub unsafe fn f32_mut<'a>(&self) -> &'a mut [f32] {
        debug_assert_eq!(self.dtype, Dtype::F32);
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: V8 reports a non-null, 4-byte aligned pointer to `len` f32s for a non-empty,
        // attached Float32Array; the caller guarantees it stays alive and unaliased.
        unsafe { std::slice::from_raw_parts_mut(self.data.cast::<f32>(), self.len) }
    }

    /// See [`ArrayView::f32_mut`].
    ///
    /// # Safety
    /// As for [`ArrayView::f32_mut`].
    pub unsafe fn f64_mut<'a>(&self) -> &'a mut [f64] {
        debug_assert_eq!(self.dtype, Dtype::F64);
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: as in `f32_mut`, for an 8-byte aligned Float64Array.
        unsafe { std::slice::from_raw_parts_mut(self.data.cast::<f64>(), self.len) }
    }
}

/// A typed array kept alive by a reference, for work that finishes on another thread.
pub enum HeldArray {
    F32(Float32Array),
    F64(Float64Array),
}

impl HeldArray {
    /// Takes a reference to an array already checked by [`ArrayView::from_value`].
    pub fn hold(view: &ArrayView, value: &Unknown) -> napi::Result<HeldArray> {
        // SAFETY: `view` checked that `value` is a typed array of exactly this element type.
        Ok(match view.dtype {
            // SAFETY: the view checked that `value` is a typed array of this element type.
            Dtype::F32 => HeldArray::F32(unsafe { value.cast::<Float32Array>()? }),
            // SAFETY: the view checked that `value` is a typed array of this element type.
            Dtype::F64 => HeldArray::F64(unsafe { value.cast::<Float64Array>()? }),
        })
    }
}

fn is_detached(env: sys::napi_env, buffer: sys::napi_value) -> bool {
    if buffer.is_null() {
        return false;
    }
    let mut detached = false;
    // SAFETY: `buffer` is the ArrayBuffer napi just returned for a typed array in this call.
    let status = unsafe { sys::napi_is_detached_arraybuffer(env, buffer, &mut detached) };
    status == sys::Status::napi_ok && detached
}

fn typed_array_name(kind: sys::napi_typedarray_type) -> &'static str {
    match kind {
        sys::TypedarrayType::int8_array => "Int8Array",
        sys::TypedarrayType::uint8_array => "Uint8Array",
        sys::TypedarrayType::uint8_clamped_array => "Uint8ClampedArray",
        sys::TypedarrayType::int16_array => "Int16Array",
        sys::TypedarrayType::uint16_array => "Uint16Array",
        sys::TypedarrayType::int32_array => "Int32Array",
        sys::TypedarrayType::uint32_array => "Uint32Array",
        sys::TypedarrayType::float32_array => "Float32Array",
        sys::TypedarrayType::float64_array => "Float64Array",
        sys::TypedarrayType::bigint64_array => "BigInt64Array",
        sys::TypedarrayType::biguint64_array => "BigUint64Array",
        _ => "an unknown typed array",
    }
}

/// A short description of a JS value for messages: its type, or "an Array" / "null".
pub fn describe(value: &Unknown) -> String {
    match value.get_type() {
        Ok(ValueType::Null) => "null".into(),
        Ok(ValueType::Undefined) => "undefined".into(),
        Ok(ValueType::Object) if value.is_array().unwrap_or(false) => "an Array".into(),
        Ok(ValueType::Object) if value.is_arraybuffer().unwrap_or(false) => "an ArrayBuffer".into(),
        Ok(ValueType::Object) => "an object".into(),
        Ok(ValueType::Number) => "a number".into(),
        Ok(ValueType::String) => "a string".into(),
        Ok(ValueType::Boolean) => "a boolean".into(),
        Ok(ValueType::BigInt) => "a bigint".into(),
        Ok(ValueType::Function) => "a function".into(),
        Ok(ValueType::Symbol) => "a symbol".into(),
        _ => "an unknown value".into(),
    }
}
