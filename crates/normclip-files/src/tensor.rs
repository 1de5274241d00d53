//! A tensor stored in one or more byte ranges of files, and its norms and constraint computed
//! chunk by chunk, so memory stays bounded whatever the tensor's size.
//!
//! Slices (the units a norm is taken over) are independent, so any cut that keeps slices whole is
//! exact: every chunk goes through `normclip-core` as a tensor of its own. Only when the leading
//! axis is reduced (a Dense kernel `[in, units]` along axis 0) does every slice run through every
//! chunk; then the sums of squares are gathered in a first pass, and in the second each chunk is
//! handed to the core with one extra row along axis 0 that carries, for each slice, the square
//! root of the rest of its sum. The core thus sees each slice's full norm and applies its own
//! formula to it — the formula stays in one place, the core.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicU64, Ordering};

use normclip_core::apply::norms;
use normclip_core::{Axes, Constraint};

use crate::dtype::{decode_into, encode_from, Compute, DType};
use crate::error::{FileError, Result};

/// Elements per chunk (16 MiB of float32): large enough for full-speed sequential I/O, small
/// enough to stay in the last-level cache and far below the memory bound.
pub const CHUNK_ELEMENTS: usize = 4 << 20;

/// A byte range of one of the files of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    pub file: usize,
    pub offset: u64,
    pub len: u64,
}

/// A tensor: its elements, row-major, are the concatenation of its segments.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    pub name: String,
    pub dtype: DType,
    pub shape: Vec<usize>,
    pub segments: Vec<Segment>,
}

impl TensorRef {
    pub fn elements(&self) -> Option<usize> {
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
    }

    pub fn byte_len(&self) -> Option<u64> {
        (self.elements()? as u64).checked_mul(self.dtype.size() as u64)
    }
}

/// Open files with the names to report them by.
pub struct Files {
    pub files: Vec<File>,
    pub paths: Vec<String>,
}

impl Files {
    pub fn open_read(paths: &[String]) -> Result<Files> {
        let files = paths
            .iter()
            .map(|p| File::open(p).map_err(|e| FileError::io(p, "cannot open", &e)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Files {
            files,
            paths: paths.to_vec(),
        })
    }

    fn path(&self, file: usize) -> &str {
        self.paths.get(file).map(String::as_str).unwrap_or("?")
    }

    fn check(&self, segment: &Segment) -> Result<&File> {
        self.files.get(segment.file).ok_or_else(|| {
            FileError::request(
                "?",
                format!(
                    "segment names file {} of {}",
                    segment.file,
                    self.files.len()
                ),
            )
        })
    }
}

/// Byte ranges `[start, start + len)` of a tensor's byte stream, mapped onto its segments.
fn for_segments(
    segments: &[Segment],
    mut start: u64,
    len: usize,
    mut f: impl FnMut(&Segment, u64, std::ops::Range<usize>) -> Result<()>,
) -> Result<()> {
    let mut done = 0usize;
    for segment in segments {
        if done == len {
            break;
        }
        if start >= segment.len {
            start -= segment.len;
            continue;
        }
        let take = ((segment.len - start) as usize).min(len - done);
        f(segment, segment.offset + start, done..done + take)?;
        done += take;
        start = 0;
    }
    debug_assert_eq!(done, len, "segments were checked to cover the tensor");
    Ok(())
}

fn read_bytes(files: &Files, segments: &[Segment], start: u64, buf: &mut [u8]) -> Result<()> {
    let len = buf.len();
    for_segments(segments, start, len, |segment, at, range| {
        let file = files.check(segment)?;
        file.read_exact_at(&mut buf[range.clone()], at)
            .map_err(|e| {
                let path = files.path(segment.file);
                if e.kind() == std::io::ErrorKind::UnexpectedEof {
                    FileError::invalid(
                        path,
                        format!("truncated: expected {} bytes at offset {at}", range.len()),
                    )
                } else {
                    FileError::io(path, "cannot read", &e)
                }
            })
    })
}

/// Bytes per write call: the kernel copies each call's bytes into the page cache; calls of 1 MiB
/// keep the source in L2 while it does (16 MiB calls made writing the slowest part of apply).
const WRITE_CALL: usize = 1 << 20;

fn write_bytes(files: &Files, segments: &[Segment], start: u64, buf: &[u8]) -> Result<()> {
    for_segments(segments, start, buf.len(), |segment, at, range| {
        let file = files.check(segment)?;
        let len = range.len();
        for (i, piece) in buf[range].chunks(WRITE_CALL).enumerate() {
            file.write_all_at(piece, at + (i * WRITE_CALL) as u64)
                .map_err(|e| FileError::io(files.path(segment.file), "cannot write", &e))?;
        }
        start_writeback(file, at, len as u64);
        Ok(())
    })
}

/// Starts writing `[offset, offset + len)` back to disk without waiting (Linux'
/// `sync_file_range(WRITE)`), so the fsync before the rename finds most of the file on disk
/// already instead of the whole of it. Only a hint: errors surface at the fsync.
pub(crate) fn start_writeback(file: &File, offset: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: a plain system call on an open descriptor this function borrows; it reads
        // no memory of ours.
        unsafe {
            libc::sync_file_range(
                file.as_raw_fd(),
                offset as libc::off64_t,
                len as libc::off64_t,
                libc::SYNC_FILE_RANGE_WRITE,
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, offset, len);
}

/// What to compute for a tensor besides its norms.
#[derive(Debug, Clone, Default)]
pub struct Counts {
    pub nan: u64,
    pub inf: u64,
    pub negative: u64,
}

/// Norms (and counts) of one tensor; `after` only when a constraint was applied.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// One norm per slice along the requested axes, in row-major order of the kept axes; empty
    /// when the tensor has no float type or the constraint takes no norm.
    pub norms: Vec<f64>,
    /// Keepdims shape of `norms`.
    pub norms_shape: Vec<usize>,
    pub norms_after: Vec<f64>,
    pub counts: Counts,
    pub counts_after: Counts,
}

/// Where a constrained tensor goes.
pub struct Output<'a> {
    pub files: &'a Files,
    pub segments: Vec<Segment>,
    pub dtype: DType,
    pub constraint: Option<&'a Constraint>,
}

/// Checks that `segments` hold exactly the tensor's bytes.
pub fn check_segments(tensor: &TensorRef, segments: &[Segment], path: &str) -> Result<u64> {
    let Some(bytes) = tensor.byte_len() else {
        return Err(FileError::invalid(
            path,
            format!(
                "tensor {:?}: shape {:?} overflows",
                tensor.name, tensor.shape
            ),
        ));
    };
    let mut total = 0u64;
    for segment in segments {
        total = total
            .checked_add(segment.len)
            .ok_or_else(|| FileError::invalid(path, "segment lengths overflow"))?;
    }
    if total != bytes {
        return Err(FileError::invalid(
            path,
            format!(
                "tensor {:?}: shape {:?} of {} needs {bytes} bytes, the file holds {total}",
                tensor.name,
                tensor.shape,
                tensor.dtype.name()
            ),
        ));
    }
    Ok(bytes)
}

/// The tensor's dims with size-1 axes dropped and neighbours of the same role merged: the same
/// slices, in the same order, as the core's own plan.
fn canonical(shape: &[usize], axes: &Axes) -> std::result::Result<Vec<(usize, bool)>, String> {
    let mask = axes.reduced_mask(shape.len()).map_err(|e| e.message)?;
    let mut dims: Vec<(usize, bool)> = Vec::new();
    for (axis, &dim) in shape.iter().enumerate() {
        let reduced = mask >> axis & 1 == 1;
        if dim == 1 {
            continue;
        }
        match dims.last_mut() {
            Some(last) if last.1 == reduced => last.0 *= dim,
            _ => dims.push((dim, reduced)),
        }
    }
    Ok(dims)
}

fn dims_axes(dims: &[(usize, bool)]) -> (Vec<usize>, Axes) {
    let shape = dims.iter().map(|d| d.0).collect();
    let axes = dims
        .iter()
        .enumerate()
        .filter(|(_, d)| d.1)
        .map(|(i, _)| i as i64)
        .collect();
    (shape, Axes::List(axes))
}

fn count<T: Compute>(values: &[T], counts: &mut Counts, negatives: bool) {
    for &v in values {
        counts.nan += v.is_nan() as u64;
        counts.inf += v.is_infinite() as u64;
        if negatives {
            counts.negative += (v < T::ZERO) as u64;
        }
    }
}

/// A tensor's work: stats along `axes` and, with an output, the constraint applied.
pub struct Job<'a> {
    pub files: &'a Files,
    pub tensor: &'a TensorRef,
    /// Axes of the reported norms (the constraint's for a norm constraint); None: no norms.
    pub axes: Option<Axes>,
    pub count_negatives: bool,
    pub output: Option<Output<'a>>,
    pub progress: &'a AtomicU64,
    pub chunk_elements: usize,
}

impl Job<'_> {
    fn path(&self) -> &str {
        self.tensor
            .segments
            .first()
            .map(|s| self.files.path(s.file))
            .unwrap_or("?")
    }

    fn fail(&self, message: impl std::fmt::Display) -> FileError {
        FileError::request(
            self.path(),
            format!("tensor {:?}: {message}", self.tensor.name),
        )
    }

    pub fn run(&self) -> Result<Outcome> {
        self.run_in(&mut Buffers::default())
    }

    /// [`Job::run`] with `buffers` kept from an earlier job (of the same thread): a tensor then
    /// reuses memory already faulted in instead of zeroing fresh pages (16 MiB and more a tensor,
    /// ~5 ms each; measured on Intel Xeon, Sapphire Rapids-class, KVM).
    pub fn run_in(&self, buffers: &mut Buffers) -> Result<Outcome> {
        let path = self.path().to_string();
        check_segments(self.tensor, &self.tensor.segments, &path)?;
        if let Some(output) = &self.output {
            if !output.dtype.is_writable() {
                return Err(self.fail(format!("cannot write {}", output.dtype.name())));
            }
            let as_output = TensorRef {
                dtype: output.dtype.clone(),
                ..self.tensor.clone()
            };
            check_segments(&as_output, &output.segments, &path)?;
        }
        if !self.tensor.dtype.is_float() {
            if self.output.as_ref().is_some_and(|o| o.constraint.is_some()) {
                return Err(FileError::unsupported(
                    &path,
                    format!(
                        "tensor {:?}: a constraint needs a floating-point tensor, got {}",
                        self.tensor.name,
                        self.tensor.dtype.name()
                    ),
                ));
            }
            return Ok(Outcome::default());
        }
        if self.tensor.dtype.computes_in_f64() {
            self.run_typed::<f64>(buffers)
        } else {
            self.run_typed::<f32>(buffers)
        }
    }

    fn run_typed<T: Buffered>(&self, buffers: &mut Buffers) -> Result<Outcome> {
        let constraint = self.output.as_ref().and_then(|o| o.constraint);
        let elements = self.tensor.elements().expect("checked");
        let mut outcome = Outcome::default();
        // Constraints without a norm (NonNeg, RadialConstraint) and plain conversions run on
        // element chunks (NonNeg) or the whole tensor (RadialConstraint needs its whole kernel).
        let norm_axes = match constraint {
            Some(c) => c.options().map(|o| o.axes.clone()),
            None => self.axes.clone(),
        };
        let dims = match &norm_axes {
            Some(axes) => Some(canonical(&self.tensor.shape, axes).map_err(|m| self.fail(m))?),
            None => None,
        };
        if let Some(axes) = &norm_axes {
            let mask = axes
                .reduced_mask(self.tensor.shape.len())
                .map_err(|e| self.fail(e.message))?;
            outcome.norms_shape = normclip_core::layout::norms_shape(&self.tensor.shape, mask);
        }
        let mut state = State::<T>::new(self.chunk_elements, buffers);
        match (&dims, constraint) {
            (_, Some(Constraint::Radial)) => {
                self.whole(&mut state, &mut outcome, constraint)?;
            }
            (Some(dims), _) => {
                let (shape, axes) = dims_axes(dims);
                if elements <= self.chunk_elements || shape.is_empty() {
                    self.norm_block(&mut state, &mut outcome, 0, &shape, &axes, constraint)?;
                } else {
                    self.blocks(&mut state, &mut outcome, 0, dims, constraint)?;
                }
            }
            (None, _) => {
                // No norms: elements in flat chunks (NonNeg, a conversion, counts only).
                let mut start = 0usize;
                while start < elements {
                    let n = self.chunk_elements.min(elements - start);
                    let values = state.read(self, start, n)?;
                    count(values, &mut outcome.counts, self.count_negatives);
                    if let Some(c) = constraint {
                        c.apply_in_place(values, &[n])
                            .map_err(|e| self.fail(e.message))?;
                        count(values, &mut outcome.counts_after, self.count_negatives);
                    }
                    state.write(self, start, n)?;
                    start += n;
                }
            }
        }
        Ok(outcome)
    }

    /// The whole tensor at once (RadialConstraint).
    fn whole<T: Buffered>(
        &self,
        state: &mut State<'_, T>,
        outcome: &mut Outcome,
        constraint: Option<&Constraint>,
    ) -> Result<()> {
        let elements = self.tensor.elements().expect("checked");
        state.limit = state.limit.max(elements);
        let values = state.read(self, 0, elements)?;
        count(values, &mut outcome.counts, self.count_negatives);
        if let Some(c) = constraint {
            c.apply_in_place(values, &self.tensor.shape)
                .map_err(|e| self.fail(e.message))?;
            count(values, &mut outcome.counts_after, self.count_negatives);
        }
        state.write(self, 0, elements)
    }

    /// Tensor (or sub-tensor at element `start`) of canonical `dims` larger than a chunk.
    fn blocks<T: Buffered>(
        &self,
        state: &mut State<'_, T>,
        outcome: &mut Outcome,
        start: usize,
        dims: &[(usize, bool)],
        constraint: Option<&Constraint>,
    ) -> Result<()> {
        let (rows, leading_reduced) = dims[0];
        let row: usize = dims[1..].iter().map(|d| d.0).product();
        if rows * row <= self.chunk_elements {
            let (shape, axes) = dims_axes(dims);
            return self.norm_block(state, outcome, start, &shape, &axes, constraint);
        }
        if !leading_reduced {
            if row > self.chunk_elements {
                // Each row is a tensor of its own (its slices never cross into the next row).
                for r in 0..rows {
                    self.blocks(state, outcome, start + r * row, &dims[1..], constraint)?;
                }
                return Ok(());
            }
            let per_chunk = (self.chunk_elements / row).max(1);
            let mut r = 0;
            while r < rows {
                let n = per_chunk.min(rows - r);
                let mut sub = dims.to_vec();
                sub[0].0 = n;
                let (shape, axes) = dims_axes(&sub);
                self.norm_block(state, outcome, start + r * row, &shape, &axes, constraint)?;
                r += n;
            }
            return Ok(());
        }
        self.two_pass(state, outcome, start, dims, constraint)
    }

    /// A block small enough for one call of the core: norms, the constraint, norms again.
    fn norm_block<T: Buffered>(
        &self,
        state: &mut State<'_, T>,
        outcome: &mut Outcome,
        start: usize,
        shape: &[usize],
        axes: &Axes,
        constraint: Option<&Constraint>,
    ) -> Result<()> {
        let n: usize = shape.iter().product();
        if constraint.is_none() && self.output.is_none() {
            let values = state.look(self, start, n)?;
            let before = norms(values, shape, axes).map_err(|e| self.fail(e.message))?;
            if before.values.iter().any(|v| !v.to_f64().is_finite()) || self.count_negatives {
                count(values, &mut outcome.counts, self.count_negatives);
            }
            outcome
                .norms
                .extend(before.values.iter().map(|v| v.to_f64()));
            return Ok(());
        }
        let values = state.read(self, start, n)?;
        let before = norms(values, shape, axes).map_err(|e| self.fail(e.message))?;
        let nonfinite = before.values.iter().any(|v| !v.to_f64().is_finite());
        if nonfinite || self.count_negatives {
            count(values, &mut outcome.counts, self.count_negatives);
        }
        outcome
            .norms
            .extend(before.values.iter().map(|v| v.to_f64()));
        if let Some(c) = constraint {
            with_axes(c, axes)
                .apply_in_place(values, shape)
                .map_err(|e| self.fail(e.message))?;
            let after = norms(values, shape, axes).map_err(|e| self.fail(e.message))?;
            if after.values.iter().any(|v| !v.to_f64().is_finite()) || self.count_negatives {
                count(values, &mut outcome.counts_after, self.count_negatives);
            }
            outcome
                .norms_after
                .extend(after.values.iter().map(|v| v.to_f64()));
        }
        state.write(self, start, n)
    }

    /// Leading axis reduced and the tensor larger than a chunk: sums of squares first, then each
    /// chunk through the core with an extra row carrying the rest of each slice's sum.
    fn two_pass<T: Buffered>(
        &self,
        state: &mut State<'_, T>,
        outcome: &mut Outcome,
        start: usize,
        dims: &[(usize, bool)],
        constraint: Option<&Constraint>,
    ) -> Result<()> {
        let rows = dims[0].0;
        let row: usize = dims[1..].iter().map(|d| d.0).product();
        let per_chunk = (self.chunk_elements / row).max(1);
        let (_, axes) = dims_axes(dims);
        let chunk_shape = |n: usize| -> Vec<usize> {
            let mut shape = vec![n];
            shape.extend(dims[1..].iter().map(|d| d.0));
            shape
        };
        // Pass 1: the sums of squares of every slice, gathered in f64 over the chunks. Each
        // chunk's own sums are kept for pass 2 when they take little memory.
        let chunks = rows.div_ceil(per_chunk);
        let slices: usize = dims[1..].iter().filter(|d| !d.1).map(|d| d.0).product();
        let keep = constraint.is_some() && chunks.saturating_mul(slices) <= 1 << 22;
        let mut kept: Vec<Vec<f64>> = Vec::new();
        let mut totals: Vec<f64> = vec![0.0; slices];
        let mut chunk: Vec<f64> = Vec::new();
        let mut r = 0;
        while r < rows {
            let n = per_chunk.min(rows - r);
            if constraint.is_some() && r + n == rows {
                // Room for pass 2's extra row after the last chunk, which stays in the buffer.
                state.ensure(n * row + row);
            }
            let values = state.look(self, start + r * row, n * row)?;
            chunk.clear();
            let nonfinite =
                chunk_sums(values, &chunk_shape(n), &axes, &mut chunk).map_err(|m| self.fail(m))?;
            if nonfinite || self.count_negatives {
                count(values, &mut outcome.counts, self.count_negatives);
            }
            for (total, part) in totals.iter_mut().zip(&chunk) {
                *total += part;
            }
            if keep {
                kept.push(chunk.clone());
            }
            r += n;
        }
        outcome.norms.extend(totals.iter().map(|s| s.sqrt()));
        let Some(c) = constraint else { return Ok(()) };
        let c = with_axes(c, &axes);
        // The extra row: one element per slice (at reduced coordinates 0) holds sqrt(rest).
        let reps = representatives(&dims[1..]);
        debug_assert_eq!(reps.len(), totals.len());
        let mut after: Vec<f64> = Vec::new();
        // The last chunk is still in the buffer from pass 1, so it goes first instead of being
        // read again; its sums are added to the others' last, so `after` is summed in chunk
        // order as a pass in order would (and 0 + x = x: the same bits). Written ranges and
        // counts do not depend on the order.
        let last = chunks - 1;
        let mut after_last: Vec<f64> = Vec::new();
        for index in std::iter::once(last).chain(0..last) {
            let r = index * per_chunk;
            let n = per_chunk.min(rows - r);
            let shape = chunk_shape(n + 1);
            state.ensure(n * row + row);
            let values = if index == last {
                let size = self.tensor.dtype.size() as u64;
                self.progress
                    .fetch_add((n * row) as u64 * size, Ordering::Relaxed);
                &mut state.values[..n * row]
            } else {
                state.read(self, start + r * row, n * row)?
            };
            if keep {
                std::mem::swap(&mut chunk, &mut kept[index]);
            } else {
                chunk.clear();
                chunk_sums(values, &chunk_shape(n), &axes, &mut chunk).map_err(|m| self.fail(m))?;
            }
            let buffer = &mut state.values[..(n + 1) * row];
            buffer[n * row..].fill(T::ZERO);
            for (slice, &at) in reps.iter().enumerate() {
                let rest = totals[slice] - chunk[slice];
                // NaN and inf totals carry over as they are, so the core sees what a whole-tensor
                // call would (NaN slices, zero factors for infinite norms).
                let rest = if rest.is_nan() || rest == f64::INFINITY {
                    totals[slice]
                } else {
                    rest.max(0.0)
                };
                buffer[n * row + at] = T::from_f64(rest.sqrt());
            }
            c.apply_in_place(buffer, &shape)
                .map_err(|e| self.fail(e.message))?;
            let values = &mut state.values[..n * row];
            let sums = if index == last {
                &mut after_last
            } else {
                &mut after
            };
            let nonfinite =
                chunk_sums(values, &chunk_shape(n), &axes, sums).map_err(|m| self.fail(m))?;
            if nonfinite || self.count_negatives {
                count(values, &mut outcome.counts_after, self.count_negatives);
            }
            state.write(self, start + r * row, n * row)?;
        }
        if after.is_empty() {
            after = after_last;
        } else {
            for (sum, part) in after.iter_mut().zip(&after_last) {
                *sum += part;
            }
        }
        outcome.norms_after.extend(after.iter().map(|s| s.sqrt()));
        Ok(())
    }
}

/// The constraint with `axes` in place of its own (the same slices, in canonical dims).
fn with_axes(constraint: &Constraint, axes: &Axes) -> Constraint {
    let mut c = constraint.clone();
    match &mut c {
        Constraint::MaxNorm { options, .. }
        | Constraint::MinMaxNorm { options, .. }
        | Constraint::UnitNorm { options } => options.axes = axes.clone(),
        Constraint::NonNeg | Constraint::Radial => {}
    }
    c
}

/// Adds the sums of squares of each slice of `values` into `sums` (grown to fit); true when a
/// sum is not finite. The core's norms are within 2 ulp of the correctly rounded ones, so the
/// squares summed here in f64 carry that relative error, and the gathered norm too.
fn chunk_sums<T: Compute>(
    values: &[T],
    shape: &[usize],
    axes: &Axes,
    sums: &mut Vec<f64>,
) -> std::result::Result<bool, String> {
    let n = norms(values, shape, axes).map_err(|e| e.message)?;
    if sums.is_empty() {
        sums.resize(n.values.len(), 0.0);
    }
    let mut nonfinite = false;
    for (sum, norm) in sums.iter_mut().zip(&n.values) {
        let norm = norm.to_f64();
        *sum += norm * norm;
        nonfinite |= !norm.is_finite();
    }
    Ok(nonfinite)
}

/// For each slice of a row of canonical `dims` (row-major over the kept dims), the flat index of
/// its element whose reduced coordinates are all 0.
fn representatives(dims: &[(usize, bool)]) -> Vec<usize> {
    let mut stride = 1usize;
    // Build from the last axis: kept axes multiply the list, reduced axes only the stride.
    let mut positions: Vec<usize> = vec![0];
    for &(dim, reduced) in dims.iter().rev() {
        if !reduced {
            let mut next = Vec::with_capacity(positions.len() * dim);
            for i in 0..dim {
                for &p in &positions {
                    next.push(i * stride + p);
                }
            }
            positions = next;
        }
        stride *= dim;
    }
    positions
}

/// The memory of jobs, reused from one job to the next (see [`Job::run_in`]). Its contents carry
/// nothing between jobs: every element a job uses it first reads or sets.
#[derive(Default)]
pub struct Buffers {
    f32: Vec<f32>,
    f64: Vec<f64>,
    bytes: Vec<u8>,
}

/// A compute type and its buffer in [`Buffers`].
trait Buffered: Compute {
    fn buffers(buffers: &mut Buffers) -> (&mut Vec<Self>, &mut Vec<u8>);
}

impl Buffered for f32 {
    fn buffers(buffers: &mut Buffers) -> (&mut Vec<Self>, &mut Vec<u8>) {
        (&mut buffers.f32, &mut buffers.bytes)
    }
}

impl Buffered for f64 {
    fn buffers(buffers: &mut Buffers) -> (&mut Vec<Self>, &mut Vec<u8>) {
        (&mut buffers.f64, &mut buffers.bytes)
    }
}

/// The buffers of one job.
struct State<'b, T> {
    values: &'b mut Vec<T>,
    scratch: &'b mut Vec<u8>,
    limit: usize,
}

impl<'b, T: Buffered> State<'b, T> {
    fn new(limit: usize, buffers: &'b mut Buffers) -> Self {
        let (values, scratch) = T::buffers(buffers);
        Self {
            values,
            scratch,
            limit,
        }
    }

    /// Elements `[start, start + n)` to read only, decoded into the buffer. Never through a
    /// mapping of the file: the file can be truncated while the job runs (by the app itself, on
    /// the main thread or in a Worker, or by another process), and touching a mapped page past
    /// the new end is SIGBUS, which kills Node. `read` reports a short file as an error.
    fn look(&mut self, job: &Job, start: usize, n: usize) -> Result<&[T]> {
        Ok(&*self.read(job, start, n)?)
    }

    fn ensure(&mut self, n: usize) {
        if self.values.len() < n {
            self.values.resize(n, T::ZERO);
        }
    }

    /// Elements `[start, start + n)` of the tensor, decoded.
    fn read(&mut self, job: &Job, start: usize, n: usize) -> Result<&mut [T]> {
        self.ensure(n);
        let size = job.tensor.dtype.size() as u64;
        let values = &mut self.values[..n];
        decode_into(&job.tensor.dtype, values, self.scratch, |bytes| {
            read_bytes(job.files, &job.tensor.segments, start as u64 * size, bytes)
        })?;
        job.progress.fetch_add(n as u64 * size, Ordering::Relaxed);
        Ok(values)
    }

    /// Writes elements `[start, start + n)` (the first `n` of the buffer) to the output, if any.
    fn write(&mut self, job: &Job, start: usize, n: usize) -> Result<()> {
        let Some(output) = &job.output else {
            return Ok(());
        };
        let size = output.dtype.size() as u64;
        encode_from(&output.dtype, &self.values[..n], self.scratch, |bytes| {
            write_bytes(output.files, &output.segments, start as u64 * size, bytes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_drops_ones_and_merges_roles() {
        let dims = canonical(&[3, 3, 1, 8, 16], &Axes::List(vec![0, 1, 2, 3])).unwrap();
        assert_eq!(dims, [(72, true), (16, false)]);
        let dims = canonical(&[4, 5], &Axes::List(vec![-1])).unwrap();
        assert_eq!(dims, [(4, false), (5, true)]);
    }

    #[test]
    fn representatives_pick_reduced_zero() {
        // [kept 2, reduced 3]: slices 0 and 1 start at 0 and 3.
        assert_eq!(representatives(&[(2, false), (3, true)]), [0, 3]);
        // [reduced 2, kept 3]: slices are columns 0..3 of the first row.
        assert_eq!(representatives(&[(2, true), (3, false)]), [0, 1, 2]);
        assert_eq!(representatives(&[]), [0]);
    }
}
