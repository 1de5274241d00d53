//! A call from start to end: validate, plan, norm pass, per-slice values, scale pass.
//!
//! Memory traffic is the cost that matters (the work is a few flops per element), so: one read pass
//! for the norms, one read-modify-write pass for the scale, and no write at all where a slice's
//! value leaves it bit-identical (MaxNorm in f32 for 2 <= n <= max_value, projection mode inside
//! the bounds).

use rayon::prelude::*;

use crate::constraint::{Constraint, SliceOp, SliceRule};
use crate::element::Element;
use crate::error::Result;
use crate::kernels::{Kernels, Tier};
use crate::layout::{check_length, norms_shape, Axes, Inner, Plan};
use crate::parallel::{reduction_parts, use_threads};
use crate::radial::RadialPlan;

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

/// A validated call, ready to run on a buffer of the checked length.
#[derive(Debug, Clone)]
pub enum Prepared {
    /// An empty tensor: nothing to read or write, and nothing is allocated (its other dimensions
    /// may multiply to more slices than fit in memory).
    Empty,
    Norm(Plan),
    NonNeg,
    Radial(RadialPlan),
}

impl Constraint {
    /// Checks `shape` and the buffer length against this constraint, touching no data. A batch
    /// prepares every item first, so a bad item leaves every buffer unchanged.
    pub fn prepare(&self, len: usize, shape: &[usize]) -> Result<Prepared> {
        check_length(len, shape)?;
        if len == 0 {
            // The same shape checks as a full tensor, then nothing to do.
            match self {
                Constraint::NonNeg => {}
                Constraint::Radial => {
                    RadialPlan::new(shape)?;
                }
                _ => Plan::check_axes(shape, &self.options().expect("norm constraint").axes)?,
            }
            return Ok(Prepared::Empty);
        }
        Ok(match self {
            Constraint::NonNeg => Prepared::NonNeg,
            Constraint::Radial => Prepared::Radial(RadialPlan::new(shape)?),
            _ => Prepared::Norm(Plan::new(
                shape,
                &self.options().expect("norm constraint").axes,
            )?),
        })
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
        let kernels = Kernels::<T>::for_tier(tier)?;
        self.run_prepared(&prepared, data, &kernels);
        Ok(())
    }

    /// A constrained copy of `data`; `data` is left as it is.
    pub fn apply_copy<T: Element>(&self, data: &[T], shape: &[usize]) -> Result<Vec<T>> {
        let prepared = self.prepare(data.len(), shape)?;
        Ok(self.run_prepared_copy(&prepared, data, &Kernels::for_tier(Tier::active())?))
    }

    /// [`Constraint::run_prepared`] into a new buffer, `data` left as it is. The norm constraints
    /// copy and scale cache-sized chunks in one go, so a copy costs about the traffic of an
    /// in-place call plus the write of the output, not a copy pass on top of it.
    pub fn run_prepared_copy<T: Element>(
        &self,
        prepared: &Prepared,
        data: &[T],
        kernels: &Kernels<T>,
    ) -> Vec<T> {
        // A zeroed allocation is fresh pages from the OS for large buffers: no extra pass.
        let mut out = vec![T::ZERO; data.len()];
        self.run_prepared_copy_into(prepared, data, &mut out, kernels);
        out
    }

    /// [`Constraint::run_prepared_copy`] into `out`, a buffer of `data.len()` elements the caller
    /// owns (every element is written).
    ///
    /// # Panics
    /// If `out.len() != data.len()`.
    pub fn run_prepared_copy_into<T: Element>(
        &self,
        prepared: &Prepared,
        data: &[T],
        out: &mut [T],
        kernels: &Kernels<T>,
    ) {
        assert_eq!(
            out.len(),
            data.len(),
            "a copy needs an output of the input's length"
        );
        match prepared {
            Prepared::Empty => {}
            Prepared::Norm(plan) => {
                let mut sums = vec![0.0f64; plan.slices];
                let mut values = vec![T::ZERO; plan.slices];
                self.run_norm(plan, out, Some(data), kernels, &mut sums, &mut values);
            }
            _ => {
                out.copy_from_slice(data);
                self.run_prepared(prepared, out, kernels);
            }
        }
    }

    /// Runs a call validated by [`Constraint::prepare`] for a buffer of `data.len()` elements.
    pub fn run_prepared<T: Element>(
        &self,
        prepared: &Prepared,
        data: &mut [T],
        kernels: &Kernels<T>,
    ) {
        match prepared {
            Prepared::Empty => {}
            Prepared::NonNeg => for_chunks_of(data, None, SCALE_TASK_ELEMENTS, |_, chunk| {
                (kernels.non_negative)(chunk)
            }),
            Prepared::Radial(plan) => plan.apply(data),
            Prepared::Norm(plan) => {
                // Small tensors keep their per-slice buffers on the stack: on a 16-element call
                // two heap allocations cost more than the arithmetic.
                const ON_STACK: usize = 64;
                if plan.slices <= ON_STACK {
                    let mut sums = [0.0f64; ON_STACK];
                    let mut values = [T::ZERO; ON_STACK];
                    self.run_norm(
                        plan,
                        data,
                        None,
                        kernels,
                        &mut sums[..plan.slices],
                        &mut values[..plan.slices],
                    );
                } else {
                    let mut sums = vec![0.0f64; plan.slices];
                    let mut values = vec![T::ZERO; plan.slices];
                    self.run_norm(plan, data, None, kernels, &mut sums, &mut values);
                }
            }
        }
    }

    /// The norm pass, the per-slice values and the scale pass. With a `source`, the norms are taken
    /// from it and `data` (of the same length) receives the constrained copy.
    fn run_norm<T: Element>(
        &self,
        plan: &Plan,
        data: &mut [T],
        source: Option<&[T]>,
        kernels: &Kernels<T>,
        sums: &mut [f64],
        values: &mut [T],
    ) {
        let rule = SliceRule::<T>::new(self).expect("norm constraint");
        slice_sums(
            source.unwrap_or(data),
            plan,
            kernels,
            sums,
            rule.needs_exact_small_norms(),
        );
        // Slices whose exact norm is beyond the element range get their value in f64, applied by
        // a scalar pass; the SIMD pass skips them (value ONE).
        // Two tight loops (norms, then values with the rule chosen once) rather than one with
        // every branch inside: on small tensors this per-slice work is a third of a call.
        let mut any_wide = false;
        for (value, &sum) in values.iter_mut().zip(sums.iter()) {
            *value = T::from_f64(sum.sqrt());
            any_wide |= value.is_infinite() & (sum != f64::INFINITY);
        }
        rule.values_from_norms(values);
        let mut wide: Vec<(usize, f64)> = Vec::new();
        if any_wide {
            for (slice, (value, &sum)) in values.iter_mut().zip(sums.iter()).enumerate() {
                let norm64 = sum.sqrt();
                if T::from_f64(norm64).is_infinite() && norm64.is_finite() {
                    wide.push((slice, rule.value_wide(norm64)));
                    *value = T::ONE;
                }
            }
        }
        let which = match rule.op() {
            SliceOp::Multiply => Which::Multiply,
            SliceOp::Divide => Which::Divide,
        };
        scale(data, source, plan, values, kernels, which);
        if !wide.is_empty() {
            scale_wide(data, plan, &wide, which);
        }
    }
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
    let mut sums = vec![0.0f64; plan.slices];
    slice_sums(data, plan, kernels, &mut sums, true);
    for (value, sum) in out.iter_mut().zip(sums) {
        *value = T::from_f64(sum.sqrt());
    }
}

/// Below this a float32 sum of squares may have lost bits to underflow (squares of |x| < 1e-19
/// are denormal or zero in f32): such slices are summed again with f64 squares.
const TINY_SUM: f64 = 8.077935669463161e-28; // 2^-90

/// Sums of squares of every slice, in f64, into `sums` (zeroed, one per slice). With
/// `recheck_zero`, zero sums are double-checked too (a tiny slice's squares may all underflow).
fn slice_sums<T: Element>(
    data: &[T],
    plan: &Plan,
    kernels: &Kernels<T>,
    sums: &mut [f64],
    recheck_zero: bool,
) {
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
    let suspect =
        |sum: f64| sum == f64::INFINITY || (sum < TINY_SUM && (sum > 0.0 || recheck_zero));
    if T::SQUARES_CAN_OVERFLOW && sums.iter().any(|&sum| suspect(sum)) {
        recheck_in_f64(data, plan, sums, suspect);
    }
}

/// Float32 squares overflowed (|x| > 1.8e19) or underflowed (|x| < 1e-19) in some slices. Keras'
/// float32 sum does the same: on overflow MaxNorm and UnitNorm then return zeros for the slice and
/// MinMaxNorm NaN (0 · inf); on underflow the norm loses bits. The exact norm is finite unless an
/// element is infinite, so we recompute those sums with f64 squares and scale by the true norm —
/// the one place where we deliberately differ from Keras.
fn recheck_in_f64<T: Element>(
    data: &[T],
    plan: &Plan,
    sums: &mut [f64],
    suspect: impl Fn(f64) -> bool,
) {
    let mut exact = vec![0.0f64; plan.slices];
    for_each_element(data.len(), plan, |index, slice| {
        exact[slice] += data[index].to_f64() * data[index].to_f64()
    });
    for (sum, exact) in sums.iter_mut().zip(exact) {
        if suspect(*sum) {
            *sum = exact;
        }
    }
}

/// Calls `f(index, slice)` for every element, in memory order: the slow, general walk.
fn for_each_element(len: usize, plan: &Plan, mut f: impl FnMut(usize, usize)) {
    let group_len = plan.group_len();
    if len == 0 || group_len == 0 {
        return;
    }
    for group in 0..plan.groups() {
        let base = plan.group_base(group);
        let start = group * group_len;
        match plan.inner {
            Inner::Columns { cols, .. } => {
                for offset in 0..group_len {
                    f(start + offset, base + offset % cols);
                }
            }
            Inner::Runs { run_len, .. } => {
                for offset in 0..group_len {
                    f(start + offset, base + offset / run_len);
                }
            }
        }
    }
}

/// Applies f64 values to the slices whose norm is beyond the element range, element by element.
fn scale_wide<T: Element>(data: &mut [T], plan: &Plan, wide: &[(usize, f64)], which: Which) {
    let mut by_slice = vec![None; plan.slices];
    for &(slice, value) in wide {
        by_slice[slice] = Some(value);
    }
    for_each_element(data.len(), plan, |index, slice| {
        if let Some(value) = by_slice[slice] {
            let x = data[index].to_f64();
            data[index] = T::from_f64(match which {
                Which::Multiply => x * value,
                Which::Divide => x / value,
            });
        }
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
    out: &mut [f64],
    kernels: &Kernels<T>,
) {
    let parts = reduction_parts(block.len());
    let period = narrow_period(cols);
    if parts == 1 {
        add_column_sums(block, cols, period, out, kernels);
        return;
    }
    let rows_per_part = rows.div_ceil(parts).max(1);
    let part_sums = |part: &[T]| -> Vec<f64> {
        let mut sums = vec![0.0f64; cols];
        add_column_sums(part, cols, period, &mut sums, kernels);
        sums
    };
    let partials: Vec<Vec<f64>> = if use_threads(block.len()) {
        block
            .par_chunks(rows_per_part * cols)
            .map(part_sums)
            .collect()
    } else {
        block.chunks(rows_per_part * cols).map(part_sums).collect()
    };
    for partial in partials {
        for (sum, part) in out.iter_mut().zip(partial) {
            *sum += part;
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
    sums: &mut [f64],
    kernels: &Kernels<T>,
) {
    match period {
        Some(period) => {
            let mut scratch = [T::ZERO; STACK_SCRATCH];
            let mut lanes = [0.0f64; STACK_SCRATCH];
            (kernels.accumulate_narrow)(
                block,
                period,
                &mut scratch[..period],
                &mut lanes[..period],
            );
            for (j, lane) in lanes[..period].iter().enumerate() {
                sums[j % cols] += lane;
            }
        }
        None if cols <= STACK_SCRATCH => {
            let mut scratch = [T::ZERO; STACK_SCRATCH];
            (kernels.accumulate_columns)(block, cols, &mut scratch[..cols], sums);
        }
        None => {
            let mut scratch = vec![T::ZERO; cols];
            (kernels.accumulate_columns)(block, cols, &mut scratch, sums);
        }
    }
}

/// Adds the sum of squares of each run of `block` (`runs × run_len`) into `out`.
fn run_sums<T: Element>(
    block: &[T],
    runs: usize,
    run_len: usize,
    out: &mut [f64],
    kernels: &Kernels<T>,
) {
    if runs == 1 {
        // One long run: fixed parts, summed apart and added in order.
        let parts = reduction_parts(run_len);
        if parts == 1 {
            out[0] += (kernels.sum_squares)(block);
            return;
        }
        let part_len = run_len.div_ceil(parts);
        let partials: Vec<f64> = if use_threads(run_len) {
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
        out[0] += partials.iter().fold(0.0, |total, part| total + part);
    } else if use_threads(block.len()) {
        out.par_iter_mut()
            .zip(block.par_chunks(run_len))
            .for_each(|(sum, run)| *sum += (kernels.sum_squares)(run));
    } else {
        for (sum, run) in out.iter_mut().zip(block.chunks_exact(run_len)) {
            *sum += (kernels.sum_squares)(run);
        }
    }
}

#[derive(Clone, Copy)]
enum Which {
    Multiply,
    Divide,
}

fn is_identity<T: Element>(value: T) -> bool {
    value == T::ONE
}

/// The scale pass: every element combined with its slice's value, skipping identity values.
/// The scale pass: every element combined with its slice's value, skipping identity values.
/// With a `source`, each chunk is first copied from it (then scaled while still in cache).
fn scale<T: Element>(
    data: &mut [T],
    source: Option<&[T]>,
    plan: &Plan,
    values: &[T],
    kernels: &Kernels<T>,
    which: Which,
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
        let Some(first) = values.iter().position(|&v| !is_identity(v)) else {
            // Every slice of this group stays bit-identical: no write (a copy just copies).
            if let Some(source) = source {
                block.copy_from_slice(source);
            }
            continue;
        };
        match plan.inner {
            Inner::Columns { cols, .. } => {
                scale_columns(block, source, cols, values, first, kernels, which)
            }
            Inner::Runs { run_len, .. } => {
                scale_runs(block, source, run_len, values, kernels, which)
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
    which: Which,
) {
    let last = values
        .iter()
        .rposition(|&v| !is_identity(v))
        .expect("first exists")
        + 1;
    if let Some(period) = narrow_period(cols) {
        let pattern: Vec<T> = (0..period).map(|j| values[j % cols]).collect();
        let kernel = match which {
            Which::Multiply => kernels.multiply_narrow,
            Which::Divide => kernels.divide_narrow,
        };
        // Tasks cut at whole periods, so each starts at lane 0 of the pattern.
        let task = SCALE_TASK_ELEMENTS.div_ceil(period) * period;
        for_chunks_of(block, source, task, |_, chunk| kernel(chunk, &pattern));
        return;
    }
    let kernel = match which {
        Which::Multiply => kernels.multiply_columns,
        Which::Divide => kernels.divide_columns,
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
    which: Which,
) {
    let kernel = match which {
        Which::Multiply => kernels.multiply_run,
        Which::Divide => kernels.divide_run,
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
            if !is_identity(value) {
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
