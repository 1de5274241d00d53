//! The wide path: numbers beyond the element type's range, and results rounded once from them.
//!
//! Some slices cannot be handled in the element type: a norm that overflows it (float32 squares
//! above 1.8e19, or a float64 norm above f64::MAX), a norm or a factor in its subnormal range
//! (where it keeps only a few significant bits). For those the constraint's formula is evaluated
//! in [`Scaled`] — a double with an unbounded exponent, each operation correctly rounded to 53
//! bits — and every element gets `x · factor` (or `x / divisor`) rounded once to its type
//! ([`round_product`], [`round_quotient`]).

use crate::exact::two_product;

/// The arithmetic the constraint formulas are written in: the element types themselves (whose
/// operations round as Keras' do) and [`Scaled`] for the wide path.
pub trait Real: Copy + PartialOrd {
    const ZERO: Self;
    const ONE: Self;
    fn plus(self, other: Self) -> Self;
    fn times(self, other: Self) -> Self;
    fn over(self, other: Self) -> Self;
    fn is_nan(self) -> bool;
}

/// The primitive floats are `Real` with their own operators (one definition for both).
macro_rules! primitive_real {
    ($($float:ident),*) => {$(
        impl Real for $float {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            #[inline(always)]
            fn plus(self, other: Self) -> Self {
                self + other
            }
            #[inline(always)]
            fn times(self, other: Self) -> Self {
                self * other
            }
            #[inline(always)]
            fn over(self, other: Self) -> Self {
                self / other
            }
            #[inline(always)]
            fn is_nan(self) -> bool {
                $float::is_nan(self)
            }
        }
    )*};
}

primitive_real!(f32, f64);

/// `2^k` for `-1074 <= k <= 1023` (exact).
pub(crate) fn pow2(k: i64) -> f64 {
    debug_assert!((-1074..=1023).contains(&k));
    if k >= -1022 {
        f64::from_bits(((k + 1023) as u64) << 52)
    } else {
        f64::from_bits(1u64 << (k + 1074))
    }
}

/// `m · 2^t` for `m` in `[1, 2)` (either sign), rounded once to f64: exact in the normal range,
/// inf above it, and below it `m` is scaled (exactly) to units of the smallest subnormal so
/// that a single multiplication rounds it.
fn compose(m: f64, t: i64) -> f64 {
    if t > 1023 {
        f64::INFINITY.copysign(m)
    } else if t >= -1022 {
        m * pow2(t)
    } else if t < -1076 {
        0.0f64.copysign(m) // below half the smallest subnormal
    } else {
        (m * pow2(t + 1074)) * pow2(-1074)
    }
}

/// `x · 2^k` rounded once.
pub fn ldexp(x: f64, k: i64) -> f64 {
    Scaled::from_f64(x).scale(k).to_f64()
}

/// A double with an unbounded exponent: `m · 2^e`, `m` in `[1, 2)` (or 0, or not finite with
/// `e = 0`). Every operation is correctly rounded to 53 bits. The formulas use only non-negative
/// values, which is all [`Scaled`]'s ordering supports.
#[derive(Debug, Clone, Copy)]
pub struct Scaled {
    m: f64,
    e: i64,
}

impl Scaled {
    /// The exact value of `x`.
    pub fn from_f64(x: f64) -> Scaled {
        if x == 0.0 || !x.is_finite() {
            return Scaled { m: x, e: 0 };
        }
        let (x, bias) = if x.abs() < f64::MIN_POSITIVE {
            (x * pow2(64), -64)
        } else {
            (x, 0)
        };
        let bits = x.to_bits();
        let exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
        let m = f64::from_bits(bits & !(0x7ffu64 << 52) | (1023u64 << 52));
        Scaled {
            m,
            e: exponent + bias,
        }
    }

    /// `self · 2^k` (exact).
    pub fn scale(self, k: i64) -> Scaled {
        if self.m == 0.0 || !self.m.is_finite() {
            return self;
        }
        Scaled {
            m: self.m,
            e: self.e.saturating_add(k),
        }
    }

    /// The binary exponent (`floor(log2 |self|)`) of a finite non-zero value.
    pub fn exponent(self) -> i64 {
        self.e
    }

    /// The value rounded once to f64 (inf beyond its range, subnormal or 0 below).
    pub fn to_f64(self) -> f64 {
        if self.m == 0.0 || !self.m.is_finite() {
            return self.m;
        }
        compose(self.m, self.e)
    }

    pub fn is_zero(self) -> bool {
        self.m == 0.0
    }

    pub fn is_finite(self) -> bool {
        self.m.is_finite()
    }

    /// Mantissa and exponent with `m` in `[1, 2)`, for the rounding helpers.
    fn parts(self) -> (f64, i64) {
        (self.m, self.e)
    }

    #[inline]
    fn normalise(m: f64, e: i64) -> Scaled {
        if m == 0.0 || !m.is_finite() {
            return Scaled { m, e: 0 };
        }
        Scaled::from_f64(m).scale(e)
    }
}

impl PartialEq for Scaled {
    fn eq(&self, other: &Scaled) -> bool {
        self.partial_cmp(other) == Some(std::cmp::Ordering::Equal)
    }
}

impl PartialOrd for Scaled {
    /// Orders non-negative values (and NaN as unordered); the formulas need no more.
    fn partial_cmp(&self, other: &Scaled) -> Option<std::cmp::Ordering> {
        use std::cmp::Ordering;
        if self.m.is_nan() || other.m.is_nan() {
            return None;
        }
        debug_assert!(
            self.m >= 0.0 && other.m >= 0.0,
            "Scaled orders non-negative values"
        );
        match (
            self.m == 0.0 || self.m.is_infinite(),
            other.m == 0.0 || other.m.is_infinite(),
        ) {
            (true, true) => self.m.partial_cmp(&other.m),
            (true, false) => Some(if self.m == 0.0 {
                Ordering::Less
            } else {
                Ordering::Greater
            }),
            (false, true) => Some(if other.m == 0.0 {
                Ordering::Greater
            } else {
                Ordering::Less
            }),
            (false, false) => Some(self.e.cmp(&other.e).then(self.m.total_cmp(&other.m))),
        }
    }
}

impl Real for Scaled {
    const ZERO: Self = Scaled { m: 0.0, e: 0 };
    const ONE: Self = Scaled { m: 1.0, e: 0 };

    fn plus(self, other: Scaled) -> Scaled {
        if self.m == 0.0 || !other.m.is_finite() {
            return if self.m.is_finite() {
                other
            } else {
                Scaled {
                    m: self.m + other.m,
                    e: 0,
                }
            };
        }
        if other.m == 0.0 || !self.m.is_finite() {
            return self;
        }
        let (big, small) = if self.e >= other.e {
            (self, other)
        } else {
            (other, self)
        };
        let shift = big.e - small.e;
        // A term more than 2^-1100 below the other cannot change its rounding (nor make a tie).
        if shift > 1100 {
            return big;
        }
        Scaled::normalise(big.m + ldexp(small.m, -shift), big.e)
    }

    fn times(self, other: Scaled) -> Scaled {
        if self.m == 0.0 || other.m == 0.0 || !self.m.is_finite() || !other.m.is_finite() {
            return Scaled {
                m: self.m * other.m,
                e: 0,
            };
        }
        Scaled::normalise(self.m * other.m, self.e + other.e)
    }

    fn over(self, other: Scaled) -> Scaled {
        if self.m == 0.0 || other.m == 0.0 || !self.m.is_finite() || !other.m.is_finite() {
            return Scaled {
                m: self.m / other.m,
                e: 0,
            };
        }
        Scaled::normalise(self.m / other.m, self.e - other.e)
    }

    fn is_nan(self) -> bool {
        self.m.is_nan()
    }
}

/// Rounds the exact value `(hi + lo) · 2^k` to f64, where `hi > 0` is a normal double and `lo`
/// its error term (`|lo| <= ulp(hi) / 2`; only its sign matters here).
///
/// In the normal range `hi · 2^k` is already the correctly rounded result. In the subnormal
/// range that scaling would round a second time, wrongly when `hi` sits exactly halfway between
/// two subnormals while `lo` says the exact value is off that midpoint; so the rounding to the
/// subnormal grid is done here, in units of the smallest subnormal, with `lo` breaking the tie.
fn round_scaled(hi: f64, lo: f64, k: i64) -> f64 {
    let (m, e) = Scaled::from_f64(hi).parts();
    let t = e + k;
    if !(-1076..-1022).contains(&t) || lo == 0.0 {
        return compose(m, t);
    }
    // In units of 2^-1074: q < 2^52, exact.
    let q = m * pow2(t + 1074);
    const SHIFTER: f64 = 4_503_599_627_370_496.0; // 2^52: q + 2^52 rounds q to an integer
    let mut r = (q + SHIFTER) - SHIFTER; // ties to even
    let off = q - r; // exact, |off| <= 1/2
    if off.abs() == 0.5 && (off > 0.0) == (lo > 0.0) {
        r += off.signum(); // the exact value is past the midpoint, away from r
    }
    r * pow2(-1074)
}

/// Rounds `hi + lo` (exact, `|lo| <= ulp(hi) / 2`) to f32 once: rounding to odd at 53 bits and
/// then to nearest at 24 gives the correctly rounded result (53 >= 24 + 2).
fn round_to_f32(hi: f64, lo: f64) -> f32 {
    if lo == 0.0 || !hi.is_finite() || hi == 0.0 {
        return hi as f32;
    }
    let bits = hi.to_bits();
    let odd = if bits & 1 == 1 {
        hi
    } else if (lo > 0.0) == (hi > 0.0) {
        f64::from_bits(bits + 1) // one step away from zero
    } else {
        f64::from_bits(bits - 1) // one step toward zero (hi is not 0 and its bits are even)
    };
    odd as f32
}

/// The element types' wide operations: `x · factor` and `x / divisor` rounded once.
pub trait WideOps: Sized {
    fn mul_wide(self, factor: Scaled) -> Self;
    fn div_wide(self, divisor: Scaled) -> Self;
}

impl WideOps for f32 {
    fn mul_wide(self, factor: Scaled) -> f32 {
        // Every float32 factor of the wide path is a normal double (norms and bounds of
        // float32 data stay far inside f64's range), so the product is exact as hi + lo.
        let f = factor.to_f64();
        let (hi, lo) = two_product(self as f64, f);
        round_to_f32(hi, lo)
    }

    fn div_wide(self, divisor: Scaled) -> f32 {
        let (x, d) = (self as f64, divisor.to_f64());
        let q = x / d;
        if q == 0.0 || !q.is_finite() {
            return q as f32;
        }
        // x - q·d exactly: its sign says on which side of q the exact quotient lies.
        let (p, p_err) = two_product(q, d);
        let remainder = (x - p) - p_err;
        round_to_f32(q, remainder / d)
    }
}

impl WideOps for f64 {
    fn mul_wide(self, factor: Scaled) -> f64 {
        if self == 0.0 || !self.is_finite() || factor.is_zero() || !factor.is_finite() {
            // A factor beyond f64's range must not turn 0 into 0 · inf = NaN.
            return self * factor.to_f64().clamp(-f64::MAX, f64::MAX);
        }
        let (xm, xe) = Scaled::from_f64(self.abs()).parts();
        let (fm, fe) = factor.parts();
        let (hi, lo) = two_product(xm, fm);
        round_scaled(hi, lo, xe + fe).copysign(self)
    }

    fn div_wide(self, divisor: Scaled) -> f64 {
        if self == 0.0 || !self.is_finite() || divisor.is_zero() || !divisor.is_finite() {
            // A divisor below f64's range must not turn 0 into 0 / 0 = NaN.
            let d = divisor.to_f64();
            return self
                / if d == 0.0 && !divisor.is_zero() {
                    f64::from_bits(1)
                } else {
                    d
                };
        }
        let (xm, xe) = Scaled::from_f64(self.abs()).parts();
        let (dm, de) = divisor.parts();
        let q = xm / dm;
        let (p, p_err) = two_product(q, dm);
        let remainder = (xm - p) - p_err;
        round_scaled(q, remainder, xe - de).copysign(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ldexp_rounds_once() {
        assert_eq!(ldexp(1.5, 10), 1536.0);
        assert_eq!(ldexp(1.0, -1074), f64::from_bits(1));
        assert_eq!(ldexp(1.0, -1075), 0.0); // a tie: to even (0)
        assert_eq!(ldexp(1.5, -1075), f64::from_bits(1)); // 0.75 of the step: up
        assert_eq!(ldexp(1.0, 1024), f64::INFINITY);
        assert_eq!(ldexp(0.5, 1024), 2f64.powi(1023));
        assert_eq!(ldexp(3.0, -1073), f64::from_bits(6));
        assert_eq!(ldexp(1.0, -3000), 0.0);
        assert_eq!(ldexp(-1.0, -3000).to_bits(), (-0.0f64).to_bits());
        assert_eq!(ldexp(f64::MAX, -2098), f64::from_bits(1)); // (1 - 2^-53) · 2^-1074: up
        assert_eq!(ldexp(1e-310, 100), 1e-310 * 2f64.powi(100));
    }

    #[test]
    fn scaled_arithmetic_matches_f64_in_range() {
        let values = [0.0, 1.0, 3.0, 0.1, 1e-300, 7e300, 1e-310, 2.5e-7];
        for &a in &values {
            for &b in &values {
                let (sa, sb) = (Scaled::from_f64(a), Scaled::from_f64(b));
                assert_eq!(sa.plus(sb).to_f64(), a + b, "{a} + {b}");
                if (a * b).abs() >= f64::MIN_POSITIVE || a * b == 0.0 {
                    assert_eq!(sa.times(sb).to_f64(), a * b, "{a} * {b}");
                }
                if b != 0.0 && (a / b).abs() >= f64::MIN_POSITIVE && (a / b).is_finite() {
                    assert_eq!(sa.over(sb).to_f64(), a / b, "{a} / {b}");
                }
                assert_eq!(sa.partial_cmp(&sb), a.partial_cmp(&b), "{a} vs {b}");
            }
        }
        // Beyond the range: 1e300 · 1e300 / 1e300 comes back.
        let big = Scaled::from_f64(1e300);
        assert_eq!(big.times(big).over(big).to_f64(), 1e300);
        assert_eq!(big.times(big).to_f64(), f64::INFINITY);
        assert!(big.times(big) > big);
    }

    #[test]
    fn wide_products_round_once() {
        // (1 + 2^-27) · (1 - 2^-27 + 2^-53) = 1 + 2^-54 + 2^-80: its f64 rounding is 1, and
        // 1 · 2^-1075 is exactly half the smallest subnormal (which would round to 0, even),
        // while the exact value is above it.
        let x = 1.0 + 2f64.powi(-27);
        let f = Scaled::from_f64(1.0 - 2f64.powi(-27) + 2f64.powi(-53)).scale(-1075);
        assert_eq!(x.mul_wide(f), f64::from_bits(1));
        assert_eq!((-x).mul_wide(f), -f64::from_bits(1));
        assert_eq!(1.0f64.mul_wide(Scaled::ONE.scale(-1075)), 0.0);
        assert_eq!(
            (-3.0f64).mul_wide(Scaled::ONE.scale(-1075)),
            -f64::from_bits(2)
        );
        assert_eq!(1.0f64.mul_wide(Scaled::ONE.scale(2000)), f64::INFINITY);
        assert_eq!(
            (-0.0f64).mul_wide(Scaled::ONE.scale(2000)).to_bits(),
            (-0.0f64).to_bits()
        );
        assert_eq!(0.0f64.div_wide(Scaled::ONE.scale(-2000)).to_bits(), 0);
        assert_eq!(
            1e300f64.mul_wide(Scaled::from_f64(1e300).over(Scaled::from_f64(1e301))),
            1e299
        );
        // Division: 1 / ((1 - 2^-52) · 2^1075) = 2^-1075 · (1 + 2^-52 + ...), above half a step.
        let d = Scaled::from_f64(1.0 - f64::EPSILON).scale(1075);
        assert_eq!(1.0f64.div_wide(d), f64::from_bits(1));
        assert_eq!(6.0f32.div_wide(Scaled::from_f64(3.0)), 2.0);
        assert_eq!(1.0f32.div_wide(Scaled::from_f64(3.0)), 1.0f32 / 3.0);
        assert_eq!(
            3e38f32.mul_wide(Scaled::from_f64(1e-3).over(Scaled::from_f64(3e38f32 as f64))),
            1e-3f32
        );
    }
}
