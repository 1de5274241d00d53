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

/// `NORMCLIP_THREADS` may ask for at most this many threads per core: more only adds contention,
/// and an unbounded pool (20000 threads) stalls the first call for seconds.
pub const MAX_THREADS_PER_CORE: usize = 4;

/// Threads used for large calls: `NORMCLIP_THREADS`, else the number of cores. A value that is
/// not a positive integer, or above [`MAX_THREADS_PER_CORE`] × cores, is reported once on stderr
/// and replaced (by the core count, or the cap).
pub fn thread_count() -> usize {
    static POOL_THREADS: OnceLock<usize> = OnceLock::new();
    *POOL_THREADS.get_or_init(|| {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        let (threads, warning) = threads_for(std::env::var("NORMCLIP_THREADS").ok(), cores);
        if let Some(warning) = warning {
            eprintln!("normclip: {warning}");
        }
        // The global pool may already exist (another library built it); then we use it as it is.
        let _ = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global();
        threads
    })
}

/// The thread count for a `NORMCLIP_THREADS` value on a machine of `cores` cores, and what to
/// tell the user when the value was not used as given.
fn threads_for(requested: Option<String>, cores: usize) -> (usize, Option<String>) {
    let cap = cores.saturating_mul(MAX_THREADS_PER_CORE);
    let Some(text) = requested.filter(|text| !text.trim().is_empty()) else {
        return (cores, None);
    };
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 && n <= cap => (n, None),
        Ok(n) if n > cap => (
            cap,
            Some(format!(
                "NORMCLIP_THREADS={n} is above the limit of {cap} ({MAX_THREADS_PER_CORE} per core, {cores} cores); using {cap}"
            )),
        ),
        _ => (
            cores,
            Some(format!(
                "NORMCLIP_THREADS={text:?} is not a positive integer; using the core count, {cores}"
            )),
        ),
    }
}

/// Whether a call over `len` elements should fan out.
pub fn use_threads(len: usize) -> bool {
    len >= PARALLEL_MIN_ELEMENTS && thread_count() > 1 && rayon::current_num_threads() > 1
}

#[cfg(test)]
mod tests {
    use super::threads_for;

    #[test]
    fn thread_requests_are_capped_and_checked() {
        assert_eq!(threads_for(None, 2), (2, None));
        assert_eq!(threads_for(Some("3".into()), 2), (3, None));
        assert_eq!(threads_for(Some(" 8 ".into()), 2), (8, None));
        let (n, warning) = threads_for(Some("20000".into()), 2);
        assert_eq!(n, 8);
        assert!(warning.unwrap().contains("above the limit of 8"));
        for bad in ["0", "-1", "two", "1.5"] {
            let (n, warning) = threads_for(Some(bad.into()), 2);
            assert_eq!(n, 2, "{bad}");
            assert!(warning.unwrap().contains("not a positive integer"), "{bad}");
        }
    }
}
