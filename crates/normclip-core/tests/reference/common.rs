//! Shared pieces of the tests: a seeded PRNG, float helpers and an independent scalar
//! reference of every constraint (exact norms by walking multi-indices, factors with the Keras
//! formula in the element type, or in ~106-bit arithmetic where the crate takes its wide path).
//! Nothing here calls into the crate's kernels or its exact arithmetic.

use super::exact::{Big, ExactSum, Format};
use normclip_core::{Axes, Constraint, Element, Mode, Tier};

/// splitmix64: tiny, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1]
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    pub fn shuffle<X>(&mut self, items: &mut [X]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// The ulps an output element may be off when its slice's norm is `norm_ulps` off the correctly
/// rounded norm: none when the norm is exact (the factor then is too), else 2 plus 2 per ulp.
pub fn allowed_ulps(norm_ulps: u64) -> u64 {
    if norm_ulps == 0 {
        0
    } else {
        2 + 2 * norm_ulps
    }
}

/// The float operations the reference needs beyond [`Element`].
pub trait Float: Element + Format + PartialEq + std::fmt::Display {
    /// Unit roundoff of the type (half an ulp of 1).
    const UNIT_ROUNDOFF: f64;
    /// The bits, widened.
    fn bits(self) -> u64;
    /// A monotonic integer image of the value (-0 and +0 both map to 0).
    fn ordered(self) -> i64;
    fn negate(self) -> Self;
}

/// `$sign` is the position of the sign bit.
macro_rules! impl_float {
    ($t:ty, $sign:expr, $unit_roundoff:expr) => {
        impl Float for $t {
            const UNIT_ROUNDOFF: f64 = $unit_roundoff;
            fn bits(self) -> u64 {
                u64::from(self.to_bits())
            }
            fn ordered(self) -> i64 {
                let b = self.to_bits();
                let magnitude = (b & !(1 << $sign)) as i64;
                if b >> $sign == 1 {
                    -magnitude
                } else {
                    magnitude
                }
            }
            fn negate(self) -> Self {
                -self
            }
        }
    };
}

impl_float!(f32, 31, f32::EPSILON as f64 / 2.0);
impl_float!(f64, 63, f64::EPSILON / 2.0);

/// Distance in ulps; 0 for two NaNs, `u64::MAX` for a NaN against a number.
pub fn ulps<T: Float>(a: T, b: T) -> u64 {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => 0,
        (false, false) => a.ordered().abs_diff(b.ordered()),
        _ => u64::MAX,
    }
}

pub fn supported_tiers() -> Vec<Tier> {
    Tier::ALL.into_iter().filter(|t| t.is_supported()).collect()
}

/// Which slice each element belongs to, computed by walking multi-indices (odometer order).
pub struct Walk {
    pub slice_of: Vec<u32>,
    pub slices: usize,
    pub slice_len: usize,
    /// The keepdims shape of the norms.
    pub norms_shape: Vec<usize>,
}

/// Resolves an axis set independently of the crate (assumes it is valid).
pub fn reduced_axes(rank: usize, axes: &Axes) -> Vec<bool> {
    match axes {
        Axes::All => vec![true; rank],
        Axes::List(list) => {
            let mut reduced = vec![false; rank];
            for &a in list {
                let a = if a < 0 { a + rank as i64 } else { a } as usize;
                assert!(!reduced[a], "test bug: duplicate axis");
                reduced[a] = true;
            }
            reduced
        }
    }
}

pub fn walk(shape: &[usize], axes: &Axes) -> Walk {
    let rank = shape.len();
    let reduced = reduced_axes(rank, axes);
    let len: usize = shape.iter().product();
    // Stride of each kept axis in the slice index (row-major over the kept axes); 0 if reduced.
    let mut kept_stride = vec![0usize; rank];
    let mut stride = 1;
    for a in (0..rank).rev() {
        if !reduced[a] {
            kept_stride[a] = stride;
            stride *= shape[a];
        }
    }
    let slices = stride;
    let mut slice_of = Vec::with_capacity(len);
    let mut index = vec![0usize; rank];
    let mut slice = 0usize;
    for _ in 0..len {
        slice_of.push(slice as u32);
        // Odometer increment.
        for a in (0..rank).rev() {
            index[a] += 1;
            slice += kept_stride[a];
            if index[a] < shape[a] {
                break;
            }
            slice -= kept_stride[a] * shape[a];
            index[a] = 0;
        }
    }
    let norms_shape = shape
        .iter()
        .zip(&reduced)
        .map(|(&d, &r)| if r { 1 } else { d })
        .collect();
    let slice_len = len.checked_div(slices).unwrap_or(0);
    Walk {
        slice_of,
        slices,
        slice_len,
        norms_shape,
    }
}

/// A slice's exact norm: correctly rounded to the element type, and to ~106 bits.
#[derive(Debug, Clone, Copy)]
pub struct RefNorm<T> {
    pub rounded: T,
    pub big: Big,
}

impl<T: Float> RefNorm<T> {
    /// The correctly rounded norm in f64 (for relative comparisons).
    pub fn as_f64(&self) -> f64 {
        self.big.round::<f64>()
    }
}

/// The exact norm of every slice (a big-integer sum of the exact squares).
pub fn reference_norms<T: Float>(data: &[T], walk: &Walk) -> Vec<RefNorm<T>> {
    let mut sums = vec![ExactSum::default(); walk.slices];
    for (&x, &s) in data.iter().zip(&walk.slice_of) {
        sums[s as usize].add_square(x.to_f64());
    }
    sums.iter()
        .map(|sum| RefNorm {
            rounded: sum.sqrt_rounded::<T>().unwrap_or(T::from_f64(f64::NAN)),
            big: sum.sqrt_big(),
        })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Max,
    MinMax,
    Unit,
}

/// The parameters of a norm constraint, kept apart from the crate's own representation.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub kind: Kind,
    pub min: f64,
    pub max: f64,
    pub rate: f64,
    pub eps: f64,
    pub mode: Mode,
}

impl Spec {
    pub fn max_norm(max: f64) -> Spec {
        Spec {
            kind: Kind::Max,
            min: 0.0,
            max,
            rate: 1.0,
            eps: 1e-7,
            mode: Mode::Keras,
        }
    }

    pub fn min_max(min: f64, max: f64, rate: f64) -> Spec {
        Spec {
            kind: Kind::MinMax,
            min,
            max,
            rate,
            eps: 1e-7,
            mode: Mode::Keras,
        }
    }

    pub fn unit() -> Spec {
        Spec {
            kind: Kind::Unit,
            min: 0.0,
            max: 1.0,
            rate: 1.0,
            eps: 1e-7,
            mode: Mode::Keras,
        }
    }

    pub fn mode(mut self, mode: Mode) -> Spec {
        self.mode = mode;
        self
    }

    pub fn eps(mut self, eps: f64) -> Spec {
        self.eps = eps;
        self
    }

    pub fn constraint(&self, axes: Axes) -> Constraint {
        let c = match self.kind {
            Kind::Max => Constraint::max_norm(self.max, axes),
            Kind::MinMax => Constraint::min_max_norm(self.min, self.max, self.rate, axes),
            Kind::Unit => Constraint::unit_norm(axes),
        }
        .unwrap();
        c.with_mode(self.mode)
            .unwrap()
            .with_epsilon(self.eps)
            .unwrap()
    }
}

/// What happens to a slice.
#[derive(Debug, Clone, Copy)]
pub enum Op<T> {
    Keep,
    Multiply(T),
    Divide(T),
    /// A factor or divisor outside the element type's normal range, applied to ~106 bits and
    /// rounded once.
    MultiplyWide(Big),
    DivideWide(Big),
}

impl<T: Float> Op<T> {
    pub fn apply(self, x: T) -> T {
        match self {
            Op::Keep => x,
            Op::Multiply(f) => x * f,
            Op::Divide(d) => x / d,
            Op::MultiplyWide(f) => signed(x, |a| Big::from_f64(a).mul(f)),
            Op::DivideWide(d) => signed(x, |a| Big::from_f64(a).div(d)),
        }
    }

    pub fn is_wide(&self) -> bool {
        matches!(self, Op::MultiplyWide(_) | Op::DivideWide(_))
    }
}

/// `f(|x|)` rounded to `T`, with the sign of `x` (Big orders non-negative values only).
fn signed<T: Float>(x: T, f: impl Fn(f64) -> Big) -> T {
    let magnitude: T = if x.to_f64() == 0.0 {
        return x; // 0 times or over any positive finite value keeps its sign
    } else {
        f(x.to_f64().abs()).round::<T>()
    };
    if x.to_f64() < 0.0 {
        magnitude.negate()
    } else {
        magnitude
    }
}

/// numpy clip.
fn clip<R: PartialOrd + Copy>(n: R, low: R, high: R) -> R {
    if n < low {
        low
    } else if n > high {
        high
    } else {
        n
    }
}

/// Whether `v` is a normal number of `T` (or NaN).
pub fn is_normal_or_nan<T: Float>(v: T) -> bool {
    let a = v.to_f64().abs();
    v.is_nan() || (a >= T::MIN_POSITIVE.to_f64() && a <= T::MAX.to_f64())
}

/// The op of a slice from its exact norm, with the crate's documented choice of path: the
/// formula in the element type from the correctly rounded norm, unless that norm or the value it
/// gives is outside the normal range: then a zero slice stays as it is, and a finite non-zero
/// norm gets the formula in 53-bit steps without exponent limits, applied to each element and
/// rounded once (a factor of exactly 0 or 1 stays in the element type).
pub fn reference_op<T: Float>(spec: &Spec, norm: &RefNorm<T>) -> Op<T> {
    let n = norm.rounded;
    let elem = reference_op_elem(spec, n);
    let value_normal = match elem {
        Op::Multiply(v) | Op::Divide(v) => is_normal_or_nan(v) && !v.is_nan(),
        _ => true,
    };
    let norm_plain = n == T::ZERO || is_normal_or_nan(n);
    if n.is_nan() || (norm_plain && value_normal) {
        return elem;
    }
    if norm.big.is_zero() {
        // A zero slice stays as it is (the formula may overflow there: min / eps).
        return Op::Keep;
    }
    if norm.big.is_nan() || !norm.big.is_finite() {
        return elem;
    }
    reference_op_big(spec, norm.big, Precision::Double)
}

/// [`reference_op`], with the wide path's formula evaluated exactly (to ~106 bits) instead of
/// with 53-bit roundings: how far the wide path is from the exact formula.
pub fn reference_op_exact<T: Float>(spec: &Spec, norm: &RefNorm<T>) -> Op<T> {
    match reference_op(spec, norm) {
        Op::MultiplyWide(_) | Op::DivideWide(_) => {
            reference_op_big(spec, norm.big, Precision::Exact)
        }
        op => op,
    }
}

/// The arithmetic of the wide formula.
#[derive(Clone, Copy, PartialEq)]
pub enum Precision {
    /// Each operation rounded to 53 bits, no exponent limits: the crate's documented wide path.
    Double,
    /// ~106 bits.
    Exact,
}

impl Spec {
    /// min, max, rate, 1 - rate (taken in f64, as Keras takes it from a Python float) and
    /// epsilon, each converted by `t` into the precision a reference formula runs in.
    fn constants<X>(&self, t: impl Fn(f64) -> X) -> (X, X, X, X, X) {
        (
            t(self.min),
            t(self.max),
            t(self.rate),
            t(1.0 - self.rate),
            t(self.eps),
        )
    }
}

/// The formula in the element type from a norm already in the element type.
pub fn reference_op_elem<T: Float>(spec: &Spec, n: T) -> Op<T> {
    let t = T::from_f64;
    let (min, max, rate, omr, eps) = spec.constants(t);
    match (spec.mode, spec.kind) {
        (Mode::Keras, Kind::Max) => Op::Multiply(clip(n, T::ZERO, max) / (eps + n)),
        (Mode::Keras, Kind::MinMax) => {
            Op::Multiply((rate * clip(n, min, max) + omr * n) / (eps + n))
        }
        (Mode::Keras, Kind::Unit) => Op::Divide(eps + n),
        (Mode::Projection, Kind::Max) => {
            if n.is_nan() {
                Op::Multiply(n)
            } else if n > max {
                Op::Multiply(max / n)
            } else {
                Op::Keep
            }
        }
        (Mode::Projection, Kind::MinMax) => {
            let bound = if n.is_nan() {
                return Op::Multiply(n);
            } else if n > max {
                max
            } else if n < min && n > T::ZERO {
                min
            } else {
                return Op::Keep;
            };
            // Rate 1 targets the bound itself (an infinite norm then gives 0, not 0 · inf).
            Op::Multiply(if rate == T::ONE {
                bound / n
            } else {
                (rate * bound + omr * n) / n
            })
        }
        (Mode::Projection, Kind::Unit) => {
            if n.is_nan() {
                // Consistent with the other constraints: NaN propagates through its slice.
                Op::Divide(n)
            } else if n > T::ZERO {
                Op::Divide(n)
            } else {
                Op::Keep
            }
        }
    }
}

/// The formula in `precision` from an exact (finite, non-zero) norm, parameters rounded to `T`
/// first as the element-type formula rounds them.
fn reference_op_big<T: Float>(spec: &Spec, n: Big, precision: Precision) -> Op<T> {
    let r = |x: Big| {
        if precision == Precision::Double {
            x.round53()
        } else {
            x
        }
    };
    let n = r(n);
    let add = |a: Big, b: Big| r(a.add(b));
    let mul = |a: Big, b: Big| r(a.mul(b));
    let div = |a: Big, b: Big| r(a.div(b));
    let t = |x: f64| Big::from_f64(T::from_f64(x).to_f64());
    let (min, max, rate, omr, eps) = spec.constants(t);
    let one = Big::from_f64(1.0);
    let multiply = |f: Big| {
        if f.is_zero() {
            Op::Multiply(T::ZERO)
        } else if f == one {
            Op::Keep
        } else {
            Op::MultiplyWide(f)
        }
    };
    match (spec.mode, spec.kind) {
        (Mode::Keras, Kind::Max) => multiply(div(clip(n, Big::ZERO, max), add(eps, n))),
        (Mode::Keras, Kind::MinMax) => multiply(div(
            add(mul(rate, clip(n, min, max)), mul(omr, n)),
            add(eps, n),
        )),
        (Mode::Keras, Kind::Unit) => Op::DivideWide(add(eps, n)),
        (Mode::Projection, Kind::Unit) => Op::DivideWide(n),
        (Mode::Projection, _) => {
            let min = if spec.kind == Kind::Max {
                Big::ZERO
            } else {
                min
            };
            let bound = if n > max {
                max
            } else if n < min {
                min
            } else {
                return Op::Keep;
            };
            let rate = if spec.kind == Kind::Max { one } else { rate };
            if rate == one {
                multiply(div(bound, n))
            } else {
                multiply(div(add(mul(rate, bound), mul(omr, n)), n))
            }
        }
    }
}

/// The op of every slice.
pub fn reference_ops<T: Float>(spec: &Spec, norms: &[RefNorm<T>]) -> Vec<Op<T>> {
    norms.iter().map(|n| reference_op(spec, n)).collect()
}

/// Reference output of a norm constraint.
pub fn reference_apply<T: Float>(
    spec: &Spec,
    data: &[T],
    walk: &Walk,
    norms: &[RefNorm<T>],
) -> Vec<T> {
    let ops = reference_ops(spec, norms);
    data.iter()
        .zip(&walk.slice_of)
        .map(|(&x, &s)| ops[s as usize].apply(x))
        .collect()
}

/// Keras 3 `maximum(w, 0)`: negatives and -0 to +0 (what its backends return), NaN kept bit for
/// bit.
pub fn reference_non_neg<T: Float>(data: &[T]) -> Vec<T> {
    data.iter()
        .map(|&x| {
            if x.is_nan() || x > T::ZERO {
                x
            } else {
                T::ZERO
            }
        })
        .collect()
}

/// tf-keras RadialConstraint, simulated the way its code builds each `h × h` slice: start from
/// the core (`1×1` for odd `h`, `2×2` for even, filled with `k[start-1, start-1]`), then pad one
/// ring at a time with `k[start+i, start+i]` for `i` from 0 (odd) or 1 (even) while `i < start`.
pub fn reference_radial<T: Float>(data: &[T], shape: &[usize]) -> Vec<T> {
    let (h, depth) = (shape[0], shape[2] * shape[3]);
    assert_eq!(shape[1], h);
    let start = h / 2;
    let mut out = data.to_vec();
    for d in 0..depth {
        let k = |r: usize, c: usize| data[(r * h + c) * depth + d];
        let odd = h % 2 == 1;
        let core = k(start - 1, start - 1);
        let mut grid: Vec<Vec<T>> = if odd {
            vec![vec![core]]
        } else {
            vec![vec![core; 2]; 2]
        };
        let mut i = if odd { 0 } else { 1 };
        while i < start {
            let value = k(start + i, start + i);
            let width = grid.len() + 2;
            let mut padded = vec![vec![value; width]; width];
            for (r, row) in grid.iter().enumerate() {
                padded[r + 1][1..width - 1].copy_from_slice(row);
            }
            grid = padded;
            i += 1;
        }
        assert_eq!(grid.len(), h);
        for r in 0..h {
            for c in 0..h {
                out[(r * h + c) * depth + d] = grid[r][c];
            }
        }
    }
    out
}

/// Asserts `actual` equals `expected` bit for bit, naming the first difference.
pub fn assert_bits<T: Float>(actual: &[T], expected: &[T], what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    if let Some(i) = (0..actual.len()).find(|&i| actual[i].bits() != expected[i].bits()) {
        panic!(
            "{what}: element {i} differs: got {} ({:#x}), expected {} ({:#x})",
            actual[i],
            actual[i].bits(),
            expected[i],
            expected[i].bits()
        );
    }
}

/// Asserts every norm within `limit` ulps of the correctly rounded one and returns the distances,
/// which decide how far each slice's output may be from the reference.
pub fn assert_norm_ulps<T: Float>(
    norms: &[T],
    reference: &[RefNorm<T>],
    limit: u64,
    what: &str,
) -> Vec<u64> {
    let distances: Vec<u64> = norms
        .iter()
        .zip(reference)
        .map(|(&n, r)| ulps(n, r.rounded))
        .collect();
    for (s, &d) in distances.iter().enumerate() {
        assert!(
            d <= limit,
            "{what}: slice {s}: norm {} is {d} ulps from the correctly rounded {}",
            norms[s],
            reference[s].rounded
        );
    }
    distances
}

/// Rayon pools of 1 to `max` threads, in that order (the order
/// [`assert_same_for_all_thread_counts`] reads results in).
pub fn thread_pools(max: usize) -> Vec<rayon::ThreadPool> {
    (1..=max)
        .map(|k| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(k)
                .build()
                .unwrap()
        })
        .collect()
}

/// Asserts that the (output, norms) of every thread count after the first are those of the
/// first, bit for bit; the index of a result is its thread count minus one.
pub fn assert_same_for_all_thread_counts<T: Float>(results: &[(Vec<T>, Vec<T>)], what: &str) {
    for (k, (out, n)) in results.iter().enumerate().skip(1) {
        assert_bits(
            n,
            &results[0].1,
            &format!("{what}: norms, {} threads", k + 1),
        );
        assert_bits(
            out,
            &results[0].0,
            &format!("{what}: output, {} threads", k + 1),
        );
    }
}

/// Asserts every element within `tolerance(i)` ulps of the reference.
pub fn assert_ulps<T: Float>(actual: &[T], expected: &[T], tolerance: u64, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for i in 0..actual.len() {
        let d = ulps(actual[i], expected[i]);
        assert!(
            d <= tolerance,
            "{what}: element {i}: got {}, expected {} ({d} ulps > {tolerance})",
            actual[i],
            expected[i]
        );
    }
}

/// Asserts a norm within `rel` relative of the reference (both zero is fine).
pub fn assert_norm_close(actual: f64, expected: f64, rel: f64, what: &str) {
    if actual == expected || (actual.is_nan() && expected.is_nan()) {
        return;
    }
    let err = (actual - expected).abs() / expected.abs();
    assert!(
        err <= rel,
        "{what}: norm {actual} vs reference {expected}: relative error {err:e} > {rel:e}"
    );
}

/// Normal-ish f32 data.
pub fn normal_f32(rng: &mut Rng, len: usize, scale: f64) -> Vec<f32> {
    (0..len).map(|_| (rng.normal() * scale) as f32).collect()
}
