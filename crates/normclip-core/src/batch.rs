//! Many weights in one call (a model's whole weight set): which items run in parallel is decided
//! here, from their sizes only, so the result never depends on the thread count.

use crate::apply::Prepared;
use crate::element::{Floats, FloatsMut};
use crate::error::Result;
use crate::parallel::thread_count;
use rayon::prelude::*;

/// Below this many elements in all, a batch runs item after item on the calling thread: waking a
/// second core costs more than it saves.
pub const PARALLEL_BATCH_ELEMENTS: usize = 1 << 18;

/// What a job writes: its buffer in place, or a constrained copy of `source` into `output`.
#[derive(Debug)]
pub enum Target<'a> {
    InPlace(FloatsMut<'a>),
    Copy {
        source: Floats<'a>,
        output: FloatsMut<'a>,
    },
}

/// One item of a batch: a prepared call and the buffers it was prepared for.
#[derive(Debug)]
pub struct Job<'a> {
    pub prepared: &'a Prepared,
    pub target: Target<'a>,
}

impl Job<'_> {
    /// An in-place job.
    pub fn in_place<'a>(prepared: &'a Prepared, data: FloatsMut<'a>) -> Job<'a> {
        Job {
            prepared,
            target: Target::InPlace(data),
        }
    }

    /// A job that writes a constrained copy of `source` into `output`.
    pub fn copy<'a>(prepared: &'a Prepared, source: Floats<'a>, output: FloatsMut<'a>) -> Job<'a> {
        Job {
            prepared,
            target: Target::Copy { source, output },
        }
    }

    fn len(&self) -> usize {
        match &self.target {
            Target::InPlace(data) => data.len(),
            Target::Copy { source, .. } => source.len(),
        }
    }

    /// Whether the buffers are of the prepared length (and a copy's of one type), so that
    /// running cannot fail half-way through a batch.
    fn check(&self) -> Result<()> {
        match &self.target {
            Target::InPlace(data) => self.prepared.check_len(data.len()),
            Target::Copy { source, output } => self.prepared.check_copy(*source, output),
        }
    }

    fn run(&mut self) {
        match &mut self.target {
            Target::InPlace(data) => self.prepared.run_on(data),
            Target::Copy { source, output } => self
                .prepared
                .copy_on(*source, output)
                .expect("checked before the batch ran"),
        }
    }
}

/// Runs every job with the active tier; independent jobs run in parallel when the batch is large
/// enough for two threads to pay. Every job is checked first: on an error nothing is written. The
/// buffers must be disjoint (the borrow checker sees to it here; a binding checks it before
/// building the slices).
pub fn apply_batch(jobs: &mut [Job<'_>]) -> Result<()> {
    jobs.iter().try_for_each(Job::check)?;
    let total: usize = jobs.iter().map(Job::len).sum();
    if total >= PARALLEL_BATCH_ELEMENTS && jobs.len() > 1 && thread_count() > 1 {
        jobs.par_iter_mut().with_min_len(1).for_each(Job::run);
    } else {
        jobs.iter_mut().for_each(Job::run);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Axes, Constraint};

    #[test]
    fn a_bad_job_stops_the_batch_before_anything_is_written() {
        let max_norm = Constraint::max_norm(1.0, Axes::default()).unwrap();
        let prepared = max_norm.prepare(4, &[2, 2]).unwrap();
        let mut first = [3.0f32, 0.0, 4.0, 0.0];
        let source = [3.0f64, 0.0, 4.0, 0.0];
        let mut wrong_type = [0.0f32; 4];
        let mut jobs = [
            Job::in_place(&prepared, FloatsMut::F32(&mut first)),
            Job::copy(
                &prepared,
                Floats::F64(&source),
                FloatsMut::F32(&mut wrong_type),
            ),
        ];
        assert!(apply_batch(&mut jobs).is_err());
        assert_eq!(first, [3.0, 0.0, 4.0, 0.0]);
        assert_eq!(wrong_type, [0.0; 4]);
    }

    #[test]
    fn copies_and_in_place_jobs_match_single_calls() {
        let max_norm = Constraint::max_norm(1.0, Axes::default()).unwrap();
        let prepared = max_norm.prepare(4, &[2, 2]).unwrap();
        let data = [3.0f32, 1.0, 4.0, 0.5];
        let expected = max_norm.apply_copy(&data, &[2, 2]).unwrap();
        let (mut in_place, mut output) = (data, [0.0f32; 4]);
        let mut jobs = [
            Job::in_place(&prepared, FloatsMut::F32(&mut in_place)),
            Job::copy(&prepared, Floats::F32(&data), FloatsMut::F32(&mut output)),
        ];
        apply_batch(&mut jobs).unwrap();
        assert_eq!(in_place.to_vec(), expected);
        assert_eq!(output.to_vec(), expected);
    }
}
