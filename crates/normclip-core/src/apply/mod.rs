//! A call from start to end: validate, plan, norm pass, per-slice values, scale pass.
//!
//! Memory traffic is the cost that matters (the work is a few flops per element), so: one read pass
//! for the norms, one read-modify-write pass for the scale, and no write at all where a slice's
//! value leaves it bit-identical (MaxNorm in f32 for 2 <= n <= max_value, projection mode inside
//! the bounds).
//!
//! The story splits in three: [`norm_pass`] (sums of squares, exact norms where a sum is
//! suspect), the per-slice values (here: the rule's formula, and the wide path for values
//! beyond the element range), and [`scale_pass`] (every element times its slice's value).

mod norm_pass;
mod scale_pass;

use rayon::prelude::*;

use crate::constraint::{is_normal_value, Constraint, NormRule, Scale, SliceRule};
use crate::element::Element;
use crate::error::Result;
use crate::kernels::{Kernels, Tier};
use crate::layout::{check_length, norms_shape, Axes, Plan};
use crate::parallel::use_threads;
use crate::radial::RadialPlan;
use crate::wide::{Real, Scaled};
use norm_pass::{exact_norms, slice_norms};
use scale_pass::{for_chunks_of, scale, scale_wide, SCALE_TASK_ELEMENTS};

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
        prepared.run(data, Kernels::<T>::for_tier(tier)?);
        Ok(())
    }

    /// A constrained copy of `data`; `data` is left as it is.
    pub fn apply_copy<T: Element>(&self, data: &[T], shape: &[usize]) -> Result<Vec<T>> {
        let prepared = self.prepare(data.len(), shape)?;
        Ok(prepared.run_copy(data, Kernels::active()))
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
            Work::Norm { plan, rule } => run_norm_call(out, Some(data), (plan, rule), kernels),
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
            Work::Norm { plan, rule } => run_norm_call(data, None, (plan, rule), kernels),
        }
    }
}

/// Bytes of a band: whole slices read for their norms and then scaled while they are still in
/// L2 (a quarter of Zen 4's 1 MiB, an eighth of Sapphire Rapids' 2 MiB), with room for a copy's
/// output beside them.
const BAND_BYTES: usize = 256 << 10;

/// [`run_norm`] with its per-slice buffers, on the whole tensor or band by band.
///
/// Where every slice is one contiguous run (`axis = -1`: a row, an embedding) the slices are
/// independent problems in memory order, so a tensor larger than a band is walked as a sequence
/// of band-sized tensors: each band's norm pass brings it into L2 and its scale pass rewrites it
/// from there. From memory that is one read and one write per element (8 B) instead of two reads
/// and a write (12 B). Each slice is summed and scaled exactly as in one pass over the whole
/// tensor (a band is cut at whole slices, and a slice no longer than a band is summed by one
/// kernel call either way): the same bits. Large tensors give bands to threads whole, so a
/// thread's two passes never wait for the other's.
fn run_norm_call<T: Element>(
    data: &mut [T],
    source: Option<&[T]>,
    (plan, rule): (&Plan, &NormRule),
    kernels: &Kernels<T>,
) {
    // Small tensors keep their per-slice buffers on the stack: on a 16-element call two heap
    // allocations cost more than the arithmetic.
    const ON_STACK: usize = 64;
    let bands = plan.slices_per_band(BAND_BYTES / std::mem::size_of::<T>());
    if bands.is_none() && plan.slices <= ON_STACK {
        let mut sums = [T::Sum::default(); ON_STACK];
        let mut values = [T::ZERO; ON_STACK];
        let (sums, values) = (&mut sums[..plan.slices], &mut values[..plan.slices]);
        return run_norm(plan, rule, data, source, kernels, sums, values);
    }
    let mut sums = vec![T::Sum::default(); plan.slices];
    let mut values = vec![T::ZERO; plan.slices];
    let Some(per_band) = bands else {
        return run_norm(plan, rule, data, source, kernels, &mut sums, &mut values);
    };
    let band_len = per_band * plan.slice_len;
    let full = plan.band(per_band);
    let run = |index: usize, band: &mut [T], sums: &mut [T::Sum], values: &mut [T]| {
        let last;
        let plan = if band.len() == band_len {
            &full
        } else {
            last = plan.band(sums.len());
            &last
        };
        let source = source.map(|source| &source[index * band_len..][..band.len()]);
        run_norm(plan, rule, band, source, kernels, sums, values);
    };
    if use_threads(data.len()) {
        data.par_chunks_mut(band_len)
            .zip(sums.par_chunks_mut(per_band))
            .zip(values.par_chunks_mut(per_band))
            .enumerate()
            .for_each(|(index, ((band, sums), values))| run(index, band, sums, values));
    } else {
        data.chunks_mut(band_len)
            .zip(sums.chunks_mut(per_band))
            .zip(values.chunks_mut(per_band))
            .enumerate()
            .for_each(|(index, ((band, sums), values))| run(index, band, sums, values));
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
    // Two tight loops in the tier's kernels (norms, then values with the rule chosen once)
    // rather than one with every branch inside: on small tensors this per-slice work is a
    // third of a call.
    abnormal |= (kernels.slice_values)(&rule, values);
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
    norms_into(data, &plan, &mut values, Kernels::for_tier(tier)?);
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
