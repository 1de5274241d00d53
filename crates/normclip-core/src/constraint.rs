//! The constraints and their parameters, validated once on construction.
//!
//! Each norm constraint turns a slice's norm `n` into one value per slice: a factor the slice is
//! multiplied by (MaxNorm, MinMaxNorm) or a divisor it is divided by (UnitNorm, as Keras divides).
//! In [`Mode::Keras`] that value is Keras' formula evaluated in the element type, `eps` included;
//! in [`Mode::Projection`] only slices outside the bounds move, exactly onto the bound.

use crate::element::Element;
use crate::error::{Error, Result};
use crate::layout::Axes;
use crate::wide::{Real, Scaled};

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

    /// Sets the epsilon added to every norm in Keras mode (default 1e-7): a finite number > 0.
    /// (Below 2^-150 it rounds to 0 in float32, where the formula then has no epsilon; a zero
    /// slice still stays as it is.)
    pub fn with_epsilon(mut self, epsilon: f64) -> Result<Constraint> {
        if !(epsilon > 0.0 && epsilon.is_finite()) {
            return Err(Error::range(format!(
                "epsilon: expected a finite number > 0, got {epsilon}"
            )));
        }
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

/// What a slice's value does to each of its elements: the one name for multiply or divide (the
/// kernels' `generic::Multiply` / `generic::Divide` are its compile-time forms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scale {
    /// `x * factor` (MaxNorm, MinMaxNorm).
    Multiply,
    /// `x / divisor` (UnitNorm: Keras divides, and so do we, to match it to the last bit).
    Divide,
}

impl Scale {
    /// A value that leaves every element bit-identical, so its slice is not written: 1 for
    /// either operation.
    #[inline(always)]
    pub(crate) fn is_identity<T: Element>(value: T) -> bool {
        value == T::ONE
    }
}

/// A norm constraint's parameters in one arithmetic, rounded to the element type first (the way
/// Keras' weakly-typed Python floats meet a float32 tensor), whatever arithmetic they are used in.
#[derive(Clone, Copy)]
struct Params<R> {
    min: R,
    max: R,
    rate: R,
    one_minus_rate: R,
    epsilon: R,
}

impl<R: Copy> Params<R> {
    /// The same parameters in another arithmetic (the wide path's, from the element type's).
    fn map<U>(&self, f: impl Fn(R) -> U) -> Params<U> {
        Params {
            min: f(self.min),
            max: f(self.max),
            rate: f(self.rate),
            one_minus_rate: f(self.one_minus_rate),
            epsilon: f(self.epsilon),
        }
    }
}

// The formulas, each written once over [`Real`]: in the element type they round exactly as
// Keras' float32 (or float64) code; in [`Scaled`] they are the wide path's. Each returns the
// slice's value: a factor (MaxNorm, MinMaxNorm) or a divisor (UnitNorm).

/// Keras `MaxNorm`: `clip(n, 0, max) / (eps + n)`.
#[inline(always)]
fn keras_max<R: Real>(p: &Params<R>, n: R) -> R {
    clip(n, R::ZERO, p.max).over(p.epsilon.plus(n))
}

/// Keras `MinMaxNorm`: `(rate · clip(n, min, max) + (1 - rate) · n) / (eps + n)`.
#[inline(always)]
fn keras_min_max<R: Real>(p: &Params<R>, n: R) -> R {
    let desired = p
        .rate
        .times(clip(n, p.min, p.max))
        .plus(p.one_minus_rate.times(n));
    desired.over(p.epsilon.plus(n))
}

/// Keras `UnitNorm`: divides by `eps + n`.
#[inline(always)]
fn keras_unit<R: Real>(p: &Params<R>, n: R) -> R {
    p.epsilon.plus(n)
}

/// Projection onto the unit sphere: divides by `n`; a zero slice stays (NaN divides the slice
/// into NaN, as every other constraint turns it).
#[inline(always)]
fn projection_unit<R: Real>(n: R) -> R {
    if n > R::ZERO || n.is_nan() {
        n
    } else {
        R::ONE
    }
}

/// Projection onto the shell `[min, max]` (MaxNorm: `min = 0`), by `rate` of the way: slices
/// inside stay (factor 1).
#[inline(always)]
fn projection_shell<R: Real>(p: &Params<R>, n: R) -> R {
    let bound = if n > p.max {
        p.max
    } else if n < p.min && n > R::ZERO {
        p.min
    } else {
        return if n.is_nan() { n } else { R::ONE };
    };
    // With rate 1 the target is the bound itself: writing it so keeps an infinite norm at a
    // factor of 0 (as Keras mode does) instead of 0 · inf = NaN.
    let desired = if p.rate == R::ONE {
        bound
    } else {
        p.rate.times(bound).plus(p.one_minus_rate.times(n))
    };
    desired.over(n)
}

/// A factor or divisor the element type holds to full precision (NaN is not: a NaN slice is
/// told apart by its norm).
#[inline(always)]
pub(crate) fn is_normal_value<T: Element>(v: T) -> bool {
    let a = v.abs();
    a >= T::MIN_POSITIVE && a <= T::MAX
}

/// numpy's `clip`: NaN stays NaN.
#[inline(always)]
fn clip<R: Real>(value: R, low: R, high: R) -> R {
    if value < low {
        low
    } else if value > high {
        high
    } else {
        value
    }
}

/// A norm constraint's formula and its validated parameters: what a prepared call keeps of its
/// constraint (see `apply::Prepared`), so the rule always travels with the plan it was checked
/// with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct NormRule {
    kind: RuleKind,
    mode: Mode,
    min: f64,
    max: f64,
    rate: f64,
    epsilon: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RuleKind {
    Max,
    MinMax,
    Unit,
}

impl Constraint {
    /// The rule and axes of a norm constraint; `None` for NonNeg and Radial.
    pub(crate) fn norm_rule(&self) -> Option<(NormRule, &Axes)> {
        let (kind, min, max, rate, options) = match self {
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
        let rule = NormRule {
            kind,
            mode: options.mode,
            min,
            max,
            rate,
            epsilon: options.epsilon,
        };
        Some((rule, &options.axes))
    }
}

/// A [`NormRule`] with its parameters in the element type (the wide arithmetic's are made from
/// them only for the rare slices that need them: a small call does not pay for them).
pub(crate) struct SliceRule<T> {
    kind: RuleKind,
    mode: Mode,
    params: Params<T>,
}

impl<T: Element> SliceRule<T> {
    pub(crate) fn new(rule: &NormRule) -> SliceRule<T> {
        let params = Params {
            min: T::from_f64(rule.min),
            max: T::from_f64(rule.max),
            rate: T::from_f64(rule.rate),
            one_minus_rate: T::from_f64(1.0 - rule.rate),
            epsilon: T::from_f64(rule.epsilon),
        };
        SliceRule {
            kind: rule.kind,
            mode: rule.mode,
            params,
        }
    }

    pub(crate) fn scale(&self) -> Scale {
        match self.kind {
            RuleKind::Unit => Scale::Divide,
            RuleKind::Max | RuleKind::MinMax => Scale::Multiply,
        }
    }

    /// Replaces each norm in `slots` by its slice's value, in arithmetic `R` with parameters `p`:
    /// the one place a rule picks its formula. The branch is taken once for all slots, not per
    /// slot (on small tensors this per-slice work is a third of a call).
    #[inline(always)]
    fn values<R: Real>(&self, p: &Params<R>, slots: &mut [R]) {
        #[inline(always)]
        fn each<R: Copy>(slots: &mut [R], formula: impl Fn(R) -> R) {
            for slot in slots {
                *slot = formula(*slot);
            }
        }
        match (self.mode, self.kind) {
            (Mode::Keras, RuleKind::Max) => each(slots, |n| keras_max(p, n)),
            (Mode::Keras, RuleKind::MinMax) => each(slots, |n| keras_min_max(p, n)),
            (Mode::Keras, RuleKind::Unit) => each(slots, |n| keras_unit(p, n)),
            (Mode::Projection, RuleKind::Unit) => each(slots, projection_unit),
            (Mode::Projection, _) => each(slots, |n| projection_shell(p, n)),
        }
    }

    /// The slice's value from its norm, in the element type exactly as Keras writes it.
    #[cfg(test)]
    pub(crate) fn value(&self, norm: T) -> T {
        let mut slot = [norm];
        self.values(&self.params, &mut slot);
        slot[0]
    }

    /// Replaces each norm by its slice's value, in the element type; whether any value is outside
    /// the element type's normal range (zero, subnormal, infinite or NaN). Compiled into each
    /// tier's kernels (`Kernels::slice_values`): IEEE operations, the same bits in every tier.
    #[inline(always)]
    pub(crate) fn values_from_norms(&self, norms: &mut [T]) -> bool {
        self.values(&self.params, norms);
        norms
            .iter()
            .fold(false, |any, &v| any | !is_normal_value(v))
    }

    /// The slice's value in the wide arithmetic, from its exact norm: for the slices whose norm
    /// or value is beyond the element type's normal range.
    pub(crate) fn value_wide(&self, norm: Scaled) -> Scaled {
        let mut slot = [norm];
        self.values(&self.params.map(T::to_wide), &mut slot);
        slot[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slice_rule(constraint: &Constraint) -> SliceRule<f32> {
        SliceRule::new(&constraint.norm_rule().expect("a norm constraint").0)
    }

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
        let err = Constraint::max_norm(2.0, Axes::All)
            .unwrap()
            .with_epsilon(0.0)
            .unwrap_err();
        assert_eq!(err.message, "epsilon: expected a finite number > 0, got 0");
        assert_eq!(err.kind, crate::ErrorKind::Range);
        assert!(Constraint::max_norm(2.0, Axes::All)
            .unwrap()
            .with_epsilon(1e-300)
            .is_ok());
        let err = Constraint::unit_norm(Axes::List(vec![0, 0])).unwrap_err();
        assert!(err.message.contains("got 0 twice"), "{}", err.message);
    }

    #[test]
    fn keras_factor_adds_epsilon_inside_bounds() {
        let rule = slice_rule(&Constraint::max_norm(2.0, Axes::default()).unwrap());
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
        let rule = slice_rule(&c);
        assert_eq!(rule.value(2.0f32), 1.0);
        assert_eq!(rule.value(0.5f32), 2.0);
        assert_eq!(rule.value(6.0f32), 0.5);
        assert_eq!(rule.value(0.0f32), 1.0);
    }
}
