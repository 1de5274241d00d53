//! Many weights in one call (a model's whole weight set): which items run in parallel is decided
//! here, from their sizes only, so the result never depends on the thread count.

use crate::apply::Prepared;
use crate::element::FloatsMut;
use crate::parallel::thread_count;
use rayon::prelude::*;

/// Below this many elements in all, a batch runs item after item on the calling thread: waking a
/// second core costs more than it saves.
pub const PARALLEL_BATCH_ELEMENTS: usize = 1 << 18;

/// One item of a batch: a prepared call and the buffer it was prepared for.
#[derive(Debug)]
pub struct Job<'a> {
    pub prepared: &'a Prepared,
    pub data: FloatsMut<'a>,
}

/// Runs every job in place with the active tier; independent jobs run in parallel when the batch
/// is large enough for two threads to pay. The buffers must be disjoint (the borrow checker sees
/// to it here; a binding checks it before building the slices).
pub fn apply_batch(jobs: &mut [Job<'_>]) {
    let total: usize = jobs.iter().map(|job| job.data.len()).sum();
    let run = |job: &mut Job<'_>| job.prepared.run_on(&mut job.data);
    if total >= PARALLEL_BATCH_ELEMENTS && jobs.len() > 1 && thread_count() > 1 {
        jobs.par_iter_mut().with_min_len(1).for_each(run);
    } else {
        jobs.iter_mut().for_each(run);
    }
}
