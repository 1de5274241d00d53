//! A constraint described by its kind and optional parameters, as callers outside Rust describe
//! it (the Node binding, the TypeScript wrapper). This is the one place that owns the kind names,
//! which parameters each kind takes, and Keras' defaults; [`Constraint`]'s constructors validate.

use crate::constraint::{Constraint, Mode};
use crate::error::{Error, Result};
use crate::layout::Axes;

/// The five constraints, by the names the binding and the TypeScript wrapper use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    MaxNorm,
    MinMaxNorm,
    UnitNorm,
    NonNeg,
    Radial,
}

/// Keras' defaults (`keras/src/constraints/constraints.py`; tf-keras and tfjs-layers agree).
pub mod defaults {
    /// `MaxNorm(max_value=2)`.
    pub const MAX_NORM_MAX_VALUE: f64 = 2.0;
    /// `MinMaxNorm(min_value=0.0)`.
    pub const MIN_MAX_NORM_MIN_VALUE: f64 = 0.0;
    /// `MinMaxNorm(max_value=1.0)`.
    pub const MIN_MAX_NORM_MAX_VALUE: f64 = 1.0;
    /// `MinMaxNorm(rate=1.0)`.
    pub const MIN_MAX_NORM_RATE: f64 = 1.0;
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::MaxNorm,
        Kind::MinMaxNorm,
        Kind::UnitNorm,
        Kind::NonNeg,
        Kind::Radial,
    ];

    /// The camelCase name of a spec's `kind` (`'maxNorm'`, …).
    pub fn name(self) -> &'static str {
        match self {
            Kind::MaxNorm => "maxNorm",
            Kind::MinMaxNorm => "minMaxNorm",
            Kind::UnitNorm => "unitNorm",
            Kind::NonNeg => "nonNeg",
            Kind::Radial => "radialConstraint",
        }
    }

    /// Keras' and tfjs' class name (`MaxNorm`, …).
    pub fn class_name(self) -> &'static str {
        match self {
            Kind::MaxNorm => "MaxNorm",
            Kind::MinMaxNorm => "MinMaxNorm",
            Kind::UnitNorm => "UnitNorm",
            Kind::NonNeg => "NonNeg",
            Kind::Radial => "RadialConstraint",
        }
    }

    pub fn parse(name: &str) -> Result<Kind> {
        Kind::ALL
            .into_iter()
            .find(|kind| kind.name() == name)
            .ok_or_else(|| {
                Error::range(format!(
                    "kind: expected one of {}, got {name:?}",
                    quoted(Kind::ALL.map(Kind::name).as_slice())
                ))
            })
    }

    /// The spec keys this kind takes besides `kind`, in camelCase.
    pub fn parameters(self) -> &'static [&'static str] {
        match self {
            Kind::MaxNorm => &["maxValue", "axis", "mode", "epsilon"],
            Kind::MinMaxNorm => &["minValue", "maxValue", "rate", "axis", "mode", "epsilon"],
            Kind::UnitNorm => &["axis", "mode", "epsilon"],
            Kind::NonNeg | Kind::Radial => &[],
        }
    }
}

/// `'a', 'b' or 'c'` for messages.
pub fn quoted(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
    match quoted.split_last() {
        None => "nothing".into(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

/// A constraint as named parameters; `None` takes Keras' default. Parameters a kind does not take
/// must be `None` (see [`Kind::parameters`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ConstraintSpec {
    pub kind: Kind,
    pub max_value: Option<f64>,
    pub min_value: Option<f64>,
    pub rate: Option<f64>,
    /// `None`: Keras' default axis 0.
    pub axes: Option<Axes>,
    pub mode: Option<Mode>,
    pub epsilon: Option<f64>,
}

impl ConstraintSpec {
    pub fn new(kind: Kind) -> Self {
        ConstraintSpec {
            kind,
            max_value: None,
            min_value: None,
            rate: None,
            axes: None,
            mode: None,
            epsilon: None,
        }
    }
}

impl TryFrom<ConstraintSpec> for Constraint {
    type Error = Error;

    fn try_from(spec: ConstraintSpec) -> Result<Constraint> {
        let given = [
            ("maxValue", spec.max_value.is_some()),
            ("minValue", spec.min_value.is_some()),
            ("rate", spec.rate.is_some()),
            ("axis", spec.axes.is_some()),
            ("mode", spec.mode.is_some()),
            ("epsilon", spec.epsilon.is_some()),
        ];
        let takes = spec.kind.parameters();
        if let Some((name, _)) = given
            .iter()
            .find(|(name, set)| *set && !takes.contains(name))
        {
            return Err(Error::type_error(format!(
                "{name}: {} takes {}",
                spec.kind.class_name(),
                if takes.is_empty() {
                    "no parameters".to_string()
                } else {
                    quoted(takes)
                }
            )));
        }
        let axes = spec.axes.unwrap_or_default();
        let constraint = match spec.kind {
            Kind::MaxNorm => {
                Constraint::max_norm(spec.max_value.unwrap_or(defaults::MAX_NORM_MAX_VALUE), axes)?
            }
            Kind::MinMaxNorm => Constraint::min_max_norm(
                spec.min_value.unwrap_or(defaults::MIN_MAX_NORM_MIN_VALUE),
                spec.max_value.unwrap_or(defaults::MIN_MAX_NORM_MAX_VALUE),
                spec.rate.unwrap_or(defaults::MIN_MAX_NORM_RATE),
                axes,
            )?,
            Kind::UnitNorm => Constraint::unit_norm(axes)?,
            Kind::NonNeg => return Ok(Constraint::NonNeg),
            Kind::Radial => return Ok(Constraint::Radial),
        };
        let constraint = match spec.mode {
            Some(mode) => constraint.with_mode(mode)?,
            None => constraint,
        };
        match spec.epsilon {
            Some(epsilon) => constraint.with_epsilon(epsilon),
            None => Ok(constraint),
        }
    }
}

impl Constraint {
    pub fn kind(&self) -> Kind {
        match self {
            Constraint::MaxNorm { .. } => Kind::MaxNorm,
            Constraint::MinMaxNorm { .. } => Kind::MinMaxNorm,
            Constraint::UnitNorm { .. } => Kind::UnitNorm,
            Constraint::NonNeg => Kind::NonNeg,
            Constraint::Radial => Kind::Radial,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_keras() {
        let c = Constraint::try_from(ConstraintSpec::new(Kind::MaxNorm)).unwrap();
        assert_eq!(c, Constraint::max_norm(2.0, Axes::List(vec![0])).unwrap());
        let c = Constraint::try_from(ConstraintSpec::new(Kind::MinMaxNorm)).unwrap();
        assert_eq!(
            c,
            Constraint::min_max_norm(0.0, 1.0, 1.0, Axes::List(vec![0])).unwrap()
        );
    }

    #[test]
    fn parameters_a_kind_does_not_take_are_rejected() {
        let spec = ConstraintSpec {
            min_value: Some(1.0),
            ..ConstraintSpec::new(Kind::MaxNorm)
        };
        let err = Constraint::try_from(spec).unwrap_err();
        assert_eq!(
            err.message,
            "minValue: MaxNorm takes 'maxValue', 'axis', 'mode' or 'epsilon'"
        );
        let spec = ConstraintSpec {
            axes: Some(Axes::All),
            ..ConstraintSpec::new(Kind::NonNeg)
        };
        assert!(Constraint::try_from(spec).is_err());
    }

    #[test]
    fn kinds_round_trip_their_names() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.name()).unwrap(), kind);
        }
        let err = Kind::parse("max_norm").unwrap_err();
        assert!(
            err.message.contains("'maxNorm', 'minMaxNorm'"),
            "{}",
            err.message
        );
    }
}
