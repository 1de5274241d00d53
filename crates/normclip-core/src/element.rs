//! The element types a buffer can hold. Every kernel is written once, generic over [`Element`];
//! the norm pass is the one place where the two types differ in algorithm (see
//! [`Element::Sum`]).

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul};

use crate::exact::{Dd, ExactSquare};
use crate::kernels::{compensated, generic, Kernels};
use crate::wide::{Real, Scaled, WideOps};

/// A slice's running sum of squares in the norm pass.
pub trait SquareSum: Copy + Debug + Default + Send + Sync + 'static {
    /// `self + other`. Partial sums are always merged in the same order, so the result depends
    /// only on the data and the shape.
    fn merge(self, other: Self) -> Self;
    /// The sum rounded to f64 (infinite if a square overflowed, NaN if an element is NaN).
    fn to_f64(self) -> f64;
}

impl SquareSum for f64 {
    #[inline(always)]
    fn merge(self, other: f64) -> f64 {
        self + other
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

impl SquareSum for Dd {
    #[inline(always)]
    fn merge(self, other: Dd) -> Dd {
        self.plus(other)
    }
    #[inline(always)]
    fn to_f64(self) -> f64 {
        Dd::new(self.hi, self.lo).hi
    }
}

/// `f32` or `f64`. `ZERO`, `ONE` and `is_nan` come from [`Real`], the arithmetic the formulas
/// are written in.
pub trait Element:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + Add<Output = Self>
    + AddAssign
    + Mul<Output = Self>
    + Div<Output = Self>
    + Real
    + WideOps
    + 'static
{
    /// The smallest positive normal value: below it a norm or a factor keeps few significant
    /// bits, and the slice takes the wide path.
    const MIN_POSITIVE: Self;
    const MAX: Self;
    /// Short name for messages ("float32").
    const NAME: &'static str;
    /// True when squares can overflow long before the f64 accumulator does (f32).
    const SQUARES_CAN_OVERFLOW: bool;

    /// The sum of squares of a slice as the norm pass accumulates it:
    /// - float32: `f64`. Squares are summed in float32 across at most `generic::BLOCK` terms
    ///   per lane and flushed into f64 (as fast as a plain float32 sum; norms within 2 ulp).
    /// - float64: a double-double ([`Dd`]) of exact squares (see `exact`): norms within one
    ///   ulp at any length.
    type Sum: SquareSum;
    /// Elements of scratch the column kernels need per column.
    const SCRATCH_PER_COLUMN: usize;

    fn to_f64(self) -> f64;
    fn from_f64(value: f64) -> Self;
    fn is_infinite(self) -> bool;
    fn abs(self) -> Self;

    /// The exact value, for the wide path.
    fn to_wide(self) -> Scaled;
    /// `value` correctly rounded to this type.
    fn from_wide(value: Scaled) -> Self;

    /// Adds the column sums of squares of `block` (`rows × cols`, row-major) into `sums`
    /// (`cols`); `scratch` holds `SCRATCH_PER_COLUMN × cols` elements.
    fn accumulate_columns<S: ExactSquare>(
        block: &[Self],
        cols: usize,
        scratch: &mut [Self],
        sums: &mut [Self::Sum],
    );
    /// The same for narrow rows read as a flat stream of `period`-lane stripes (lane `j` holds
    /// column `j % cols`): adds each lane's sum into `lane_sums` (`period`).
    fn accumulate_narrow<S: ExactSquare>(
        block: &[Self],
        period: usize,
        scratch: &mut [Self],
        lane_sums: &mut [Self::Sum],
    );
    /// The sum of squares of one contiguous run.
    fn sum_squares<S: ExactSquare>(run: &[Self]) -> Self::Sum;

    /// The slice's norm from its sum.
    fn norm_of_sum(sum: Self::Sum) -> Self;
    /// Whether a sum may have lost bits to overflow or underflow (or is zero, which tiny
    /// elements can fake): such slices are recomputed with exact scaling.
    fn sum_is_suspect(sum: Self::Sum) -> bool;

    /// The kernel tables of this type, one per tier (see [`Kernels::tables`]).
    fn kernel_tables() -> &'static [Kernels<Self>; 3];
}

/// Below this a float32 sum of squares may have lost bits to underflow (squares of |x| < 1e-19
/// are subnormal or zero in float32).
const F32_TINY_SUM: f64 = 8.077935669463161e-28; // 2^-90
/// From this on a float32 sum's norm (2^127) is near or beyond float32's range.
const F32_HUGE_SUM: f64 = 2.894802230932905e76; // 2^254
/// Below this a float64 double-double sum may miss the error terms of its tiniest squares (see
/// `exact`); above it they weigh less than 2^-80 of the sum.
const F64_TINY_SUM: f64 = f64::from_bits((1023 - 900) << 52); // 2^-900

impl Element for f32 {
    const MIN_POSITIVE: Self = f32::MIN_POSITIVE;
    const MAX: Self = f32::MAX;
    const NAME: &'static str = "float32";
    const SQUARES_CAN_OVERFLOW: bool = true;
    type Sum = f64;
    const SCRATCH_PER_COLUMN: usize = 1;

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    #[inline(always)]
    fn is_infinite(self) -> bool {
        f32::is_infinite(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    fn to_wide(self) -> Scaled {
        Scaled::from_f64(self as f64)
    }
    fn from_wide(value: Scaled) -> Self {
        // Exact to f64 for every value of float32's range (f64's normal range is far wider),
        // so this is a single rounding.
        value.to_f64() as f32
    }

    #[inline(always)]
    fn accumulate_columns<S: ExactSquare>(
        block: &[Self],
        cols: usize,
        scratch: &mut [Self],
        sums: &mut [f64],
    ) {
        generic::accumulate_columns(block, cols, scratch, sums)
    }
    #[inline(always)]
    fn accumulate_narrow<S: ExactSquare>(
        block: &[Self],
        period: usize,
        scratch: &mut [Self],
        lane_sums: &mut [f64],
    ) {
        generic::accumulate_narrow(block, period, scratch, lane_sums)
    }
    #[inline(always)]
    fn sum_squares<S: ExactSquare>(run: &[Self]) -> f64 {
        #[cfg(target_arch = "x86_64")]
        if S::AVX2 {
            return generic::sum_squares_by(run, |run, lanes64| {
                // SAFETY: `S::AVX2` holds only in the tiers built for AVX2, whose tables are
                // handed out only where `Tier::is_supported` found AVX2.
                unsafe { crate::kernels::x86::blocked_squares(run, lanes64) }
            });
        }
        generic::sum_squares(run)
    }

    #[inline(always)]
    fn norm_of_sum(sum: f64) -> Self {
        sum.sqrt() as f32
    }
    #[inline(always)]
    fn sum_is_suspect(sum: f64) -> bool {
        // Also sums whose norm is at or near float32's overflow (short runs sum f64 squares,
        // which do not overflow: the norm does).
        !(F32_TINY_SUM..F32_HUGE_SUM).contains(&sum)
    }

    fn kernel_tables() -> &'static [Kernels<f32>; 3] {
        static TABLES: [Kernels<f32>; 3] = Kernels::tables();
        &TABLES
    }
}

impl Element for f64 {
    const MIN_POSITIVE: Self = f64::MIN_POSITIVE;
    const MAX: Self = f64::MAX;
    const NAME: &'static str = "float64";
    const SQUARES_CAN_OVERFLOW: bool = false;
    type Sum = Dd;
    const SCRATCH_PER_COLUMN: usize = 2;

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(value: f64) -> Self {
        value
    }
    #[inline(always)]
    fn is_infinite(self) -> bool {
        f64::is_infinite(self)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f64::abs(self)
    }
    fn to_wide(self) -> Scaled {
        Scaled::from_f64(self)
    }
    fn from_wide(value: Scaled) -> Self {
        value.to_f64()
    }

    #[inline(always)]
    fn accumulate_columns<S: ExactSquare>(
        block: &[Self],
        cols: usize,
        scratch: &mut [Self],
        sums: &mut [Dd],
    ) {
        compensated::accumulate_columns::<S>(block, cols, scratch, sums)
    }
    #[inline(always)]
    fn accumulate_narrow<S: ExactSquare>(
        block: &[Self],
        period: usize,
        scratch: &mut [Self],
        lane_sums: &mut [Dd],
    ) {
        compensated::accumulate_narrow::<S>(block, period, scratch, lane_sums)
    }
    #[inline(always)]
    fn sum_squares<S: ExactSquare>(run: &[Self]) -> Dd {
        compensated::sum_squares::<S>(run)
    }

    #[inline(always)]
    fn norm_of_sum(sum: Dd) -> Self {
        Dd::new(sum.hi, sum.lo).sqrt()
    }
    #[inline(always)]
    fn sum_is_suspect(sum: Dd) -> bool {
        // Zero too; not NaN (only a NaN element makes `hi` NaN, see `Dd::new`).
        !(sum.hi.is_nan() || (F64_TINY_SUM..=f64::MAX).contains(&sum.hi))
    }

    fn kernel_tables() -> &'static [Kernels<f64>; 3] {
        static TABLES: [Kernels<f64>; 3] = Kernels::tables();
        &TABLES
    }
}

/// A mutable buffer of either element type, as a binding hands one over.
#[derive(Debug)]
pub enum FloatsMut<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
}

/// A read-only buffer of either element type.
#[derive(Debug, Clone, Copy)]
pub enum Floats<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl FloatsMut<'_> {
    /// Copies `source` over these elements; `None` (nothing written) unless both are of one
    /// type and length.
    pub fn copy_from(&mut self, source: Floats<'_>) -> Option<()> {
        match (self, source) {
            (FloatsMut::F32(out), Floats::F32(data)) if out.len() == data.len() => {
                out.copy_from_slice(data)
            }
            (FloatsMut::F64(out), Floats::F64(data)) if out.len() == data.len() => {
                out.copy_from_slice(data)
            }
            _ => return None,
        }
        Some(())
    }

    pub fn len(&self) -> usize {
        match self {
            FloatsMut::F32(data) => data.len(),
            FloatsMut::F64(data) => data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Floats<'_> {
    pub fn len(&self) -> usize {
        match self {
            Floats::F32(data) => data.len(),
            Floats::F64(data) => data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
