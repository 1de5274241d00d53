//! Jobs on whole files: inspecting tensors, and writing new files made of byte ranges copied from
//! the inputs, literal bytes and constrained tensors. Outputs are written completely and synced
//! before the caller renames them into place; on any error every output is removed.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use normclip_core::{Axes, Constraint};

use crate::dtype::DType;
use crate::error::{FileError, Result};
use crate::tensor::{Buffers, Files, Job, Outcome, Output, Segment, TensorRef, CHUNK_ELEMENTS};
use crate::zip::crc32_of;

/// What to do with one tensor.
#[derive(Debug, Clone)]
pub struct TensorTask {
    pub tensor: TensorRef,
    /// Axes of the reported norms when there is no norm constraint (None: no norms).
    pub axes: Option<Axes>,
    pub count_negatives: bool,
    pub constraint: Option<Constraint>,
    /// The stored type of the output (writes only; the input's type unless dequantizing).
    pub out_dtype: Option<DType>,
}

/// A part of an output file, in order.
#[derive(Debug, Clone)]
pub enum Piece {
    /// Bytes copied from an input file.
    Copy { file: usize, offset: u64, len: u64 },
    /// Literal bytes (a rewritten header, a new model.json).
    Bytes(Vec<u8>),
    /// Bytes `[start, start + len)` of tensor task `tensor`'s output.
    Tensor { tensor: usize, start: u64, len: u64 },
}

#[derive(Debug, Clone)]
pub struct OutputFile {
    /// Where to write (a temporary name beside the destination).
    pub path: String,
    /// The name to report problems under (the destination).
    pub display: String,
    pub pieces: Vec<Piece>,
}

/// Recompute a stored zip entry's CRC-32 over `[start, start + len)` of output `output` and write
/// it at `positions` (little-endian).
#[derive(Debug, Clone)]
pub struct CrcPatch {
    pub output: usize,
    pub start: u64,
    pub len: u64,
    pub positions: Vec<u64>,
}

#[derive(Debug, Clone)]
pub struct WritePlan {
    pub inputs: Vec<String>,
    pub outputs: Vec<OutputFile>,
    pub tensors: Vec<TensorTask>,
    pub crc_patches: Vec<CrcPatch>,
}

/// Norms and counts of every tensor (no output).
pub fn inspect(
    inputs: &[String],
    tasks: &[TensorTask],
    progress: &AtomicU64,
) -> Result<Vec<Outcome>> {
    let files = Files::open_read(inputs)?;
    run_tasks(tasks.len(), |index, buffers| {
        let task = &tasks[index];
        Job {
            files: &files,
            tensor: &task.tensor,
            axes: task.axes.clone(),
            count_negatives: task.count_negatives,
            output: None,
            progress,
            chunk_elements: CHUNK_ELEMENTS,
        }
        .run_in(buffers)
    })
}

/// Runs tasks `0..count` on up to [`normclip_core::thread_count`] threads (each with its own
/// [`Buffers`]), tensors taken in order as threads come free: while one thread waits on a read
/// or a write, the other computes. Each task's work is the same whatever thread runs it, so
/// outcomes are bit-identical to one thread's. The result is what a loop in order would give:
/// the outcomes, or the error of the first task (by index) that fails; no task after a failed
/// one is started.
fn run_tasks<F>(count: usize, task: F) -> Result<Vec<Outcome>>
where
    F: Fn(usize, &mut Buffers) -> Result<Outcome> + Sync,
{
    let threads = normclip_core::thread_count().min(count);
    if threads <= 1 {
        let mut buffers = Buffers::default();
        return (0..count).map(|i| task(i, &mut buffers)).collect();
    }
    let next = AtomicUsize::new(0);
    let failed = AtomicUsize::new(usize::MAX);
    let work = || {
        let mut buffers = Buffers::default();
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            // Tasks are taken in order, so every task before a failed one has been taken.
            if i >= count || i > failed.load(Ordering::Relaxed) {
                return done;
            }
            let result = task(i, &mut buffers);
            if result.is_err() {
                failed.fetch_min(i, Ordering::Relaxed);
            }
            done.push((i, result));
        }
    };
    let mut results: Vec<Option<Result<Outcome>>> = (0..count).map(|_| None).collect();
    std::thread::scope(|scope| {
        let others: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut all = work();
        for other in others {
            // A panic in a task goes on in this thread, as it would have without threads.
            all.extend(
                other
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
            );
        }
        for (i, result) in all {
            results[i] = Some(result);
        }
    });
    let mut outcomes = Vec::with_capacity(count);
    for result in results {
        match result {
            Some(result) => outcomes.push(result?),
            // Only tasks after a failed one are not run, and the loop returned at that one.
            None => break,
        }
    }
    Ok(outcomes)
}

/// Writes every output of `plan`; returns each tensor task's outcome. On error, no output is left.
pub fn write(plan: &WritePlan, progress: &AtomicU64) -> Result<Vec<Outcome>> {
    let mut created: Vec<String> = Vec::new();
    let result = write_inner(plan, progress, &mut created);
    if result.is_err() {
        for path in &created {
            let _ = std::fs::remove_file(path);
        }
    }
    result
}

fn write_inner(
    plan: &WritePlan,
    progress: &AtomicU64,
    created: &mut Vec<String>,
) -> Result<Vec<Outcome>> {
    let inputs = Files::open_read(&plan.inputs)?;
    let mut handles = Vec::with_capacity(plan.outputs.len());
    for output in &plan.outputs {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&output.path)
            .map_err(|e| FileError::io(&output.display, "cannot create the output", &e))?;
        created.push(output.path.clone());
        handles.push(file);
    }
    let outputs = Files {
        files: handles,
        paths: plan.outputs.iter().map(|o| o.display.clone()).collect(),
    };
    // Where each tensor's output bytes go: (start within the tensor's output, segment).
    let mut placements: Vec<Vec<(u64, Segment)>> = vec![Vec::new(); plan.tensors.len()];
    for (index, output) in plan.outputs.iter().enumerate() {
        let mut file = &outputs.files[index];
        let mut at = 0u64;
        for piece in &output.pieces {
            match piece {
                Piece::Copy {
                    file: input,
                    offset,
                    len,
                } => {
                    copy_range(&inputs, *input, *offset, *len, &mut file, &output.display)?;
                    crate::tensor::start_writeback(&outputs.files[index], at, *len);
                    progress.fetch_add(*len, Ordering::Relaxed);
                    at += len;
                }
                Piece::Bytes(bytes) => {
                    file.write_all(bytes)
                        .map_err(|e| FileError::io(&output.display, "cannot write", &e))?;
                    at += bytes.len() as u64;
                }
                Piece::Tensor { tensor, start, len } => {
                    let slot = placements.get_mut(*tensor).ok_or_else(|| {
                        FileError::request(
                            &output.display,
                            format!("piece names tensor {tensor} of {}", plan.tensors.len()),
                        )
                    })?;
                    slot.push((
                        *start,
                        Segment {
                            file: index,
                            offset: at,
                            len: *len,
                        },
                    ));
                    file.seek(SeekFrom::Current(*len as i64))
                        .map_err(|e| FileError::io(&output.display, "cannot seek", &e))?;
                    at += len;
                }
            }
        }
        outputs.files[index]
            .set_len(at)
            .map_err(|e| FileError::io(&output.display, "cannot write", &e))?;
    }
    // Each task's output segments; a task whose pieces are wrong ends the list, and its error is
    // returned once the tasks before it have run (as a loop doing both in turn would).
    let mut segments: Vec<Vec<Segment>> = Vec::with_capacity(plan.tensors.len());
    let mut misplaced = None;
    'tasks: for (task, mut placed) in plan.tensors.iter().zip(placements) {
        placed.sort_by_key(|p| p.0);
        let mut next = 0u64;
        for (start, segment) in &placed {
            if *start != next {
                misplaced = Some(FileError::request(
                    plan.outputs
                        .first()
                        .map(|o| o.display.clone())
                        .unwrap_or_default(),
                    format!(
                        "tensor {:?}: output pieces do not cover it in order",
                        task.tensor.name
                    ),
                ));
                break 'tasks;
            }
            next += segment.len;
        }
        segments.push(placed.into_iter().map(|p| p.1).collect());
    }
    let outcomes = run_tasks(segments.len(), |index, buffers| {
        let task = &plan.tensors[index];
        let output = (!segments[index].is_empty()).then(|| Output {
            files: &outputs,
            segments: segments[index].clone(),
            dtype: task
                .out_dtype
                .clone()
                .unwrap_or_else(|| task.tensor.dtype.clone()),
            constraint: task.constraint.as_ref(),
        });
        Job {
            files: &inputs,
            tensor: &task.tensor,
            axes: task.axes.clone(),
            count_negatives: task.count_negatives,
            output,
            progress,
            chunk_elements: CHUNK_ELEMENTS,
        }
        .run_in(buffers)
    })?;
    if let Some(error) = misplaced {
        return Err(error);
    }
    for patch in &plan.crc_patches {
        let (file, display) = (&outputs.files[patch.output], &outputs.paths[patch.output]);
        let crc = crc32_of(file, display, patch.start, patch.len)?;
        for &position in &patch.positions {
            std::os::unix::fs::FileExt::write_all_at(file, &crc.to_le_bytes(), position)
                .map_err(|e| FileError::io(display, "cannot write", &e))?;
        }
    }
    for (file, display) in outputs.files.iter().zip(&outputs.paths) {
        file.sync_all()
            .map_err(|e| FileError::io(display, "cannot write (fsync)", &e))?;
    }
    Ok(outcomes)
}

/// `len` bytes of input `input` from `offset` appended to `out`, in the kernel where it can
/// (`std::io::copy` between files uses copy_file_range / sendfile on Linux).
fn copy_range(
    inputs: &Files,
    input: usize,
    offset: u64,
    len: u64,
    out: &mut &File,
    display: &str,
) -> Result<()> {
    let file = inputs.files.get(input).ok_or_else(|| {
        FileError::request(
            display,
            format!("piece names input {input} of {}", inputs.files.len()),
        )
    })?;
    let path = &inputs.paths[input];
    let mut source = file;
    source
        .seek(SeekFrom::Start(offset))
        .map_err(|e| FileError::io(path, "cannot seek", &e))?;
    let copied = std::io::copy(&mut std::io::Read::take(source, len), out).map_err(|e| {
        // The read side rarely fails; a failed write (full disk, quota) is the usual cause.
        FileError::io(display, "cannot write", &e)
    })?;
    if copied != len {
        return Err(FileError::invalid(
            path,
            format!("truncated: expected {len} bytes at offset {offset}, found {copied}"),
        ));
    }
    Ok(())
}
