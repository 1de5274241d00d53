//! The scale pass: every element combined with its slice's value (a factor or a divisor), in
//! tasks cut by size only; slices whose value is exactly 1 are not written.

use rayon::prelude::*;

use crate::constraint::Scale;
use crate::element::Element;
use crate::kernels::Kernels;
use crate::layout::{Inner, Plan};
use crate::parallel::use_threads;
use crate::wide::Scaled;

use super::norm_pass::narrow_period;

/// Elements per task of a parallel scale pass.
pub(super) const SCALE_TASK_ELEMENTS: usize = 1 << 16;
/// Elements per task of a copy (the task's part of the source copied, then scaled): few enough
/// (16 KiB of f32) that the scale re-reads the copy from L1 rather than L2.
///
/// Kernels that read the source and write the output in one pass were tried and not kept (Intel
/// Xeon model 207, bench/compare-builds.ts and bench/tensor-paths.ts, into a warm output):
/// [4096,4096] over axis -1 1.19x slower, [16M] and Dense even, [100000,10] 0.95x; over rows of
/// columns 0.97-1.26x. The output's writes are the cost either way, and the copy's memcpy
/// writes them at least as cheaply as vector stores do.
const COPY_TASK_ELEMENTS: usize = 1 << 12;

/// Elements per task: a copy's tasks stay in L1 between their two steps.
fn task_elements<T>(source: Option<&[T]>) -> usize {
    if source.is_some() {
        COPY_TASK_ELEMENTS
    } else {
        SCALE_TASK_ELEMENTS
    }
}

/// The scale pass: every element combined with its slice's value, skipping identity values.
/// With a `source`, each chunk is first copied from it (then scaled while still in cache).
pub(super) fn scale<T: Element>(
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
        let task = task_elements(source).div_ceil(period) * period;
        for_chunks_of(block, source, task, |_, chunk| kernel(chunk, &pattern));
        return;
    }
    let kernel = match scale {
        Scale::Multiply => kernels.multiply_columns,
        Scale::Divide => kernels.divide_columns,
    };
    let rows_per_task = task_elements(source).div_ceil(cols).max(1);
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
        for_chunks_of(block, source, task_elements(source), |_, chunk| {
            kernel(chunk, value)
        });
        return;
    }
    // Runs are cut at whole runs (a few runs per task), each combined with its own value.
    let runs_per_task = task_elements(source).div_ceil(run_len).max(1);
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
pub(super) fn for_chunks_of<T: Element>(
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
pub(super) fn scale_wide<T: Element>(
    data: &mut [T],
    plan: &Plan,
    wide: &[(usize, Scaled)],
    scale: Scale,
) {
    let listed: Vec<usize> = wide.iter().map(|&(s, _)| s).collect();
    map_slices(data, plan, &listed, |slot, x| match scale {
        Scale::Multiply => x.mul_wide(wide[slot].1),
        Scale::Divide => x.div_wide(wide[slot].1),
    });
}
