//! Phase 1 of every call: JavaScript values are read and copied into Rust values.
//!
//! Reading a property can run user code (a getter, a Proxy trap), and that code can detach,
//! transfer or resize any buffer — also one this call has already looked at. So this phase never
//! touches typed-array memory: it notes which arguments are typed arrays (an object's typed-array
//! type cannot change) and copies everything else (shapes, axes, parameters) into owned values.
//! [`Reading::seal`] ends the phase; views of memory exist only after it ([`crate::views`]).

use std::ffi::c_void;
use std::fmt;
use std::ptr;

use napi::bindgen_prelude::{JsValue, Unknown};
use napi::{sys, Env, ValueType};
use normclip_core::layout::{element_count, MAX_RANK};
use normclip_core::spec::{quoted, ConstraintSpec, Kind};
use normclip_core::{Axes, Constraint, Error as CoreError, Mode};

use crate::errors::{Failure, Res};
use crate::views::Sealed;

/// An argument's name in messages: `array`, or `items[2].array` for a batch item. Built only
/// when a message needs it, so a plain call formats nothing.
#[derive(Clone, Copy)]
pub struct Arg<'a> {
    pub item: Option<u32>,
    pub name: &'a str,
}

impl<'a> Arg<'a> {
    pub const fn plain(name: &'a str) -> Self {
        Arg { item: None, name }
    }

    pub const fn item(index: u32, name: &'a str) -> Self {
        Arg {
            item: Some(index),
            name,
        }
    }
}

impl fmt::Display for Arg<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.item {
            Some(index) => write!(f, "items[{index}].{}", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// The element type of an array argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    F32,
    F64,
}

impl Dtype {
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 => 8,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "Float32Array",
            Dtype::F64 => "Float64Array",
        }
    }

    fn napi(self) -> sys::napi_typedarray_type {
        match self {
            Dtype::F32 => sys::TypedarrayType::float32_array,
            Dtype::F64 => sys::TypedarrayType::float64_array,
        }
    }
}

/// A Float32Array or Float64Array argument, by handle: its memory is looked at only in phase 2.
#[derive(Clone, Copy)]
pub struct ArrayArg<'a> {
    pub(crate) raw: sys::napi_value,
    pub dtype: Dtype,
    pub arg: Arg<'a>,
}

/// A shape read out of a JS array: non-negative integers whose product fits in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shape {
    dims: Vec<usize>,
    len: usize,
}

impl Shape {
    pub fn new(dims: Vec<usize>) -> Result<Shape, CoreError> {
        let len = element_count(&dims)?;
        Ok(Shape { dims, len })
    }

    pub fn dims(&self) -> &[usize] {
        &self.dims
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.len
    }
}

/// The phase-1 token: while it lives, JS values may be read (and user code may run).
pub struct Reading<'env> {
    env: &'env Env,
}

impl<'env> Reading<'env> {
    pub fn begin(env: &'env Env) -> Self {
        Reading { env }
    }

    /// Ends phase 1: from here on no N-API call that can run JavaScript is made until the
    /// views are gone.
    pub fn seal(self) -> Sealed<'env> {
        Sealed::new(self.env)
    }

    pub fn env(&self) -> &'env Env {
        self.env
    }

    fn raw_env(&self) -> sys::napi_env {
        self.env.raw()
    }

    /// Checks that `value` is a Float32Array or Float64Array (no memory is looked at).
    pub fn array<'a>(&self, value: &Unknown, arg: Arg<'a>) -> Res<ArrayArg<'a>> {
        let raw = value.raw();
        let mut kind = 0;
        // SAFETY: `raw` is a value of this call's scope; the out-pointers are valid locals, and the
        // pointer outputs we do not want are null, which napi allows. For a value that is not a
        // typed array napi returns `napi_invalid_arg` and writes nothing.
        let status = unsafe {
            sys::napi_get_typedarray_info(
                self.raw_env(),
                raw,
                &mut kind,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if status != sys::Status::napi_ok {
            return Err(Failure::type_error(format!(
                "{arg}: expected a Float32Array or Float64Array, got {}",
                describe(value)
            )));
        }
        let dtype = match kind {
            sys::TypedarrayType::float32_array => Dtype::F32,
            sys::TypedarrayType::float64_array => Dtype::F64,
            other => {
                return Err(Failure::type_error(format!(
                    "{arg}: expected a Float32Array or Float64Array, got {}",
                    typed_array_name(other)
                )))
            }
        };
        Ok(ArrayArg { raw, dtype, arg })
    }

    /// A new, zeroed typed array of `len` elements, made now: allocating can start a garbage
    /// collection, which must not happen while views exist.
    pub fn new_array<'a>(
        &self,
        dtype: Dtype,
        len: usize,
        arg: Arg<'a>,
    ) -> Res<(Unknown<'env>, ArrayArg<'a>)> {
        let too_large = || {
            CoreError::range(format!(
                "{arg}: {len} elements are more than a {} can hold",
                dtype.name()
            ))
        };
        let bytes = len.checked_mul(dtype.size()).ok_or_else(too_large)?;
        let mut data: *mut c_void = ptr::null_mut();
        let mut buffer = ptr::null_mut();
        // SAFETY: `raw_env` is this call's environment; `data` and `buffer` are valid out-pointers.
        let status =
            unsafe { sys::napi_create_arraybuffer(self.raw_env(), bytes, &mut data, &mut buffer) };
        if status != sys::Status::napi_ok {
            clear_pending_exception(self.raw_env());
            return Err(too_large().into());
        }
        let mut array = ptr::null_mut();
        // SAFETY: `buffer` was just created with room for `len` elements of `dtype` at offset 0.
        let status = unsafe {
            sys::napi_create_typedarray(self.raw_env(), dtype.napi(), len, buffer, 0, &mut array)
        };
        if status != sys::Status::napi_ok {
            clear_pending_exception(self.raw_env());
            return Err(too_large().into());
        }
        // SAFETY: `array` is a value just created in this call's environment.
        let value = unsafe { Unknown::from_raw_unchecked(self.raw_env(), array) };
        Ok((
            value,
            ArrayArg {
                raw: array,
                dtype,
                arg,
            },
        ))
    }

    /// A shape: an Array of non-negative integers (each element read once), at most
    /// [`MAX_RANK`] of them, whose product fits in memory.
    pub fn shape(&self, value: &Unknown, arg: Arg<'_>) -> Res<Shape> {
        let dims = self.rank_list(
            value,
            &arg,
            ("an array of non-negative integers", "dimensions"),
            |element, index| {
                let Some(dim) = number(element) else {
                    return Err(Failure::type_error(format!(
                        "{arg}: expected non-negative integers, got {} at index {index}",
                        describe(element)
                    )));
                };
                if !(dim >= 0.0 && dim.fract() == 0.0 && dim <= MAX_SAFE_INTEGER) {
                    return Err(Failure::range(format!(
                        "{arg}: expected non-negative integers, got {dim} at index {index}"
                    )));
                }
                Ok(dim as usize)
            },
        )?;
        Ok(Shape::new(dims).map_err(|error| CoreError {
            message: error.message.replacen("shape", &arg.to_string(), 1),
            ..error
        })?)
    }

    /// A constraint spec `{ kind, maxValue?, minValue?, rate?, axis?, mode?, epsilon? }`: the
    /// kind first, then every key checked against what the kind takes, then each parameter read
    /// once. The result is a validated snapshot: changing the object later changes nothing.
    pub fn spec(&self, value: &Unknown) -> Res<Constraint> {
        if value.get_type().ok() != Some(ValueType::Object) || is_array(value) {
            return Err(Failure::type_error(format!(
                "spec: expected an object like {{ kind: 'maxNorm', maxValue: 2, axis: 0 }}, got {}",
                describe(value)
            )));
        }
        let kinds = quoted(&Kind::ALL.map(Kind::name));
        let kind = match self.property(value, "kind")? {
            Some(kind) => match string(&kind) {
                Some(name) => Kind::parse(&name).map_err(|_| {
                    CoreError::range(format!("spec.kind: expected one of {kinds}, got {name:?}"))
                })?,
                None => {
                    return Err(Failure::type_error(format!(
                        "spec.kind: expected one of {kinds}, got {}",
                        describe(&kind)
                    )))
                }
            },
            None => {
                return Err(Failure::type_error(format!(
                    "spec.kind: expected one of {kinds}, got undefined"
                )))
            }
        };
        let takes = kind.parameters();
        for key in self.keys(value)? {
            if key != "kind" && !takes.contains(&key.as_str()) {
                let mut known = vec!["kind"];
                known.extend_from_slice(takes);
                return Err(Failure::type_error(format!(
                    "spec: unknown key {key:?} for kind '{}'; expected {}",
                    kind.name(),
                    quoted(&known)
                )));
            }
        }
        let mut spec = ConstraintSpec::new(kind);
        for &key in takes {
            let Some(field) = self.property(value, key)? else {
                continue;
            };
            let bad = |expected: &str| {
                CoreError::type_error(format!(
                    "{key}: expected {expected}, got {}",
                    describe(&field)
                ))
            };
            match key {
                "maxValue" => spec.max_value = Some(number(&field).ok_or_else(|| bad("a number"))?),
                "minValue" => spec.min_value = Some(number(&field).ok_or_else(|| bad("a number"))?),
                "rate" => spec.rate = Some(number(&field).ok_or_else(|| bad("a number"))?),
                "epsilon" => spec.epsilon = Some(number(&field).ok_or_else(|| bad("a number"))?),
                "mode" => {
                    let mode = string(&field).ok_or_else(|| bad("'keras' or 'projection'"))?;
                    spec.mode = Some(Mode::parse(&mode)?);
                }
                "axis" => spec.axes = Some(self.axes(&field)?),
                other => unreachable!("Kind::parameters names no other key: {other}"),
            }
        }
        Ok(Constraint::try_from(spec)?)
    }

    /// `axis`: null → every axis, an integer, or an array of integers (each read once).
    fn axes(&self, value: &Unknown) -> Res<Axes> {
        if value.get_type().ok() == Some(ValueType::Null) {
            return Ok(Axes::All);
        }
        if let Some(axis) = number(value) {
            return Ok(Axes::List(vec![axis_integer(axis, "axis")?]));
        }
        let axes = self.rank_list(
            value,
            &"axis",
            ("an integer, an array of integers or null", "axes"),
            |element, index| {
                let name = format!("axis[{index}]");
                let axis = number(element).ok_or_else(|| {
                    CoreError::type_error(format!(
                        "{name}: expected an integer, got {}",
                        describe(element)
                    ))
                })?;
                Ok(axis_integer(axis, &name)?)
            },
        )?;
        Ok(Axes::List(axes))
    }

    /// `object[name]`, `None` when it is undefined (missing or set to undefined).
    pub fn property(&self, object: &Unknown, name: &str) -> Res<Option<Unknown<'env>>> {
        let key = std::ffi::CString::new(name).expect("property names have no NUL");
        let mut result = ptr::null_mut();
        // SAFETY: `object` is an object of this call's scope (checked by the caller); `key` is a
        // NUL-terminated string that outlives the call; `result` is a valid out-pointer.
        let status = unsafe {
            sys::napi_get_named_property(self.raw_env(), object.raw(), key.as_ptr(), &mut result)
        };
        if status != sys::Status::napi_ok {
            return Err(Failure::from_status(self.raw_env(), status));
        }
        // SAFETY: napi returned a value of this environment.
        let value = unsafe { Unknown::from_raw_unchecked(self.raw_env(), result) };
        Ok(match value.get_type() {
            Ok(ValueType::Undefined) => None,
            _ => Some(value),
        })
    }

    /// The enumerable string keys of `object`, own and inherited (the same set a property read
    /// can see), for rejecting unknown ones.
    pub fn keys(&self, object: &Unknown) -> Res<Vec<String>> {
        let mut names = ptr::null_mut();
        // SAFETY: `object` is an object of this call's scope; `names` is a valid out-pointer.
        let status =
            unsafe { sys::napi_get_property_names(self.raw_env(), object.raw(), &mut names) };
        if status != sys::Status::napi_ok {
            return Err(Failure::from_status(self.raw_env(), status));
        }
        // SAFETY: napi returned an array of this environment.
        let names = unsafe { Unknown::from_raw_unchecked(self.raw_env(), names) };
        let count = self.array_length(&names).unwrap_or(0);
        let mut keys = Vec::with_capacity(count as usize);
        for index in 0..count {
            // A fresh array of strings made by V8: reading it runs no user code.
            if let Some(key) = string(&self.element(&names, index)?) {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    /// The length of a real Array (not a Proxy, not array-like), or `None`.
    pub fn array_length(&self, value: &Unknown) -> Option<u32> {
        if !is_array(value) {
            return None;
        }
        let mut length = 0u32;
        // SAFETY: `value` is an Array of this call's scope; `length` is a valid out-pointer.
        let status =
            unsafe { sys::napi_get_array_length(self.raw_env(), value.raw(), &mut length) };
        (status == sys::Status::napi_ok).then_some(length)
    }

    /// The items of an Array of at most [`MAX_RANK`] (a shape's dimensions, a list of axes): its
    /// length read once, each element once, converted by `each` (given the element and its
    /// index). Anything but an Array is a TypeError saying what `arg` should be (`expected`);
    /// `noun` names the items in the message for a list that is too long.
    pub fn rank_list<T>(
        &self,
        value: &Unknown,
        arg: &dyn fmt::Display,
        (expected, noun): (&str, &str),
        mut each: impl FnMut(&Unknown, u32) -> Res<T>,
    ) -> Res<Vec<T>> {
        let count = self.array_length(value).ok_or_else(|| {
            Failure::type_error(format!(
                "{arg}: expected {expected}, got {}",
                describe(value)
            ))
        })?;
        if count > MAX_RANK as u32 {
            return Err(Failure::range(format!(
                "{arg}: expected at most {MAX_RANK} {noun}, got {count}"
            )));
        }
        (0..count)
            .map(|index| each(&self.element(value, index)?, index))
            .collect()
    }

    /// `array[index]` (which can run a getter).
    pub fn element(&self, array: &Unknown, index: u32) -> Res<Unknown<'env>> {
        let mut result = ptr::null_mut();
        // SAFETY: `array` is an object of this call's scope; `result` is a valid out-pointer.
        let status =
            unsafe { sys::napi_get_element(self.raw_env(), array.raw(), index, &mut result) };
        if status != sys::Status::napi_ok {
            return Err(Failure::from_status(self.raw_env(), status));
        }
        // SAFETY: napi returned a value of this environment.
        Ok(unsafe { Unknown::from_raw_unchecked(self.raw_env(), result) })
    }
}

const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

fn axis_integer(axis: f64, name: &str) -> Result<i64, CoreError> {
    if axis.fract() != 0.0 || !axis.is_finite() || axis.abs() > MAX_RANK as f64 {
        return Err(CoreError::range(format!(
            "{name}: expected an integer in [-{MAX_RANK}, {}], got {axis}",
            MAX_RANK - 1
        )));
    }
    Ok(axis as i64)
}

fn is_array(value: &Unknown) -> bool {
    value.is_array().unwrap_or(false)
}

/// The number `value` holds, without coercion (`None` for anything but a number).
pub fn number(value: &Unknown) -> Option<f64> {
    let mut result = 0.0;
    // SAFETY: `value` is a value of its call's scope; for a non-number napi returns
    // `napi_number_expected` and runs nothing.
    let status = unsafe { sys::napi_get_value_double(value.value().env, value.raw(), &mut result) };
    (status == sys::Status::napi_ok).then_some(result)
}

/// The string `value` holds, without coercion.
pub fn string(value: &Unknown) -> Option<String> {
    if value.get_type().ok() != Some(ValueType::String) {
        return None;
    }
    // SAFETY: checked to be a string just above; reading a string runs no user code.
    unsafe { value.cast::<String>() }.ok()
}

pub fn clear_pending_exception(env: sys::napi_env) {
    let mut pending = false;
    // SAFETY: `env` is this call's environment; `pending` is a valid out-pointer.
    unsafe { sys::napi_is_exception_pending(env, &mut pending) };
    if pending {
        let mut exception = ptr::null_mut();
        // SAFETY: an exception is pending; napi hands it over and clears it.
        unsafe { sys::napi_get_and_clear_last_exception(env, &mut exception) };
    }
}

pub fn typed_array_name(kind: sys::napi_typedarray_type) -> &'static str {
    match kind {
        sys::TypedarrayType::int8_array => "Int8Array",
        sys::TypedarrayType::uint8_array => "Uint8Array",
        sys::TypedarrayType::uint8_clamped_array => "Uint8ClampedArray",
        sys::TypedarrayType::int16_array => "Int16Array",
        sys::TypedarrayType::uint16_array => "Uint16Array",
        sys::TypedarrayType::int32_array => "Int32Array",
        sys::TypedarrayType::uint32_array => "Uint32Array",
        sys::TypedarrayType::bigint64_array => "BigInt64Array",
        sys::TypedarrayType::biguint64_array => "BigUint64Array",
        _ => "an unknown typed array",
    }
}

/// A short description of a JS value for messages (its type; runs no user code).
pub fn describe(value: &Unknown) -> String {
    match value.get_type() {
        Ok(ValueType::Null) => "null".into(),
        Ok(ValueType::Undefined) => "undefined".into(),
        Ok(ValueType::Object) if is_array(value) => "an Array".into(),
        Ok(ValueType::Object) if value.is_arraybuffer().unwrap_or(false) => "an ArrayBuffer".into(),
        Ok(ValueType::Object) if value.is_typedarray().unwrap_or(false) => "a typed array".into(),
        Ok(ValueType::Object) => "an object".into(),
        Ok(ValueType::Number) => match number(value) {
            Some(n) => format!("the number {n}"),
            None => "a number".into(),
        },
        Ok(ValueType::String) => "a string".into(),
        Ok(ValueType::Boolean) => "a boolean".into(),
        Ok(ValueType::BigInt) => "a bigint".into(),
        Ok(ValueType::Function) => "a function".into(),
        Ok(ValueType::Symbol) => "a symbol".into(),
        _ => "an unknown value".into(),
    }
}
