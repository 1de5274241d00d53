//! A call from start to end: validate, plan, norm pass, per-slice values, scale pass.
//!
//! Memory traffic is the cost that matters (the work is a few flops per element), so: one read pass
//! for the norms, one read-modify-write pass for the scale, and no write at all where a slice's
//! value leaves it bit-identical (MaxNorm in f32 for 2 <= n <= max_value, projection mode inside
//! the bounds).

use rayon::prelude::*;

use crate::constraint::{Constraint, NormRule, Scale, SliceRule};
use crate::element::{Element, SquareSum};
use crate::error::Result;
use crate::exact::{add_square, Dd, Split};
use crate::kernels::{Kernels, Tier};
use crate::layout::{check_length, norms_shape, Axes, Inner, Plan};
use crate::parallel::{reduction_parts, use_threads};
use crate::radial::RadialPlan;
use crate::wide::{Real, Scaled};

/// Rows narrower than this use the flat-stream kernel (`generic::accumulate_narrow`).
const NARROW_COLUMNS: usize = 32;
/// Elements per task of a parallel scale pass.
const SCALE_TASK_ELEMENTS: usize = 1 << 16;

/// The keepdims norms of a tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct Norms<T> {
    pub values: Vec<T>,
    pub shape: Vec<usize>,
}

/// A validated call, ready to run on a buffer of the checked length: the plan and the rule it
/// was validated with, so no plan can be run with another constraint's formula.
#[derive(Debug, Clone)]
pub struct Prepared {
    len: usize,
    work: Work,
}

#[derive(Debug, Clone)]
enum Work {
    /// An empty tensor: nothing to read or write, and nothing is allocated (its other dimensions
    /// may multiply to more slices than fit in memory).
    Empty,
    Norm {
        plan: Plan,
        rule: NormRule,
    },
    NonNeg,
    Radial(RadialPlan),
}

impl Constraint {
    /// Checks `shape` and the buffer length against this constraint, touching no data. A batch
    /// prepares every item first, so a bad item leaves every buffer unchanged.
    pub fn prepare(&self, len: usize, shape: &[usize]) -> Result<Prepared> {
        check_length(len, shape)?;
        let work = match (self, self.norm_rule()) {
            (_, Some((rule, axes))) if len > 0 => Work::Norm {
                plan: Plan::new(shape, axes)?,
                rule,
            },
            // An empty tensor gets the same shape checks as a full one, then nothing to do.
            (_, Some((_, axes))) => {
                Plan::check_axes(shape, axes)?;
                Work::Empty
            }
            (Constraint::Radial, None) => {
                let plan = RadialPlan::new(shape)?;
                if len == 0 {
                    Work::Empty
                } else {
                    Work::Radial(plan)
                }
            }
            (_, None) if len == 0 => Work::Empty,
            (_, None) => Work::NonNeg,
        };
        Ok(Prepared { len, work })
    }

    /// Applies the constraint to `data` (row-major, of `shape`) in place, with the active tier.
    pub fn apply_in_place<T: Element>(&self, data: &mut [T], shape: &[usize]) -> Result<()> {
        self.apply_in_place_with_tier(data, shape, Tier::active())
    }

    /// [`Constraint::apply_in_place`] with an explicit SIMD tier.
    pub fn apply_in_place_with_tier<T: Element>(
        &self,
        data: &mut [T],
        shape: &[usize],
        tier: Tier,
    ) -> Result<()> {
        let prepared = self.prepare(data.len(), shape)?;
        prepared.run(data, &Kernels::<T>::for_tier(tier)?);
        Ok(())
    }

    /// A constrained copy of `data`; `data` is left as it is.
    pub fn apply_copy<T: Element>(&self, data: &[T], shape: &[usize]) -> Result<Vec<T>> {
        let prepared = self.prepare(data.len(), shape)?;
        Ok(prepared.run_copy(data, &Kernels::for_tier(Tier::active())?))
    }
}

impl Prepared {
    /// The buffer length this call was validated for.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// [`Prepared::run`] into a new buffer, `data` left as it is. The norm constraints copy and
    /// scale cache-sized chunks in one go, so a copy costs about the traffic of an in-place call
    /// plus the write of the output, not a copy pass on top of it.
    ///
    /// # Panics
    /// If `data` is not of the length the call was prepared for.
    pub fn run_copy<T: Element>(&self, data: &[T], kernels: &Kernels<T>) -> Vec<T> {
        // A zeroed allocation is fresh pages from the OS for large buffers: no extra pass.
        let mut out = vec![T::ZERO; data.len()];
        self.run_copy_into(data, &mut out, kernels);
        out
    }

    /// [`Prepared::run_copy`] into `out`, a buffer of `data.len()` elements the caller owns (every
    /// element is written).
    ///
    /// # Panics
    /// If `data` or `out` is not of the length the call was prepared for.
    pub fn run_copy_into<T: Element>(&self, data: &[T], out: &mut [T], kernels: &Kernels<T>) {
        assert_eq!(
            (data.len(), out.len()),
            (self.len, self.len),
            "a copy needs an input and an output of the prepared length"
        );
        match &self.work {
            Work::Empty => {}
            Work::Norm { plan, rule } => {
                let mut sums = vec![T::Sum::default(); plan.slices];
                let mut values = vec![T::ZERO; plan.slices];
                run_norm(plan, rule, out, Some(data), kernels, &mut sums, &mut values);
            }
            _ => {
                out.copy_from_slice(data);
                self.run(out, kernels);
            }
        }
    }

    /// Runs the call on `data`, in place.
    ///
    /// # Panics
    /// If `data` is not of the length the call was prepared for.
    pub fn run<T: Element>(&self, data: &mut [T], kernels: &Kernels<T>) {
        assert_eq!(
            data.len(),
            self.len,
            "a prepared call runs on a buffer of its length"
        );
        match &self.work {
            Work::Empty => {}
            Work::NonNeg => for_chunks_of(data, None, SCALE_TASK_ELEMENTS, |_, chunk| {
                (kernels.non_negative)(chunk)
            }),
            Work::Radial(plan) => plan.apply(data),
            Work::Norm { plan, rule } => {
                // Small tensors keep their per-slice buffers on the stack: on a 16-element call
                // two heap allocations cost more than the arithmetic.
                const ON_STACK: usize = 64;
                if plan.slices <= ON_STACK {
                    let mut sums = [T::Sum::default(); ON_STACK];
                    let mut values = [T::ZERO; ON_STACK];
                    run_norm(
                        plan,
                        rule,
                        data,
                        None,
                        kernels,
                        &mut sums[..plan.slices],
                        &mut values[..plan.slices],
                    );
                } else {
                    let mut sums = vec![T::Sum::default(); plan.slices];
                    let mut values = vec![T::ZERO; plan.slices];
                    run_norm(plan, rule, data, None, kernels, &mut sums, &mut values);
                }
            }
        }
    }
}

/// The norm pass, the per-slice values and the scale pass. With a `source`, the norms are taken
/// from it and `data` (of the same length) receives the constrained copy.
fn run_norm<T: Element>(
    plan: &Plan,
    rule: &NormRule,
    data: &mut [T],
    source: Option<&[T]>,
    kernels: &Kernels<T>,
    sums: &mut [T::Sum],
    values: &mut [T],
) {
    let rule = SliceRule::<T>::new(rule);
    let src: &[T] = match source {
        Some(source) => source,
        None => data,
    };
    let (exact, mut abnormal) = slice_norms(src, plan, kernels, sums, values);
    // Two tight loops (norms, then values with the rule chosen once) rather than one with
    // every branch inside: on small tensors this per-slice work is a third of a call.
    rule.values_from_norms(values);
    abnormal |= values
        .iter()
        .fold(false, |any, &v| any | !is_normal_value(v));
    // Slices whose norm or value is outside the element type's normal range get their value
    // in the wide arithmetic, applied by a scalar pass; the SIMD pass skips them (value ONE).
    let wide = if abnormal {
        wide_values(src, plan, kernels, &rule, sums, values, &exact)
    } else {
        Vec::new()
    };
    scale(data, source, plan, values, kernels, rule.scale());
    if !wide.is_empty() {
        scale_wide(data, plan, &wide, rule.scale());
    }
}

/// A norm the element type holds to full precision (or a zero or NaN slice).
fn is_plain_norm<T: Element>(n: T) -> bool {
    n == T::ZERO || n.is_nan() || (n.abs() >= T::MIN_POSITIVE && n.abs() <= T::MAX)
}

/// A factor or divisor the element type holds to full precision (NaN is not: a NaN slice is
/// told apart by its norm).
#[inline(always)]
fn is_normal_value<T: Element>(v: T) -> bool {
    let a = v.abs();
    a >= T::MIN_POSITIVE && a <= T::MAX
}

/// The keepdims L2 norms of `data` along `axes`, computed as the constraints compute them.
pub fn norms<T: Element>(data: &[T], shape: &[usize], axes: &Axes) -> Result<Norms<T>> {
    norms_with_tier(data, shape, axes, Tier::active())
}

/// [`norms`] with an explicit SIMD tier.
pub fn norms_with_tier<T: Element>(
    data: &[T],
    shape: &[usize],
    axes: &Axes,
    tier: Tier,
) -> Result<Norms<T>> {
    check_length(data.len(), shape)?;
    let plan = Plan::new(shape, axes)?;
    // An empty tensor can have more (zero) norms than fit in memory: refuse rather than abort.
    let mut values = Vec::new();
    values.try_reserve_exact(plan.slices).map_err(|_| {
        crate::error::Error::range(format!(
            "shape: the norms of {shape:?} would be {} values, more values than fit in memory",
            plan.slices
        ))
    })?;
    values.resize(plan.slices, T::ZERO);
    norms_into(data, &plan, &mut values, &Kernels::for_tier(tier)?);
    Ok(Norms {
        values,
        shape: norms_shape(shape, plan.reduced),
    })
}

/// The norms of `data` (walked by `plan`, made for its shape) into `out`, one per slice.
///
/// # Panics
/// If `data` or `out` do not have the plan's lengths.
pub fn norms_into<T: Element>(data: &[T], plan: &Plan, out: &mut [T], kernels: &Kernels<T>) {
    assert_eq!(
        (data.len(), out.len()),
        (plan.len, plan.slices),
        "norms need the plan's input and output lengths"
    );
    if plan.len == 0 {
        // Empty slices have norm 0; the sums would be as large as the output for nothing.
        out.fill(T::ZERO);
        return;
    }
    let mut sums = vec![T::Sum::default(); plan.slices];
    slice_norms(data, plan, kernels, &mut sums, out);
}

/// The norm of every slice into `norms`, with `sums` (zeroed, one per slice) as accumulators.
///
/// Slices whose sum may have lost bits (squares that overflowed or underflowed, and zero sums,
/// which tiny elements can fake) are recomputed exactly ([`exact_norms`]): those exact norms are
/// returned, by slice, with whether any norm is outside the element type's normal range. Keras'
/// own sums overflow there (zeros for the slice from MaxNorm and UnitNorm, NaN from MinMaxNorm)
/// or lose bits: the one place where we deliberately differ from Keras.
fn slice_norms<T: Element>(
    data: &[T],
    plan: &Plan,
    kernels: &Kernels<T>,
    sums: &mut [T::Sum],
    norms: &mut [T],
) -> (Vec<(usize, Scaled)>, bool) {
    let group_len = plan.group_len();
    let per_group = plan.slices_per_group();
    for group in 0..plan.groups() {
        let block = &data[group * group_len..(group + 1) * group_len];
        let base = plan.group_base(group);
        let out = &mut sums[base..base + per_group];
        match plan.inner {
            Inner::Columns { rows, cols } => column_sums(block, rows, cols, out, kernels),
            Inner::Runs { runs, run_len } => run_sums(block, runs, run_len, out, kernels),
        }
    }
    let mut any_suspect = false;
    for (norm, &sum) in norms.iter_mut().zip(sums.iter()) {
        *norm = T::norm_of_sum(sum);
        any_suspect |= T::sum_is_suspect(sum);
    }
    if !any_suspect {
        // Every other sum gives a norm in the normal range (see `Element::sum_is_suspect`).
        return (Vec::new(), false);
    }
    let suspects: Vec<usize> = (0..sums.len())
        .filter(|&s| T::sum_is_suspect(sums[s]))
        .collect();
    let recomputed = exact_norms(data, plan, &suspects, kernels);
    let mut abnormal = false;
    for (&slice, &norm) in suspects.iter().zip(&recomputed) {
        norms[slice] = T::from_wide(norm);
        abnormal |= !is_plain_norm(norms[slice]);
    }
    (suspects.into_iter().zip(recomputed).collect(), abnormal)
}

/// The exact norms of the slices `listed` (sorted), as [`Scaled`] values: a first pass finds each
/// slice's largest magnitude, a second sums the squares of its elements scaled by the power of
/// two that brings that magnitude to `[1, 2)` (exact, so no square overflows and none that
/// matters underflows), as a double-double of exact squares. Elements below 2^-484 of the
/// largest weigh less than 2^-968 each: they cannot change the rounded norm.
fn exact_norms<T: Element>(
    data: &[T],
    plan: &Plan,
    listed: &[usize],
    kernels: &Kernels<T>,
) -> Vec<Scaled> {
    let (largest, has_nan) = largest_magnitudes(data, plan, listed, kernels);
    let mut norms: Vec<Scaled> = Vec::with_capacity(listed.len());
    // The slots with a finite non-zero largest magnitude, their exponent and 2^-exponent as two
    // exact factors (2^-k alone may not be a double).
    let mut scaled: Vec<(usize, i64, f64, f64)> = Vec::new();
    for slot in 0..listed.len() {
        let max = largest[slot];
        if has_nan[slot] {
            norms.push(Scaled::from_f64(f64::NAN));
            continue;
        }
        // 0 and inf are their own norms; anything else is summed below.
        norms.push(Scaled::from_f64(max));
        if max > 0.0 && max.is_finite() {
            let k = Scaled::from_f64(max).exponent();
            let half = -k / 2;
            scaled.push((slot, k, pow2(half), pow2(-k - half)));
        }
    }
    if scaled.is_empty() {
        return norms; // all-zero (or NaN, or infinite) slices: no second pass
    }
    let sublist: Vec<usize> = scaled.iter().map(|&(slot, ..)| listed[slot]).collect();
    let mut sums = vec![(0.0f64, 0.0f64); scaled.len()];
    walk_slices(data, plan, &sublist, |i, x| {
        let (_, _, a, b) = scaled[i];
        let (sum, comp) = &mut sums[i];
        add_square::<Split>(sum, comp, x.to_f64() * a * b);
    });
    for (&(slot, k, ..), &(sum, comp)) in scaled.iter().zip(&sums) {
        norms[slot] = Scaled::from_f64(Dd::new(sum, comp).sqrt()).scale(k);
    }
    norms
}

/// The largest magnitude of each slice `listed` (sorted), and whether it holds a NaN. Where a
/// group's slices are all listed (a tensor of zeros: every sum is suspect), the SIMD kernels.
fn largest_magnitudes<T: Element>(
    data: &[T],
    plan: &Plan,
    listed: &[usize],
    kernels: &Kernels<T>,
) -> (Vec<f64>, Vec<bool>) {
    let mut largest = vec![0.0f64; listed.len()];
    let mut has_nan = vec![false; listed.len()];
    let group_len = plan.group_len();
    let per_group = plan.slices_per_group();
    let exact_walk =
        |block: &[T], base: usize, slices: &[usize], max: &mut [f64], nan: &mut [bool]| {
            walk_group(block, plan, base, slices, |slot, x| {
                let a = x.to_f64().abs();
                max[slot] = max[slot].max(a);
                nan[slot] |= a.is_nan();
            })
        };
    let mut group_max: Vec<T> = Vec::new();
    let mut flags: Vec<T> = Vec::new();
    for group in 0..plan.groups() {
        let block = &data[group * group_len..(group + 1) * group_len];
        let base = plan.group_base(group);
        let first = listed.partition_point(|&s| s < base);
        let end = listed.partition_point(|&s| s < base + per_group);
        if first == end {
            continue;
        }
        let (max, nan) = (&mut largest[first..end], &mut has_nan[first..end]);
        if end - first < per_group {
            exact_walk(block, base, &listed[first..end], max, nan);
            continue;
        }
        group_max.clear();
        group_max.resize(per_group, T::ZERO);
        flags.clear();
        flags.resize(per_group, T::ZERO);
        match plan.inner {
            Inner::Columns { cols, .. } => {
                (kernels.largest_columns)(block, cols, &mut group_max, &mut flags)
            }
            Inner::Runs { run_len, .. } => {
                for (j, run) in block.chunks_exact(run_len).enumerate() {
                    (group_max[j], flags[j]) = (kernels.largest_run)(run);
                }
            }
        }
        for j in 0..per_group {
            max[j] = max[j].max(group_max[j].to_f64());
        }
        // A flag is NaN where a NaN or an infinity passed: find out which, element by element.
        let flagged: Vec<usize> = (0..per_group).filter(|&j| flags[j].is_nan()).collect();
        if !flagged.is_empty() {
            let slices: Vec<usize> = flagged.iter().map(|&j| base + j).collect();
            let (mut m, mut n) = (vec![0.0; slices.len()], vec![false; slices.len()]);
            exact_walk(block, base, &slices, &mut m, &mut n);
            for (i, &j) in flagged.iter().enumerate() {
                max[j] = max[j].max(m[i]);
                nan[j] |= n[i];
            }
        }
    }
    (largest, has_nan)
}

/// `2^k` for `|k| <= 1022`.
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// The wide values of the slices whose norm or value is outside the element type's normal range
/// (by slice, sorted); their entries in `values` become ONE, so the SIMD pass skips them.
///
/// NaN and infinite norms keep the element-type formula (Keras' semantics: NaN spreads, an
/// infinite element gives NaN and zeros), and so do slices whose wide value is exactly 0 or 1 (a
/// factor the element type holds exactly); zero slices are left as they are.
fn wide_values<T: Element>(
    data: &[T],
    plan: &Plan,
    kernels: &Kernels<T>,
    rule: &SliceRule<T>,
    sums: &[T::Sum],
    values: &mut [T],
    exact: &[(usize, Scaled)],
) -> Vec<(usize, Scaled)> {
    let multiply = rule.scale() == Scale::Multiply;
    // One merge walk over the slices and the (sorted) exact norms.
    let mut candidates: Vec<(usize, Option<Scaled>)> = Vec::new();
    let mut next = exact.iter().peekable();
    for (slice, &value) in values.iter().enumerate() {
        let known = next.next_if(|&&(s, _)| s == slice).map(|&(_, norm)| norm);
        let norm = known.map_or_else(|| T::norm_of_sum(sums[slice]), T::from_wide);
        if norm.is_nan() {
            continue; // NaN spreads through its slice, as in Keras
        }
        // A zero slice with a finite factor (non-zero divisor) comes back as it is (±0 · v):
        // nothing to do.
        let zero_kept = norm == T::ZERO
            && !value.is_nan()
            && !value.is_infinite()
            && (multiply || value != T::ZERO);
        if !is_plain_norm(norm) || (!is_normal_value(value) && !zero_kept) {
            candidates.push((slice, known));
        }
    }
    let missing: Vec<usize> = candidates
        .iter()
        .filter(|(_, known)| known.is_none())
        .map(|&(slice, _)| slice)
        .collect();
    if !missing.is_empty() {
        let mut recomputed = exact_norms(data, plan, &missing, kernels).into_iter();
        for (_, known) in candidates.iter_mut().filter(|(_, known)| known.is_none()) {
            *known = recomputed.next();
        }
    }
    let mut wide = Vec::new();
    for (slice, norm) in candidates {
        let norm = norm.expect("every candidate has its exact norm");
        if norm.is_zero() {
            // A zero slice stays as it is: what any finite value gives it (±0 · v), where the
            // formula can overflow (MinMaxNorm's min / eps) and make 0 · inf = NaN.
            values[slice] = T::ONE;
            continue;
        }
        if !norm.is_finite() {
            continue;
        }
        let value = rule.value_wide(norm);
        if multiply && (value.is_zero() || value == Scaled::ONE) {
            values[slice] = T::from_wide(value);
            continue;
        }
        wide.push((slice, value));
        values[slice] = T::ONE;
    }
    wide
}

/// Calls `f(slot, x)` for every element `x` of the slices `listed` (sorted; `slot` is the index in
/// `listed`), group by group in memory order.
fn walk_slices<T: Element>(data: &[T], plan: &Plan, listed: &[usize], mut f: impl FnMut(usize, T)) {
    let group_len = plan.group_len();
    let per_group = plan.slices_per_group();
    for group in 0..plan.groups() {
        let block = &data[group * group_len..(group + 1) * group_len];
        let base = plan.group_base(group);
        let first = listed.partition_point(|&s| s < base);
        let end = listed.partition_point(|&s| s < base + per_group);
        if first < end {
            walk_group(block, plan, base, &listed[first..end], |slot, x| {
                f(first + slot, x)
            });
        }
    }
}

/// [`walk_slices`] within one group (`block`, feeding slices from `base`); `listed` holds only
/// slices of this group.
fn walk_group<T: Element>(
    block: &[T],
    plan: &Plan,
    base: usize,
    listed: &[usize],
    mut f: impl FnMut(usize, T),
) {
    match plan.inner {
        Inner::Columns { cols, .. } => {
            for row in block.chunks_exact(cols) {
                for (slot, &slice) in listed.iter().enumerate() {
                    f(slot, row[slice - base]);
                }
            }
        }
        Inner::Runs { run_len, .. } => {
            for (slot, &slice) in listed.iter().enumerate() {
                let j = slice - base;
                for &x in &block[j * run_len..(j + 1) * run_len] {
                    f(slot, x);
                }
            }
        }
    }
}

/// [`walk_slices`] with each element replaced by `f(slot, x)`.
fn map_slices<T: Element>(
    data: &mut [T],
    plan: &Plan,
    listed: &[usize],
    f: impl Fn(usize, T) -> T,
) {
    let group_len = plan.group_len();
    let per_group = plan.slices_per_group();
    for group in 0..plan.groups() {
        let base = plan.group_base(group);
        let block = &mut data[group * group_len..(group + 1) * group_len];
        let first = listed.partition_point(|&s| s < base);
        let end = listed.partition_point(|&s| s < base + per_group);
        if first == end {
            continue;
        }
        match plan.inner {
            Inner::Columns { cols, .. } => {
                for row in block.chunks_exact_mut(cols) {
                    for (slot, &slice) in listed.iter().enumerate().take(end).skip(first) {
                        let x = &mut row[slice - base];
                        *x = f(slot, *x);
                    }
                }
            }
            Inner::Runs { run_len, .. } => {
                for (slot, &slice) in listed.iter().enumerate().take(end).skip(first) {
                    let j = slice - base;
                    for x in &mut block[j * run_len..(j + 1) * run_len] {
                        *x = f(slot, *x);
                    }
                }
            }
        }
    }
}

/// Applies wide values to their slices, each element rounded once.
fn scale_wide<T: Element>(data: &mut [T], plan: &Plan, wide: &[(usize, Scaled)], scale: Scale) {
    let listed: Vec<usize> = wide.iter().map(|&(s, _)| s).collect();
    map_slices(data, plan, &listed, |slot, x| match scale {
        Scale::Multiply => x.mul_wide(wide[slot].1),
        Scale::Divide => x.div_wide(wide[slot].1),
    });
}

fn narrow_period(cols: usize) -> Option<usize> {
    if cols >= NARROW_COLUMNS {
        return None;
    }
    // A multiple of `cols` that fills whole vectors (16 f32 lanes) and is at least 64 lanes wide,
    // so enough independent accumulators hide the add latency.
    let lcm = cols / gcd(cols, 16) * 16;
    Some(lcm * 64usize.div_ceil(lcm))
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

/// Adds the column sums of squares of `block` (`rows × cols`) into `out`. Large blocks are cut into
/// a fixed number of row ranges (a function of the size only), summed apart and added in order.
fn column_sums<T: Element>(
    block: &[T],
    rows: usize,
    cols: usize,
    out: &mut [T::Sum],
    kernels: &Kernels<T>,
) {
    let parts = reduction_parts(block.len());
    let period = narrow_period(cols);
    if parts == 1 {
        add_column_sums(block, cols, period, out, kernels);
        return;
    }
    let rows_per_part = rows.div_ceil(parts).max(1);
    let part_sums = |part: &[T]| -> Vec<T::Sum> {
        let mut sums = vec![T::Sum::default(); cols];
        add_column_sums(part, cols, period, &mut sums, kernels);
        sums
    };
    let partials: Vec<Vec<T::Sum>> = if use_threads(block.len()) {
        block
            .par_chunks(rows_per_part * cols)
            .map(part_sums)
            .collect()
    } else {
        block.chunks(rows_per_part * cols).map(part_sums).collect()
    };
    for partial in partials {
        for (sum, part) in out.iter_mut().zip(partial) {
            *sum = sum.merge(part);
        }
    }
}

/// Scratch up to this many elements lives on the stack (small tensors: no allocation per call).
const STACK_SCRATCH: usize = 512;

/// Adds the column sums of squares of `block` into `sums` (`cols`).
fn add_column_sums<T: Element>(
    block: &[T],
    cols: usize,
    period: Option<usize>,
    sums: &mut [T::Sum],
    kernels: &Kernels<T>,
) {
    let per_column = T::SCRATCH_PER_COLUMN;
    match period {
        Some(period) if period * per_column <= STACK_SCRATCH => {
            let mut scratch = [T::ZERO; STACK_SCRATCH];
            let mut lanes = [T::Sum::default(); STACK_SCRATCH];
            (kernels.accumulate_narrow)(
                block,
                period,
                &mut scratch[..period * per_column],
                &mut lanes[..period],
            );
            for (j, &lane) in lanes[..period].iter().enumerate() {
                sums[j % cols] = sums[j % cols].merge(lane);
            }
        }
        Some(period) => {
            let mut scratch = vec![T::ZERO; period * per_column];
            let mut lanes = vec![T::Sum::default(); period];
            (kernels.accumulate_narrow)(block, period, &mut scratch, &mut lanes);
            for (j, &lane) in lanes.iter().enumerate() {
                sums[j % cols] = sums[j % cols].merge(lane);
            }
        }
        None if cols * per_column <= STACK_SCRATCH => {
            let mut scratch = [T::ZERO; STACK_SCRATCH];
            (kernels.accumulate_columns)(block, cols, &mut scratch[..cols * per_column], sums);
        }
        None => {
            let mut scratch = vec![T::ZERO; cols * per_column];
            (kernels.accumulate_columns)(block, cols, &mut scratch, sums);
        }
    }
}

/// Adds the sum of squares of each run of `block` (`runs × run_len`) into `out`.
fn run_sums<T: Element>(
    block: &[T],
    runs: usize,
    run_len: usize,
    out: &mut [T::Sum],
    kernels: &Kernels<T>,
) {
    if runs == 1 {
        // One long run: fixed parts, summed apart and added in order.
        let parts = reduction_parts(run_len);
        if parts == 1 {
            out[0] = out[0].merge((kernels.sum_squares)(block));
            return;
        }
        let part_len = run_len.div_ceil(parts);
        let partials: Vec<T::Sum> = if use_threads(run_len) {
            block
                .par_chunks(part_len)
                .map(|part| (kernels.sum_squares)(part))
                .collect()
        } else {
            block
                .chunks(part_len)
                .map(|part| (kernels.sum_squares)(part))
                .collect()
        };
        let total = partials
            .iter()
            .fold(T::Sum::default(), |total, &part| total.merge(part));
        out[0] = out[0].merge(total);
    } else if use_threads(block.len()) {
        out.par_iter_mut()
            .zip(block.par_chunks(run_len))
            .for_each(|(sum, run)| *sum = sum.merge((kernels.sum_squares)(run)));
    } else {
        for (sum, run) in out.iter_mut().zip(block.chunks_exact(run_len)) {
            *sum = sum.merge((kernels.sum_squares)(run));
        }
    }
}

/// The scale pass: every element combined with its slice's value, skipping identity values.
/// With a `source`, each chunk is first copied from it (then scaled while still in cache).
fn scale<T: Element>(
    data: &mut [T],
    source: Option<&[T]>,
    plan: &Plan,
    values: &[T],
    kernels: &Kernels<T>,
    scale: Scale,
) {
    let group_len = plan.group_len();
    let per_group = plan.slices_per_group();
    if group_len == 0 {
        return;
    }
    for (group, block) in data.chunks_exact_mut(group_len).enumerate() {
        let source = source.map(|source| &source[group * group_len..(group + 1) * group_len]);
        let base = plan.group_base(group);
        let values = &values[base..base + per_group];
        let Some(first) = values.iter().position(|&v| !Scale::is_identity(v)) else {
            // Every slice of this group stays bit-identical: no write (a copy just copies).
            if let Some(source) = source {
                block.copy_from_slice(source);
            }
            continue;
        };
        match plan.inner {
            Inner::Columns { cols, .. } => {
                scale_columns(block, source, cols, values, first, kernels, scale)
            }
            Inner::Runs { run_len, .. } => {
                scale_runs(block, source, run_len, values, kernels, scale)
            }
        }
    }
}

fn scale_columns<T: Element>(
    block: &mut [T],
    source: Option<&[T]>,
    cols: usize,
    values: &[T],
    first: usize,
    kernels: &Kernels<T>,
    scale: Scale,
) {
    let last = values
        .iter()
        .rposition(|&v| !Scale::is_identity(v))
        .expect("first exists")
        + 1;
    if let Some(period) = narrow_period(cols) {
        let pattern: Vec<T> = (0..period).map(|j| values[j % cols]).collect();
        let kernel = match scale {
            Scale::Multiply => kernels.multiply_narrow,
            Scale::Divide => kernels.divide_narrow,
        };
        // Tasks cut at whole periods, so each starts at lane 0 of the pattern.
        let task = SCALE_TASK_ELEMENTS.div_ceil(period) * period;
        for_chunks_of(block, source, task, |_, chunk| kernel(chunk, &pattern));
        return;
    }
    let kernel = match scale {
        Scale::Multiply => kernels.multiply_columns,
        Scale::Divide => kernels.divide_columns,
    };
    let rows_per_task = SCALE_TASK_ELEMENTS.div_ceil(cols).max(1);
    if last - first == cols {
        for_chunks_of(block, source, rows_per_task * cols, |_, rows| {
            kernel(rows, cols, values)
        });
    } else {
        // Only a band of columns moves: write just that band of each row.
        let band = &values[first..last];
        for_chunks_of(block, source, rows_per_task * cols, |_, rows| {
            for row in rows.chunks_exact_mut(cols) {
                kernel(&mut row[first..last], last - first, band);
            }
        });
    }
}

fn scale_runs<T: Element>(
    block: &mut [T],
    source: Option<&[T]>,
    run_len: usize,
    values: &[T],
    kernels: &Kernels<T>,
    scale: Scale,
) {
    let kernel = match scale {
        Scale::Multiply => kernels.multiply_run,
        Scale::Divide => kernels.divide_run,
    };
    if values.len() == 1 {
        let value = values[0];
        for_chunks_of(block, source, SCALE_TASK_ELEMENTS, |_, chunk| {
            kernel(chunk, value)
        });
        return;
    }
    // Runs are cut at whole runs (a few runs per task), each combined with its own value.
    let runs_per_task = SCALE_TASK_ELEMENTS.div_ceil(run_len).max(1);
    for_chunks_of(block, source, runs_per_task * run_len, |task, runs| {
        for (run, &value) in runs
            .chunks_mut(run_len)
            .zip(&values[task * runs_per_task..])
        {
            if !Scale::is_identity(value) {
                kernel(run, value);
            }
        }
    });
}

/// Runs `f(task index, chunk)` over `data` in tasks of `task` elements, in parallel when large.
/// With a `source`, each task first copies its part of `source` into `data`.
fn for_chunks_of<T: Element>(
    data: &mut [T],
    source: Option<&[T]>,
    task: usize,
    f: impl Fn(usize, &mut [T]) + Sync + Send,
) {
    let task = task.max(1);
    let run = |(index, chunk): (usize, &mut [T])| {
        if let Some(source) = source {
            chunk.copy_from_slice(&source[index * task..index * task + chunk.len()]);
        }
        f(index, chunk)
    };
    if use_threads(data.len()) {
        data.par_chunks_mut(task).enumerate().for_each(run);
    } else {
        data.chunks_mut(task).enumerate().for_each(run);
    }
}
