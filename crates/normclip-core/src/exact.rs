//! Error-free transformations: the exact error of a sum or a square, and double-double sums.
//!
//! Float64 norms are accumulated from exact squares (`x·x = p + e` exactly, with `e` a double)
//! into a compensated sum (each `s + p` split into its rounded value and its exact error, the
//! errors summed apart). For non-negative terms that sum is within `u + n²u²` relative of the exact
//! one (Ogita, Rump & Oishi 2005, "Accurate sum and dot product", Algorithm Dot2), so even one norm
//! over 2^24 elements is within half an ulp plus 2^-58 relative before the final square root.
//!
//! The square's error comes from a fused multiply-add where the tier has one ([`Fma`]) and from
//! Veltkamp's split and Dekker's product otherwise ([`Split`]). Both are exact whenever the
//! square's partial products do not underflow, which holds for `|x| >= 2^-484` (`2·exponent - 104
//! >= -1074`); below that the error is dropped in both (`p < 2^-968`), so every tier computes the
//! same bits. The slices such tiny elements can matter to are recomputed with exact scaling (see
//! `apply::norm_pass::exact_norms`).

/// Squares below this have their error term dropped (see the module documentation).
pub const EXACT_SQUARE_MIN: f64 = f64::from_bits((1023 - 968) << 52); // 2^-968

/// `a + b = s + err` exactly (Knuth's TwoSum: no ordering of `|a|`, `|b|` needed).
#[inline(always)]
pub fn two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    let b_virtual = s - a;
    let a_virtual = s - b_virtual;
    (s, (a - a_virtual) + (b - b_virtual))
}

/// `a + b = s + err` exactly, given `|a| >= |b|` (or `a == 0`) (Dekker's Fast2Sum).
#[inline(always)]
pub fn fast_two_sum(a: f64, b: f64) -> (f64, f64) {
    let s = a + b;
    (s, b - (s - a))
}

/// Veltkamp's split: `x = hi + lo` with `hi` and `lo` of at most 26 significant bits each
/// (valid for `|x| < 2^996`).
#[inline(always)]
fn split(x: f64) -> (f64, f64) {
    const SPLITTER: f64 = 134_217_729.0; // 2^27 + 1
    let c = SPLITTER * x;
    let hi = c - (c - x);
    (hi, x - hi)
}

/// `a · b = p + e` exactly, by Dekker's product of split halves: no fused multiply-add, so the
/// same bits on every CPU (exact when no partial product underflows and `|a|, |b| < 2^996`).
#[inline(always)]
pub fn two_product(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    let (ah, al) = split(a);
    let (bh, bl) = split(b);
    (p, ((ah * bh - p) + ah * bl + al * bh) + al * bl)
}

/// How a tier computes the exact square `x·x = p + e`.
pub trait ExactSquare {
    /// Whether the tier compiled with this square has AVX2 (the x86-64 tiers with FMA do: they
    /// are built for `avx2,fma` and up), so it may run the loops of `kernels::x86`.
    const AVX2: bool;
    /// `(p, e)` with `p = fl(x·x)` and `p + e = x·x` exactly when `p >= EXACT_SQUARE_MIN`;
    /// `e = 0` below that (and anything when `p` is infinite: such slices are recomputed).
    fn square(x: f64) -> (f64, f64);
}

/// The error from a fused multiply-add (tiers compiled with FMA).
#[derive(Clone, Copy)]
pub struct Fma;

/// The error from Veltkamp's split and Dekker's product (tiers without FMA).
#[derive(Clone, Copy)]
pub struct Split;

impl ExactSquare for Fma {
    const AVX2: bool = cfg!(target_arch = "x86_64");
    #[inline(always)]
    fn square(x: f64) -> (f64, f64) {
        let p = x * x;
        let e = x.mul_add(x, -p);
        (p, if p >= EXACT_SQUARE_MIN { e } else { 0.0 })
    }
}

impl ExactSquare for Split {
    const AVX2: bool = false;
    #[inline(always)]
    fn square(x: f64) -> (f64, f64) {
        let p = x * x;
        let (hi, lo) = split(x);
        // The QD library's two_sqr: exact under the same conditions as Dekker's product.
        let e = ((hi * hi - p) + 2.0 * hi * lo) + lo * lo;
        (p, if p >= EXACT_SQUARE_MIN { e } else { 0.0 })
    }
}

/// Adds `x²` to the compensated sum `(sum, comp)`: `sum` holds the rounded running sum, `comp`
/// the sum of every rounding error (of the squares and of the additions).
#[inline(always)]
pub fn add_square<S: ExactSquare>(sum: &mut f64, comp: &mut f64, x: f64) {
    let (p, e) = S::square(x);
    let (s, err) = two_sum(*sum, p);
    *sum = s;
    *comp += err + e;
}

/// A double-double: the unevaluated sum `hi + lo`. Here it holds sums of squares, so both parts
/// of every operand are such sums or their errors, and `hi >= 0`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Dd {
    pub hi: f64,
    pub lo: f64,
}

impl Dd {
    pub const ZERO: Dd = Dd { hi: 0.0, lo: 0.0 };

    /// `hi + lo` renormalised (`|lo| <= ulp(hi) / 2`). An infinite `hi` stays infinite (its error
    /// terms are NaN: inf - inf), so NaN in `hi` always means a NaN element.
    #[inline(always)]
    pub fn new(hi: f64, lo: f64) -> Dd {
        let (sum, err) = fast_two_sum(hi, lo);
        if sum.is_finite() || hi.is_nan() {
            Dd { hi: sum, lo: err }
        } else {
            Dd { hi, lo: 0.0 }
        }
    }

    /// The sum of two double-doubles of non-negative value (no cancellation, so the simple
    /// algorithm is accurate to `~2u²`).
    #[inline(always)]
    pub fn plus(self, other: Dd) -> Dd {
        let (s, e) = two_sum(self.hi, other.hi);
        Dd::new(s, e + (self.lo + other.lo))
    }

    /// `sqrt(hi + lo)` rounded to f64, within half an ulp plus ~2^-100 relative (one Newton step
    /// from the correctly rounded `sqrt(hi)`, its residual exact by Dekker's product). For
    /// `2^-1000 <= hi < inf`; 0 and non-finite values go through `f64::sqrt`.
    #[inline]
    pub fn sqrt(self) -> f64 {
        let root = self.hi.sqrt();
        if self.hi == 0.0 || !root.is_finite() {
            return root;
        }
        let (square, square_err) = two_product(root, root);
        // hi - square is exact (Sterbenz: both within a factor 2).
        let residual = ((self.hi - square) - square_err) + self.lo;
        root + residual / (2.0 * root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact_square_bits<S: ExactSquare>(x: f64) -> (u64, u64) {
        let (p, e) = S::square(x);
        (p.to_bits(), e.to_bits())
    }

    #[test]
    fn fma_and_split_squares_agree_bit_for_bit() {
        let mut state = 0x1234_5678_9abc_def0u64;
        for i in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Random bits over every exponent, plus the edges of the exact range.
            let x = match i % 4 {
                0 => f64::from_bits(state),
                1 => f64::from_bits(state & 0x800f_ffff_ffff_ffff | (1023 - 484 + (i % 8)) << 52),
                2 => f64::from_bits(state & 0x800f_ffff_ffff_ffff | (1023 + 505 + (i % 8)) << 52),
                _ => f64::from_bits(state & 0x800f_ffff_ffff_ffff | (1023 - 2 + (i % 5)) << 52),
            };
            if !x.is_finite() || (x * x).is_infinite() {
                continue;
            }
            assert_eq!(
                exact_square_bits::<Fma>(x),
                exact_square_bits::<Split>(x),
                "x = {x:e}"
            );
            let (p, e) = Fma::square(x);
            if p >= EXACT_SQUARE_MIN {
                // p + e == x² exactly: check through a second exact product of the halves.
                assert_eq!(two_product(x, x), (p, e), "x = {x:e}");
                assert!(e.abs() <= p * f64::EPSILON / 2.0, "x = {x:e}");
            } else {
                assert_eq!(e, 0.0);
            }
        }
    }

    #[test]
    fn two_sum_is_exact() {
        for (a, b) in [
            (1.0, 1e-30),
            (1e300, -1e284),
            (3.0, 2f64.powi(-52)),
            (0.1, 0.2),
        ] {
            let (s, e) = two_sum(a, b);
            assert_eq!(s, a + b);
            // s + e == a + b: check with the other order and Fast2Sum.
            let big = if f64::abs(a) >= f64::abs(b) {
                (a, b)
            } else {
                (b, a)
            };
            assert_eq!(fast_two_sum(big.0, big.1), (s, e));
        }
    }

    #[test]
    fn double_double_square_root_is_close_to_correctly_rounded() {
        // sqrt(2 + 2^-60): the correction moves the result only when it crosses a rounding
        // boundary; the exact value is within 0.5 ulp + 2^-100 of it.
        let x = Dd::new(2.0, 2f64.powi(-60));
        let r = x.sqrt();
        assert_eq!(r, 2f64.sqrt());
        // A perfect square given as hi + lo.
        let a = 1.0 + 2f64.powi(-30);
        let (p, e) = two_product(a, a);
        assert_eq!(Dd::new(p, e).sqrt(), a);
        assert_eq!(Dd::ZERO.sqrt(), 0.0);
        assert_eq!(Dd::new(f64::INFINITY, 0.0).sqrt(), f64::INFINITY);
    }
}
