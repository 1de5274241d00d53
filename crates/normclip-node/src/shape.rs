//! The `shape` argument: an array of non-negative integers.

use napi::bindgen_prelude::{Array, JsValue, Unknown};
use napi::sys;
use normclip_core::Error as CoreError;

use crate::arrays::describe;

/// Largest rank accepted (Keras and tfjs stop far below).
const MAX_RANK: u32 = 64;

pub fn read_shape(value: &Unknown, name: &str) -> Result<Vec<usize>, CoreError> {
    if !value.is_array().unwrap_or(false) {
        return Err(CoreError::type_error(format!(
            "{name}: expected an array of non-negative integers, got {}",
            describe(value)
        )));
    }
    // SAFETY: checked to be an Array just above.
    let array = unsafe { value.cast::<Array>() }
        .map_err(|e| CoreError::type_error(format!("{name}: {e}")))?;
    let rank = array.len();
    if rank > MAX_RANK {
        return Err(CoreError::range(format!(
            "{name}: expected at most {MAX_RANK} dimensions, got {rank}"
        )));
    }
    let mut shape = Vec::with_capacity(rank as usize);
    for index in 0..rank {
        let element: Unknown = array.get(index).ok().flatten().ok_or_else(|| {
            CoreError::type_error(format!("{name}: could not read index {index}"))
        })?;
        shape.push(dimension(&element, name, index)?);
    }
    Ok(shape)
}

fn dimension(element: &Unknown, name: &str, index: u32) -> Result<usize, CoreError> {
    let mut value = f64::NAN;
    // SAFETY: `element` was just read from the array in this call frame; for a non-number napi
    // returns `napi_number_expected` and writes nothing.
    let status =
        unsafe { sys::napi_get_value_double(element.value().env, element.raw(), &mut value) };
    if status != sys::Status::napi_ok {
        return Err(CoreError::type_error(format!(
            "{name}: expected non-negative integers, got {} at index {index}",
            describe(element)
        )));
    }
    if !(value >= 0.0 && value.fract() == 0.0 && value <= 9_007_199_254_740_991.0) {
        return Err(CoreError::range(format!(
            "{name}: expected non-negative integers, got {value} at index {index}"
        )));
    }
    Ok(value as usize)
}

/// A shape for returning to JS.
pub fn to_js_shape(shape: &[usize]) -> Vec<f64> {
    shape.iter().map(|&d| d as f64).collect()
}
