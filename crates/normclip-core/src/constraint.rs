//! The constraints and their parameters, validated once on construction.
//!
//! Each norm constraint turns a slice's norm `n` into one value per slice: a factor the slice is
//! multiplied by (MaxNorm, MinMaxNorm) or a divisor it is divided by (UnitNorm, as Keras divides).
//! In [`Mode::Keras`] that value is Keras' formula evaluated in the element type, `eps` included;
//! in [`Mode::Projection`] only slices outside the bounds move, exactly onto the bound.

use crate::element::Element;
use crate::error::{Error, Result};
use crate::layout::Axes;

/// Keras' `backend.epsilon()`: added to every norm before dividing.
pub const DEFAULT_EPSILON: f64 = 1e-7;

/// How a norm constraint treats slices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Keras' formula exactly: `w * clip(n) / (eps + n)`. The eps shrinks every slice a little on
    /// every application, even those within bounds.
    #[default]
    Keras,
    /// The Euclidean projection onto the constraint set: a slice within bounds is left untouched,
    /// one outside is scaled by exactly `bound / n`.
    Projection,
}

impl Mode {
    pub fn parse(name: &str) -> Result<Mode> {
        match name {
            "keras" => Ok(Mode::Keras),
            "projection" => Ok(Mode::Projection),
            other => Err(Error::range(format!(
                "mode: expected 'keras' or 'projection', got {other:?}"
            ))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mode::Keras => "keras",
            Mode::Projection => "projection",
        }
    }
}

/// Parameters shared by the norm constraints.
#[derive(Debug, Clone, PartialEq)]
pub struct NormOptions {
    pub axes: Axes,
    pub mode: Mode,
    pub epsilon: f64,
}

impl NormOptions {
    fn new(axes: Axes) -> Result<Self> {
        // Whether -1 and 1 name the same axis depends on the rank, known only at apply time;
        // the same literal twice is wrong for every rank, so it is rejected now.
        if let Axes::List(list) = &axes {
            for (position, axis) in list.iter().enumerate() {
                if list[..position].contains(axis) {
                    return Err(Error::range(format!(
                        "axis: expected distinct axes, got {axis} twice ({list:?})"
                    )));
                }
            }
        }
        Ok(Self {
            axes,
            mode: Mode::Keras,
            epsilon: DEFAULT_EPSILON,
        })
    }
}

/// A weight constraint.
#[derive(Debug, Clone, PartialEq)]
pub enum Constraint {
    /// Caps each slice's L2 norm at `max_value` (Keras `MaxNorm`, Srivastava et al. 2014).
    MaxNorm {
        max_value: f64,
        options: NormOptions,
    },
    /// Pulls each slice's norm into `[min_value, max_value]`, by a fraction `rate` of the way.
    MinMaxNorm {
        min_value: f64,
        max_value: f64,
        rate: f64,
        options: NormOptions,
    },
    /// Scales each slice to unit norm.
    UnitNorm { options: NormOptions },
    /// Replaces negative weights (and -0) by +0 (Keras 3: `maximum(w, 0)`); NaN stays NaN.
    NonNeg,
    /// tf-keras 2.x `RadialConstraint` on a square rank-4 kernel, as its code computes it.
    Radial,
}

fn check_bound(name: &str, value: f64) -> Result<()> {
    if !value.is_finite() || value < 0.0 {
        return Err(Error::range(format!(
            "{name}: expected a finite number >= 0, got {value}"
        )));
    }
    Ok(())
}

impl Constraint {
    /// `MaxNorm(max_value, axis)`. Keras' defaults are `max_value = 2`, `axis = 0`.
    pub fn max_norm(max_value: f64, axes: Axes) -> Result<Constraint> {
        check_bound("maxValue", max_value)?;
        Ok(Constraint::MaxNorm {
            max_value,
            options: NormOptions::new(axes)?,
        })
    }

    /// `MinMaxNorm(min_value, max_value, rate, axis)`. Keras' defaults are `0, 1, 1, 0`.
    pub fn min_max_norm(
        min_value: f64,
        max_value: f64,
        rate: f64,
        axes: Axes,
    ) -> Result<Constraint> {
        check_bound("minValue", min_value)?;
        check_bound("maxValue", max_value)?;
        if min_value > max_value {
            return Err(Error::range(format!(
                "minValue: expected at most maxValue ({max_value}), got {min_value}"
            )));
        }
        if !(0.0..=1.0).contains(&rate) {
            return Err(Error::range(format!(
                "rate: expected a number in [0, 1], got {rate}"
            )));
        }
        Ok(Constraint::MinMaxNorm {
            min_value,
            max_value,
            rate,
            options: NormOptions::new(axes)?,
        })
    }

    /// `UnitNorm(axis)`. Keras' default is `axis = 0`.
    pub fn unit_norm(axes: Axes) -> Result<Constraint> {
        Ok(Constraint::UnitNorm {
            options: NormOptions::new(axes)?,
        })
    }

    /// Sets the mode of a norm constraint; NonNeg and Radial have none.
    pub fn with_mode(mut self, mode: Mode) -> Result<Constraint> {
        match self.options_mut() {
            Some(options) => options.mode = mode,
            None if mode == Mode::Keras => {}
            None => {
                return Err(Error::range(
                    "mode: 'projection' applies only to norm constraints",
                ))
            }
        }
        Ok(self)
    }

    /// Sets the epsilon added to every norm in Keras mode (default 1e-7).
    pub fn with_epsilon(mut self, epsilon: f64) -> Result<Constraint> {
        check_bound("epsilon", epsilon)?;
        match self.options_mut() {
            Some(options) => options.epsilon = epsilon,
            None if epsilon == DEFAULT_EPSILON => {}
            None => return Err(Error::range("epsilon: applies only to norm constraints")),
        }
        Ok(self)
    }

    pub fn options(&self) -> Option<&NormOptions> {
        match self {
            Constraint::MaxNorm { options, .. }
            | Constraint::MinMaxNorm { options, .. }
            | Constraint::UnitNorm { options } => Some(options),
            Constraint::NonNeg | Constraint::Radial => None,
        }
    }

    fn options_mut(&mut self) -> Option<&mut NormOptions> {
        match self {
            Constraint::MaxNorm { options, .. }
            | Constraint::MinMaxNorm { options, .. }
            | Constraint::UnitNorm { options } => Some(options),
            Constraint::NonNeg | Constraint::Radial => None,
        }
    }

    /// The class name Keras and tfjs use.
    pub fn class_name(&self) -> &'static str {
        match self {
            Constraint::MaxNorm { .. } => "MaxNorm",
            Constraint::MinMaxNorm { .. } => "MinMaxNorm",
            Constraint::UnitNorm { .. } => "UnitNorm",
            Constraint::NonNeg => "NonNeg",
            Constraint::Radial => "RadialConstraint",
        }
    }
}

/// How a slice is rescaled, in the element type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum SliceOp {
    Multiply,
    Divide,
}

/// Per-slice formulas of a norm constraint, with its parameters already in the element type the
/// way Keras' weakly-typed Python floats meet an f32 tensor.
pub(crate) struct SliceRule<T> {
    kind: RuleKind,
    mode: Mode,
    min: T,
    max: T,
    rate: T,
    one_minus_rate: T,
    epsilon: T,
    min64: f64,
    max64: f64,
    rate64: f64,
    epsilon64: f64,
}

#[derive(Clone, Copy)]
enum RuleKind {
    Max,
    MinMax,
    Unit,
}

impl<T: Element> SliceRule<T> {
    pub(crate) fn new(constraint: &Constraint) -> Option<SliceRule<T>> {
        let (kind, min, max, rate, options) = match constraint {
            Constraint::MaxNorm { max_value, options } => {
                (RuleKind::Max, 0.0, *max_value, 1.0, options)
            }
            Constraint::MinMaxNorm {
                min_value,
                max_value,
                rate,
                options,
            } => (RuleKind::MinMax, *min_value, *max_value, *rate, options),
            Constraint::UnitNorm { options } => (RuleKind::Unit, 0.0, 1.0, 1.0, options),
            Constraint::NonNeg | Constraint::Radial => return None,
        };
        Some(SliceRule {
            kind,
            mode: options.mode,
            min: T::from_f64(min),
            max: T::from_f64(max),
            rate: T::from_f64(rate),
            one_minus_rate: T::from_f64(1.0 - rate),
            epsilon: T::from_f64(options.epsilon),
            min64: min,
            max64: max,
            rate64: rate,
            epsilon64: options.epsilon,
        })
    }

    pub(crate) fn op(&self) -> SliceOp {
        match self.kind {
            RuleKind::Unit => SliceOp::Divide,
            RuleKind::Max | RuleKind::MinMax => SliceOp::Multiply,
        }
    }

    /// The slice's value from its norm, computed in the element type exactly as Keras writes it.
    pub(crate) fn value(&self, norm: T) -> T {
        match (self.mode, self.kind) {
            (Mode::Keras, RuleKind::Max) => clip(norm, T::ZERO, self.max) / (self.epsilon + norm),
            (Mode::Keras, RuleKind::MinMax) => {
                let desired =
                    self.rate * clip(norm, self.min, self.max) + self.one_minus_rate * norm;
                desired / (self.epsilon + norm)
            }
            (Mode::Keras, RuleKind::Unit) => self.epsilon + norm,
            (Mode::Projection, RuleKind::Unit) => {
                // NaN divides the slice into NaN, as every other constraint turns it.
                if norm > T::ZERO || norm.is_nan() {
                    norm
                } else {
                    T::ONE
                }
            }
            (Mode::Projection, _) => {
                let bound = if norm > self.max {
                    self.max
                } else if norm < self.min && norm > T::ZERO {
                    self.min
                } else {
                    return if norm.is_nan() { norm } else { T::ONE };
                };
                // With rate 1 the target is the bound itself: writing it so keeps an infinite norm
                // at a factor of 0 (as Keras mode does) instead of 0 · inf = NaN.
                let desired = if self.rate == T::ONE {
                    bound
                } else {
                    self.rate * bound + self.one_minus_rate * norm
                };
                desired / norm
            }
        }
    }

    /// Replaces each norm by its slice's value, with the rule's branch taken once for all slices.
    pub(crate) fn values_from_norms(&self, norms: &mut [T]) {
        macro_rules! each {
            (|$n:ident| $body:expr) => {
                for slot in norms.iter_mut() {
                    let $n = *slot;
                    *slot = $body;
                }
            };
        }
        let (min, max, rate, one_minus_rate, epsilon) = (
            self.min,
            self.max,
            self.rate,
            self.one_minus_rate,
            self.epsilon,
        );
        match (self.mode, self.kind) {
            (Mode::Keras, RuleKind::Max) => each!(|n| clip(n, T::ZERO, max) / (epsilon + n)),
            (Mode::Keras, RuleKind::MinMax) => {
                each!(|n| (rate * clip(n, min, max) + one_minus_rate * n) / (epsilon + n))
            }
            (Mode::Keras, RuleKind::Unit) => each!(|n| epsilon + n),
            (Mode::Projection, _) => each!(|n| self.value(n)),
        }
    }

    /// Whether a zero norm must be told apart from a tiny one (its f32 squares underflowed): only
    /// when the rule scales small slices up, i.e. projection onto a sphere or shell.
    pub(crate) fn needs_exact_small_norms(&self) -> bool {
        self.mode == Mode::Projection && (matches!(self.kind, RuleKind::Unit) || self.min64 > 0.0)
    }

    /// The slice's value (factor or divisor) in f64, for a norm too large for the element type:
    /// its squares overflowed f32 although the exact norm is finite. The caller applies it in f64.
    pub(crate) fn value_wide(&self, norm: f64) -> f64 {
        let clip64 = |n: f64, lo: f64, hi: f64| n.max(lo).min(hi);
        match (self.mode, self.kind) {
            (Mode::Keras, RuleKind::Max) => clip64(norm, 0.0, self.max64) / (self.epsilon64 + norm),
            (Mode::Keras, RuleKind::MinMax) => {
                (self.rate64 * clip64(norm, self.min64, self.max64) + (1.0 - self.rate64) * norm)
                    / (self.epsilon64 + norm)
            }
            (Mode::Keras, RuleKind::Unit) => self.epsilon64 + norm,
            (Mode::Projection, RuleKind::Unit) => norm,
            (Mode::Projection, _) => {
                if norm <= self.max64 {
                    return 1.0;
                }
                if self.rate64 == 1.0 {
                    self.max64 / norm
                } else {
                    (self.rate64 * self.max64 + (1.0 - self.rate64) * norm) / norm
                }
            }
        }
    }
}

/// numpy's `clip`: NaN stays NaN.
#[inline]
fn clip<T: Element>(value: T, low: T, high: T) -> T {
    if value < low {
        low
    } else if value > high {
        high
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_are_validated_with_their_names() {
        let err = Constraint::max_norm(-1.0, Axes::default()).unwrap_err();
        assert_eq!(
            err.message,
            "maxValue: expected a finite number >= 0, got -1"
        );
        assert!(Constraint::max_norm(f64::INFINITY, Axes::default()).is_err());
        assert!(Constraint::max_norm(f64::NAN, Axes::default()).is_err());
        let err = Constraint::min_max_norm(2.0, 1.0, 1.0, Axes::default()).unwrap_err();
        assert!(
            err.message
                .starts_with("minValue: expected at most maxValue (1)"),
            "{}",
            err.message
        );
        let err = Constraint::min_max_norm(0.0, 1.0, 1.5, Axes::default()).unwrap_err();
        assert_eq!(err.message, "rate: expected a number in [0, 1], got 1.5");
        assert!(Constraint::NonNeg.with_mode(Mode::Projection).is_err());
        assert!(Constraint::unit_norm(Axes::All)
            .unwrap()
            .with_epsilon(-1e-7)
            .is_err());
        let err = Constraint::unit_norm(Axes::List(vec![0, 0])).unwrap_err();
        assert!(err.message.contains("got 0 twice"), "{}", err.message);
    }

    #[test]
    fn keras_factor_adds_epsilon_inside_bounds() {
        let rule =
            SliceRule::<f32>::new(&Constraint::max_norm(2.0, Axes::default()).unwrap()).unwrap();
        // Below 2, eps shifts the factor off 1; at and above 2 in f32, eps + n rounds to n.
        assert!(rule.value(1.0f32) < 1.0);
        assert_eq!(rule.value(2.0f32), 1.0);
        assert_eq!(rule.value(0.0f32), 0.0);
        assert_eq!(rule.value(4.0f32), 0.5);
        assert!(rule.value(f32::NAN).is_nan());
    }

    #[test]
    fn projection_leaves_compliant_slices_alone() {
        let c = Constraint::min_max_norm(1.0, 3.0, 1.0, Axes::default())
            .unwrap()
            .with_mode(Mode::Projection)
            .unwrap();
        let rule = SliceRule::<f32>::new(&c).unwrap();
        assert_eq!(rule.value(2.0f32), 1.0);
        assert_eq!(rule.value(0.5f32), 2.0);
        assert_eq!(rule.value(6.0f32), 0.5);
        assert_eq!(rule.value(0.0f32), 1.0);
    }
}
