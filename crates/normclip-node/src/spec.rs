//! The constraint spec object: `{ kind, maxValue?, minValue?, rate?, axis?, mode?, epsilon? }`.

use napi::bindgen_prelude::{Array, JsValue, Object, Unknown};
use napi::ValueType;
use napi_derive::napi;
use normclip_core::{Axes, Constraint, Error as CoreError, Mode};

use crate::arrays::describe;

/// What a `NativeConstraint` is built from. Unset fields take Keras' defaults.
#[allow(
    dead_code,
    reason = "declares the TypeScript interface only; the binding reads the fields one by one to name a bad one in its error"
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
    /// Added to every norm in Keras mode, default 1e-7 (Keras' `backend.epsilon()`).
    pub epsilon: Option<f64>,
}

/// Builds a core constraint from a spec object, with messages naming the field.
pub fn read_spec(value: &Unknown) -> Result<Constraint, CoreError> {
    if value.get_type().ok() != Some(ValueType::Object) || value.is_array().unwrap_or(false) {
        return Err(CoreError::type_error(format!(
            "spec: expected an object like {{ kind: 'maxNorm', maxValue: 2, axis: 0 }}, got {}",
            describe(value)
        )));
    }
    // SAFETY: checked to be a (non-array) object just above.
    let object = unsafe { value.cast::<Object>() }
        .map_err(|e| CoreError::type_error(format!("spec: {e}")))?;
    // A missing property reads as `None`, the same as `undefined`.
    let field = |name: &str| -> Result<Option<Unknown>, CoreError> {
        object
            .get::<Unknown>(name)
            .map_err(|e| CoreError::type_error(format!("spec.{name}: {e}")))
    };
    let kind = string_field(&field("kind")?, "kind")?
        .ok_or_else(|| CoreError::type_error("spec.kind: expected one of 'maxNorm', 'minMaxNorm', 'unitNorm', 'nonNeg', 'radialConstraint', got undefined"))?;
    let number = |name: &str, default: f64| -> Result<f64, CoreError> {
        Ok(number_field(&field(name)?, name)?.unwrap_or(default))
    };
    let constraint = match kind.as_str() {
        "maxNorm" => Constraint::max_norm(number("maxValue", 2.0)?, read_axes(&field("axis")?)?)?,
        "minMaxNorm" => Constraint::min_max_norm(
            number("minValue", 0.0)?,
            number("maxValue", 1.0)?,
            number("rate", 1.0)?,
            read_axes(&field("axis")?)?,
        )?,
        "unitNorm" => Constraint::unit_norm(read_axes(&field("axis")?)?)?,
        "nonNeg" => Constraint::NonNeg,
        "radialConstraint" => Constraint::Radial,
        other => {
            return Err(CoreError::range(format!(
                "spec.kind: expected one of 'maxNorm', 'minMaxNorm', 'unitNorm', 'nonNeg', 'radialConstraint', got {other:?}"
            )))
        }
    };
    let constraint = match string_field(&field("mode")?, "mode")? {
        Some(mode) => constraint.with_mode(Mode::parse(&mode)?)?,
        None => constraint,
    };
    match number_field(&field("epsilon")?, "epsilon")? {
        Some(epsilon) => constraint.with_epsilon(epsilon),
        None => Ok(constraint),
    }
}

fn string_field(value: &Option<Unknown>, name: &str) -> Result<Option<String>, CoreError> {
    let Some(value) = value else { return Ok(None) };
    match value.get_type() {
        Ok(ValueType::Undefined) => Ok(None),
        Ok(ValueType::String) => {
            // SAFETY: checked to be a string just above.
            let text: String = unsafe { value.cast::<String>() }
                .map_err(|e| CoreError::type_error(format!("{name}: {e}")))?;
            Ok(Some(text))
        }
        _ => Err(CoreError::type_error(format!(
            "{name}: expected a string, got {}",
            describe(value)
        ))),
    }
}

fn number_field(value: &Option<Unknown>, name: &str) -> Result<Option<f64>, CoreError> {
    let Some(value) = value else { return Ok(None) };
    match value.get_type() {
        Ok(ValueType::Undefined) => Ok(None),
        Ok(ValueType::Number) => {
            // SAFETY: checked to be a number just above.
            Ok(Some(unsafe { value.cast::<f64>() }.map_err(|e| {
                CoreError::type_error(format!("{name}: {e}"))
            })?))
        }
        _ => Err(CoreError::type_error(format!(
            "{name}: expected a number, got {}",
            describe(value)
        ))),
    }
}

/// `axis`: undefined → `[0]`, null → all, an integer, or an array of integers.
fn read_axes(value: &Option<Unknown>) -> Result<Axes, CoreError> {
    let Some(value) = value else {
        return Ok(Axes::default());
    };
    match value.get_type() {
        Ok(ValueType::Undefined) => Ok(Axes::default()),
        Ok(ValueType::Null) => Ok(Axes::All),
        Ok(ValueType::Number) => Ok(Axes::List(vec![axis_integer(value, "axis")?])),
        Ok(ValueType::Object) if value.is_array().unwrap_or(false) => {
            // SAFETY: checked to be an Array just above.
            let array = unsafe { value.cast::<Array>() }
                .map_err(|e| CoreError::type_error(format!("axis: {e}")))?;
            let mut axes = Vec::with_capacity(array.len() as usize);
            for index in 0..array.len() {
                let element: Unknown = array.get(index).ok().flatten().ok_or_else(|| {
                    CoreError::type_error(format!("axis: could not read index {index}"))
                })?;
                axes.push(axis_integer(&element, &format!("axis[{index}]"))?);
            }
            Ok(Axes::List(axes))
        }
        _ => Err(CoreError::type_error(format!(
            "axis: expected an integer, an array of integers or null, got {}",
            describe(value)
        ))),
    }
}

fn axis_integer(value: &Unknown, name: &str) -> Result<i64, CoreError> {
    if value.get_type().ok() != Some(ValueType::Number) {
        return Err(CoreError::type_error(format!(
            "{name}: expected an integer, got {}",
            describe(value)
        )));
    }
    // SAFETY: checked to be a number just above.
    let axis: f64 = unsafe { value.cast::<f64>() }.unwrap_or(f64::NAN);
    if axis.fract() != 0.0 || !axis.is_finite() || axis.abs() > 1e9 {
        return Err(CoreError::range(format!(
            "{name}: expected an integer, got {axis}"
        )));
    }
    Ok(axis as i64)
}
