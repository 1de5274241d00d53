//! Exact arithmetic for the reference, written apart from the crate's own (`exact`, `wide`) and
//! by other means: big integers instead of error-free transformations.
//!
//! - [`ExactSum`]: a sum of squares of floats held exactly, as a big integer in units of 2^-2148
//!   (the square of float64's smallest subnormal), and its square root correctly rounded to f32
//!   or f64, or to ~110 bits ([`Big`]).
//! - [`Big`]: a ~106-bit float with an unbounded exponent (double-double mantissa), for the
//!   formulas of the wide path, and its correct rounding to f32 or f64.

use std::cmp::Ordering;

/// The precision facts of an element type.
pub trait Format: Copy + std::ops::Neg<Output = Self> {
    /// Significant bits (24, 53).
    const PRECISION: i64;
    /// Exponent of the largest binade (127, 1023).
    const MAX_EXPONENT: i64;
    /// Exponent of the smallest subnormal (-149, -1074).
    const SUBNORMAL_EXPONENT: i64;
    const INFINITY: Self;
    /// The value `mantissa · 2^exponent`, exactly representable in this type.
    fn magnitude(mantissa: u64, exponent: i64) -> Self;

    /// `±mantissa · 2^exponent`.
    fn compose(negative: bool, mantissa: u64, exponent: i64) -> Self {
        signed(negative, Self::magnitude(mantissa, exponent))
    }
    fn infinity(negative: bool) -> Self {
        signed(negative, Self::INFINITY)
    }
}

fn signed<T: Format>(negative: bool, value: T) -> T {
    if negative {
        -value
    } else {
        value
    }
}

/// `m · 2^e` as an exact f64 (the caller guarantees it is representable, subnormals included).
fn f64_from_parts(m: u64, e: i64) -> f64 {
    if m == 0 {
        return 0.0;
    }
    // Split 2^e into exact powers so no intermediate leaves the range.
    let mut value = m as f64; // exact: m < 2^54 always here
    let mut e = e;
    while e > 0 {
        let step = e.min(1000);
        value *= f64::from_bits(((step + 1023) as u64) << 52);
        e -= step;
    }
    while e < 0 {
        let step = (-e).min(1000);
        value *= f64::from_bits(((1023 - step) as u64) << 52);
        e += step;
    }
    value
}

// The facts as the comments on `Format` give them.
const _: () = assert!(
    <f32 as Format>::SUBNORMAL_EXPONENT == -149 && <f64 as Format>::SUBNORMAL_EXPONENT == -1074
);
const _: () =
    assert!(<f32 as Format>::MAX_EXPONENT == 127 && <f64 as Format>::MAX_EXPONENT == 1023);

/// A float type's [`Format`] constants, from the standard library's own.
macro_rules! format_facts {
    ($float:ident) => {
        const PRECISION: i64 = $float::MANTISSA_DIGITS as i64;
        const MAX_EXPONENT: i64 = $float::MAX_EXP as i64 - 1;
        const SUBNORMAL_EXPONENT: i64 = $float::MIN_EXP as i64 - $float::MANTISSA_DIGITS as i64;
        const INFINITY: $float = $float::INFINITY;
    };
}

impl Format for f32 {
    format_facts!(f32);
    fn magnitude(mantissa: u64, exponent: i64) -> f32 {
        f64_from_parts(mantissa, exponent) as f32 // exact
    }
}

impl Format for f64 {
    format_facts!(f64);
    fn magnitude(mantissa: u64, exponent: i64) -> f64 {
        // Stepping down by 1000 could round in the subnormal range: go through the smallest
        // subnormal's units instead when the result is that small.
        if exponent < -1022 && mantissa != 0 {
            let units = mantissa as f64 * 2f64.powi((exponent + 1074) as i32); // exact integer
            units * f64::from_bits(1)
        } else {
            f64_from_parts(mantissa, exponent)
        }
    }
}

/// Rounds `(mantissa + tail) · 2^exponent` to nearest, ties to even, where `0 <= tail < 1` and
/// `sticky` says whether `tail > 0`.
pub fn round<T: Format>(negative: bool, mantissa: u128, exponent: i64, sticky: bool) -> T {
    assert!(mantissa != 0, "round: a zero mantissa");
    let bits = 128 - mantissa.leading_zeros() as i64;
    let top = bits - 1 + exponent; // exponent of the leading bit
    let ulp = (top - (T::PRECISION - 1)).max(T::SUBNORMAL_EXPONENT);
    let drop = ulp - exponent;
    if drop <= 0 {
        assert!(!sticky, "not enough bits to round");
        let m = mantissa << (-drop);
        return finish::<T>(negative, m, ulp);
    }
    if drop > 128 {
        return T::compose(negative, 0, 0); // below half the smallest subnormal
    }
    if drop == 128 {
        let up = mantissa > 1 << 127 || (mantissa == 1 << 127 && sticky);
        return finish::<T>(negative, u128::from(up), ulp);
    }
    let kept = mantissa >> drop;
    let rest = mantissa & ((1u128 << drop) - 1);
    let half = 1u128 << (drop - 1);
    let up = rest > half || (rest == half && (sticky || kept & 1 == 1));
    finish::<T>(negative, kept + u128::from(up), ulp)
}

fn finish<T: Format>(negative: bool, mut m: u128, mut ulp: i64) -> T {
    if m >> T::PRECISION != 0 {
        // Rounding carried into a new binade.
        m >>= 1;
        ulp += 1;
    }
    if m != 0 && (128 - m.leading_zeros() as i64 - 1 + ulp) > T::MAX_EXPONENT {
        return T::infinity(negative);
    }
    T::compose(negative, m as u64, ulp)
}

/// floor(sqrt(n)).
fn isqrt(n: u128) -> u128 {
    if n == 0 {
        return 0;
    }
    let mut x = (n as f64).sqrt() as u128;
    // Fix the float estimate exactly.
    while x.checked_mul(x).is_none_or(|sq| sq > n) {
        x -= 1;
    }
    while (x + 1).checked_mul(x + 1).is_some_and(|sq| sq <= n) {
        x += 1;
    }
    x
}

/// `value · 2^offset` (offset < 64) as the three limbs it spans, lowest first; value < 2^122
/// keeps the top limb from overflowing.
fn spread(value: u128, offset: usize) -> [u64; 3] {
    [
        (value << offset) as u64,
        ((value << offset) >> 64) as u64,
        if offset == 0 {
            0
        } else {
            (value >> (128 - offset)) as u64
        },
    ]
}

/// A sum of squares held exactly: the big integer `Σ limbs[i] · 2^(64 · (low + i))` in units of
/// 2^-2148. NaN and infinite elements are remembered apart.
#[derive(Clone, Debug, Default)]
pub struct ExactSum {
    low: usize,
    limbs: Vec<u64>,
    nan: bool,
    infinite: bool,
}

impl ExactSum {
    /// Adds `x²` (x an f32 or f64 value, widened exactly).
    pub fn add_square(&mut self, x: f64) {
        if x.is_nan() {
            self.nan = true;
            return;
        }
        if x.is_infinite() {
            self.infinite = true;
            return;
        }
        if x == 0.0 {
            return;
        }
        let bits = x.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i64;
        let fraction = bits & ((1u64 << 52) - 1);
        let (m, e) = if biased == 0 {
            (fraction, -1074)
        } else {
            (fraction | 1 << 52, biased - 1075)
        };
        let square = (m as u128) * (m as u128);
        self.add_shifted(square, (2 * e + 2148) as usize);
    }

    /// `value · 2^shift` as limbs, and the index of the first (room made for all of them).
    fn placed(&mut self, value: u128, shift: usize) -> (usize, [u64; 3]) {
        let limb = shift / 64;
        self.ensure(limb, limb + 3);
        (limb - self.low, spread(value, shift % 64))
    }

    fn add_shifted(&mut self, value: u128, shift: usize) {
        let (mut i, parts) = self.placed(value, shift);
        let mut carry = 0u128;
        for part in parts {
            let sum = self.limbs[i] as u128 + part as u128 + carry;
            self.limbs[i] = sum as u64;
            carry = sum >> 64;
            i += 1;
        }
        while carry != 0 {
            if i == self.limbs.len() {
                self.limbs.push(0);
            }
            let sum = self.limbs[i] as u128 + carry;
            self.limbs[i] = sum as u64;
            carry = sum >> 64;
            i += 1;
        }
    }

    /// Subtracts `value · 2^shift` (which must not exceed the integer).
    fn sub_shifted(&mut self, value: u128, shift: usize) {
        let (mut i, parts) = self.placed(value, shift);
        let mut borrow = 0i128;
        for part in parts {
            let diff = self.limbs[i] as i128 - part as i128 - borrow;
            self.limbs[i] = diff as u64;
            borrow = i128::from(diff < 0);
            i += 1;
        }
        while borrow != 0 {
            let diff = self.limbs[i] as i128 - borrow;
            self.limbs[i] = diff as u64;
            borrow = i128::from(diff < 0);
            i += 1;
        }
    }

    /// Makes limbs `from..to` addressable.
    fn ensure(&mut self, from: usize, to: usize) {
        if self.limbs.is_empty() {
            self.low = from;
            self.limbs = vec![0; to - from];
            return;
        }
        if from < self.low {
            let mut grown = vec![0; self.low - from];
            grown.extend_from_slice(&self.limbs);
            self.limbs = grown;
            self.low = from;
        }
        if to > self.low + self.limbs.len() {
            self.limbs.resize(to - self.low, 0);
        }
    }

    fn bit_length(&self) -> i64 {
        for (i, &limb) in self.limbs.iter().enumerate().rev() {
            if limb != 0 {
                return 64 * (self.low + i) as i64 + 64 - limb.leading_zeros() as i64;
            }
        }
        0
    }

    /// Bits `[from, from + 128)` of the integer, and whether any bit below `from` is set.
    fn window(&self, from: i64) -> (u128, bool) {
        let bit = |k: i64| -> bool {
            if k < 64 * self.low as i64 {
                return false;
            }
            let i = (k / 64) as usize - self.low;
            i < self.limbs.len() && (self.limbs[i] >> (k % 64)) & 1 == 1
        };
        let mut value = 0u128;
        for k in (0..128).rev() {
            value = value << 1 | u128::from(bit(from + k));
        }
        let mut sticky = false;
        for (i, &limb) in self.limbs.iter().enumerate() {
            let start = 64 * (self.low + i) as i64;
            if start >= from {
                break;
            }
            let below = (from - start).min(64);
            let mask = if below == 64 {
                u64::MAX
            } else {
                (1u64 << below) - 1
            };
            sticky |= limb & mask != 0;
        }
        (value, sticky)
    }

    /// `(r, j, exact)` with `floor(sqrt(N / 4^j)) = r`, `r` of 60 or 61 bits (N the integer), and
    /// whether `sqrt(N / 4^j)` is exactly `r`.
    fn root_parts(&self) -> (u128, i64, bool) {
        let length = self.bit_length();
        // N / 4^j with 120 or 121 bits.
        let j = (length - 120).div_euclid(2);
        let (t, dropped) = if j >= 0 {
            self.window(2 * j)
        } else {
            let (w, s) = self.window(0);
            (w << (-2 * j), s)
        };
        let r = isqrt(t);
        (r, j, !dropped && r * r == t)
    }

    /// sqrt of the sum, correctly rounded to `T`.
    pub fn sqrt_rounded<T: Format>(&self) -> Option<T> {
        if self.nan {
            return None;
        }
        if self.infinite {
            return Some(T::infinity(false));
        }
        if self.bit_length() == 0 {
            return Some(T::compose(false, 0, 0));
        }
        let (r, j, exact) = self.root_parts();
        // sqrt(N · 2^-2148) = sqrt(N / 4^j) · 2^(j - 1074).
        Some(round::<T>(false, r, j - 1074, !exact))
    }

    /// sqrt of the sum to ~110 bits (NaN and inf as such).
    pub fn sqrt_big(&self) -> Big {
        if self.nan {
            return Big::from_f64(f64::NAN);
        }
        if self.infinite {
            return Big::from_f64(f64::INFINITY);
        }
        if self.bit_length() == 0 {
            return Big::ZERO;
        }
        let (r, j, _) = self.root_parts();
        // sqrt(N/4^j) = r + δ with δ = (N/4^j - r²) / (2r) to first order (the second-order
        // term is below 2^-60 of one unit: 2^-120 relative), the residual exact.
        let delta = if j >= 0 {
            let mut residual = self.clone();
            residual.sub_shifted(r * r, 2 * j as usize);
            let from = (2 * j - 40).max(0);
            let (window, _) = residual.window(from);
            window as f64 * 2f64.powi((from - 2 * j) as i32) / (2.0 * r as f64)
        } else {
            let (t, _) = self.window(0);
            let t = t << (-2 * j);
            (t - r * r) as f64 / (2.0 * r as f64)
        };
        let hi = r as f64;
        let lo = (r as i128 - hi as i128) as f64 + delta;
        Big::from_dd(hi, lo, j - 1074)
    }
}

/// A float with a double-double mantissa and an unbounded exponent: `(hi + lo) · 2^exponent`,
/// `hi` in `[1, 2)` (or 0, or not finite), `|lo| <= ulp(hi)`. Each operation is accurate to
/// ~2^-104 relative — far beyond what the comparisons here need.
#[derive(Clone, Copy, Debug)]
pub struct Big {
    hi: f64,
    lo: f64,
    exponent: i64,
}

fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let bb = s - a;
    (s, (a - (s - bb)) + (b - bb))
}

fn two_prod(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

impl Big {
    pub const ZERO: Big = Big {
        hi: 0.0,
        lo: 0.0,
        exponent: 0,
    };

    pub fn from_f64(x: f64) -> Big {
        Big::from_dd(x, 0.0, 0)
    }

    /// `(hi + lo) · 2^exponent`, normalised.
    pub fn from_dd(hi: f64, lo: f64, exponent: i64) -> Big {
        let (hi, lo) = two_sum(hi, lo);
        if hi == 0.0 || !hi.is_finite() {
            return Big {
                hi,
                lo: 0.0,
                exponent: 0,
            };
        }
        // hi = m · 2^k with m in [1, 2): scale both parts by 2^-k (exact unless lo is tiny).
        let k = if hi.abs() < f64::MIN_POSITIVE {
            ((hi * 2f64.powi(200)).to_bits() >> 52 & 0x7ff) as i64 - 1023 - 200
        } else {
            ((hi.to_bits() >> 52) & 0x7ff) as i64 - 1023
        };
        let scale = |x: f64, by: i64| -> f64 {
            let mut x = x;
            let mut by = by;
            while by != 0 {
                let step = by.clamp(-1000, 1000);
                x *= 2f64.powi(step as i32);
                by -= step;
            }
            x
        };
        Big {
            hi: scale(hi, -k),
            lo: scale(lo, -k),
            exponent: exponent + k,
        }
    }

    pub fn is_nan(self) -> bool {
        self.hi.is_nan()
    }

    /// Rounded to 53 bits, the exponent left unbounded: what one operation of a float64 without
    /// exponent limits gives.
    pub fn round53(self) -> Big {
        Big::from_dd(self.hi, 0.0, self.exponent)
    }

    pub fn is_zero(self) -> bool {
        self.hi == 0.0
    }

    pub fn is_finite(self) -> bool {
        self.hi.is_finite()
    }

    pub fn add(self, other: Big) -> Big {
        if self.hi == 0.0 || !other.hi.is_finite() {
            return if self.hi.is_finite() {
                other
            } else {
                Big::from_f64(self.hi + other.hi)
            };
        }
        if other.hi == 0.0 || !self.hi.is_finite() {
            return self;
        }
        let (a, b) = if self.exponent >= other.exponent {
            (self, other)
        } else {
            (other, self)
        };
        let shift = a.exponent - b.exponent;
        if shift > 200 {
            return a;
        }
        let f = 2f64.powi(-shift as i32);
        let (s, e) = two_sum(a.hi, b.hi * f);
        Big::from_dd(s, e + a.lo + b.lo * f, a.exponent)
    }

    pub fn mul(self, other: Big) -> Big {
        if self.hi == 0.0 || other.hi == 0.0 || !self.hi.is_finite() || !other.hi.is_finite() {
            return Big::from_f64(self.hi * other.hi);
        }
        let (p, e) = two_prod(self.hi, other.hi);
        Big::from_dd(
            p,
            e + (self.hi * other.lo + self.lo * other.hi),
            self.exponent + other.exponent,
        )
    }

    pub fn div(self, other: Big) -> Big {
        if self.hi == 0.0 || other.hi == 0.0 || !self.hi.is_finite() || !other.hi.is_finite() {
            return Big::from_f64(self.hi / other.hi);
        }
        // q1 = hi/hi, then one correction with the remainder (computed in dd).
        let q1 = self.hi / other.hi;
        let (p, e) = two_prod(q1, other.hi);
        let remainder = ((self.hi - p) - e) + self.lo - q1 * other.lo;
        let q2 = remainder / other.hi;
        Big::from_dd(q1, q2, self.exponent - other.exponent)
    }

    /// Rounded to nearest `T` (correct unless the value is within ~2^-100 relative of a
    /// midpoint).
    pub fn round<T: Format>(self) -> T {
        if !self.hi.is_finite() {
            return T::compose(false, 0, 0); // not used for non-finite values
        }
        if self.hi == 0.0 {
            return T::compose(self.hi.is_sign_negative(), 0, 0);
        }
        let negative = self.hi < 0.0;
        let (hi, lo) = if negative {
            (-self.hi, -self.lo)
        } else {
            (self.hi, self.lo)
        };
        // hi in [1, 2): hi · 2^52 is an integer; lo in units of 2^-52·2^-60 (truncated, sticky).
        let top = (hi * 2f64.powi(52)) as u128; // exact
        let lo_units = lo * 2f64.powi(52 + 60);
        let lo_int = lo_units.floor();
        let sticky = lo_units != lo_int;
        let mantissa = ((top << 60) as i128 + lo_int as i128) as u128;
        round::<T>(negative, mantissa, self.exponent - 112, sticky)
    }
}

impl PartialEq for Big {
    fn eq(&self, other: &Big) -> bool {
        self.partial_cmp(other) == Some(Ordering::Equal)
    }
}

impl PartialOrd for Big {
    /// Non-negative values only (all the formulas need).
    fn partial_cmp(&self, other: &Big) -> Option<Ordering> {
        if self.hi.is_nan() || other.hi.is_nan() {
            return None;
        }
        let special = |b: &Big| b.hi == 0.0 || b.hi.is_infinite();
        match (special(self), special(other)) {
            (true, true) => self.hi.partial_cmp(&other.hi),
            (true, false) => Some(if self.hi == 0.0 {
                Ordering::Less
            } else {
                Ordering::Greater
            }),
            (false, true) => Some(if other.hi == 0.0 {
                Ordering::Greater
            } else {
                Ordering::Less
            }),
            (false, false) => Some(
                self.exponent
                    .cmp(&other.exponent)
                    .then(self.hi.total_cmp(&other.hi))
                    .then(self.lo.total_cmp(&other.lo)),
            ),
        }
    }
}

#[test]
fn exact_sums_round_like_known_values() {
    let mut s = ExactSum::default();
    s.add_square(3.0);
    s.add_square(4.0);
    assert_eq!(s.sqrt_rounded::<f64>(), Some(5.0));
    assert_eq!(s.sqrt_rounded::<f32>(), Some(5.0));
    let mut two = ExactSum::default();
    two.add_square(1.0);
    two.add_square(1.0);
    assert_eq!(two.sqrt_rounded::<f64>(), Some(2f64.sqrt()));
    assert_eq!(two.sqrt_rounded::<f32>(), Some(2f32.sqrt()));
    let big = two.sqrt_big();
    assert_eq!(big.round::<f64>(), 2f64.sqrt());
    // Extreme ranges: squares of f64::MAX and of the smallest subnormal.
    let mut huge = ExactSum::default();
    huge.add_square(f64::MAX);
    huge.add_square(f64::MAX);
    assert_eq!(huge.sqrt_rounded::<f64>(), Some(f64::INFINITY));
    assert_eq!(huge.sqrt_big().round::<f64>(), f64::INFINITY);
    let mut one = ExactSum::default();
    one.add_square(f64::MAX);
    assert_eq!(one.sqrt_rounded::<f64>(), Some(f64::MAX));
    let mut tiny = ExactSum::default();
    for _ in 0..4 {
        tiny.add_square(f64::from_bits(1));
    }
    assert_eq!(tiny.sqrt_rounded::<f64>(), Some(f64::from_bits(2)));
    assert_eq!(tiny.sqrt_big().round::<f64>(), f64::from_bits(2));
    // 1e-160 squared is subnormal in f64: the exact sum does not care.
    let mut small = ExactSum::default();
    for _ in 0..100 {
        small.add_square(1e-160);
    }
    assert_eq!(small.sqrt_rounded::<f64>(), Some(1e-159));
    // A float32 near its overflow: sqrt(2) · 3e38 rounds to inf in f32.
    let mut f = ExactSum::default();
    f.add_square(3e38f32 as f64);
    f.add_square(3e38f32 as f64);
    assert_eq!(f.sqrt_rounded::<f32>(), Some(f32::INFINITY));
    assert_eq!(f.sqrt_rounded::<f64>(), Some(4.2426406948942856e38)); // from Python's decimal
}

#[test]
fn big_arithmetic_is_far_more_accurate_than_f64() {
    let third = Big::from_f64(1.0).div(Big::from_f64(3.0));
    let back = third.mul(Big::from_f64(3.0));
    assert_eq!(back.round::<f64>(), 1.0);
    // 1/3 to ~106 bits: 3 · (1/3) - 1 is tiny.
    let diff = back.add(Big::from_f64(-1.0));
    assert!(diff.is_zero() || diff.exponent < -100, "{diff:?}");
    assert_eq!(third.round::<f64>(), 1.0 / 3.0);
    assert_eq!(third.round::<f32>(), 1.0f32 / 3.0);
    let big = Big::from_f64(1e300).mul(Big::from_f64(1e300));
    assert_eq!(big.div(Big::from_f64(1e300)).round::<f64>(), 1e300);
    assert_eq!(
        Big::from_f64(1e-300)
            .mul(Big::from_f64(1e-20))
            .round::<f64>(),
        1e-320
    );
}
