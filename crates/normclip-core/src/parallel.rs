//! Size-gated multi-threading. Work is always cut into the same parts for the same shape, whatever
//! the number of threads, so results are bit-identical with 1 thread or many.

use std::sync::OnceLock;

/// Below this many elements a call stays on the calling thread: waking a second core costs more
/// than it saves (measured: two threads pay off only above ~1M elements).
pub const PARALLEL_MIN_ELEMENTS: usize = 1 << 20;
/// Elements per part of a parallel reduction.
const PART_ELEMENTS: usize = 1 << 18;
/// Parts a reduction is cut into at most (each holds its own partial sums).
const MAX_PARTS: usize = 16;

/// Number of parts a reduction over `len` elements is cut into: a function of the size only.
pub fn reduction_parts(len: usize) -> usize {
    if len < PARALLEL_MIN_ELEMENTS {
        1
    } else {
        len.div_ceil(PART_ELEMENTS).min(MAX_PARTS)
    }
}

/// Threads used for large calls: `NORMCLIP_THREADS`, else the number of cores.
pub fn thread_count() -> usize {
    static POOL_THREADS: OnceLock<usize> = OnceLock::new();
    *POOL_THREADS.get_or_init(|| {
        let requested = std::env::var("NORMCLIP_THREADS")
            .ok()
            .and_then(|v| v.trim().parse::<usize>().ok());
        let threads = requested.filter(|&n| n > 0).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        });
        // The global pool may already exist (another library built it); then we use it as it is.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
        threads
    })
}

/// Whether a call over `len` elements should fan out.
pub fn use_threads(len: usize) -> bool {
    len >= PARALLEL_MIN_ELEMENTS && thread_count() > 1 && rayon::current_num_threads() > 1
}
