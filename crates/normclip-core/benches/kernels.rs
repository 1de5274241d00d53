//! `cargo bench -p normclip-core --features probe` (the bench needs the probe kernels): MaxNorm
//! in place per SIMD tier against a bandwidth probe measured in the same run on a buffer of the
//! same size. std only (no criterion).
//!
//! - over-bound: MaxNorm(2) with every slice norm 4, so every element is rewritten (12 B/element:
//!   a read pass for the norms, a read + write pass for the scale). The buffer is refreshed from a
//!   pristine copy before each timed call; the refresh is not timed.
//! - compliant: MaxNorm(3) with every slice norm 2.5, so every factor is exactly 1.0 and nothing
//!   is written (4 B/element).
//! - probe: a plain sum-of-squares pass plus an in-place scale pass over a buffer of the same
//!   size (12 B/element), compiled for the same tier, refreshed and timed the same way; the
//!   compliant case is compared with the probe's sum pass alone (4 B/element).
//!
//! Extra modes: `--passes LABEL...` (each pass on its own), `--profile LABEL [over|compliant|probe]
//! [tier]` (a loop for perf/callgrind; `PROFILE_CALLS` sets the call count).
//!
//! Single thread: everything runs inside a 1-thread rayon pool (the crate fans out only when the
//! current pool has more than one thread). The 2-thread rows use a 2-thread pool.
//! The table goes to stdout and to `bench/CARGO-BENCH.md`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use normclip_core::{Axes, Constraint, Mode, Tier};

/// A benchmark case: a shape and the axes its norms are taken along (`None`: all of them).
struct Case {
    shape: &'static [usize],
    axes: Option<&'static [i64]>,
}

const fn case(shape: &'static [usize], axes: Option<&'static [i64]>) -> Case {
    Case { shape, axes }
}

const CASES: &[Case] = &[
    case(&[512, 512], Some(&[0])),
    case(&[784, 512], Some(&[0])),
    case(&[3, 3, 256, 256], Some(&[0, 1, 2])),
    case(&[4096, 4096], Some(&[0])),
    case(&[1 << 24], None),
    case(&[4096, 4096], Some(&[-1])),
    case(&[100_000, 10], Some(&[0])),
    case(&[64, 64], Some(&[0])),
    case(&[16], Some(&[0])),
];

impl Case {
    fn axes(&self) -> Axes {
        self.axes
            .map_or(Axes::All, |axes| Axes::List(axes.to_vec()))
    }

    fn label(&self) -> String {
        let dims: Vec<String> = self.shape.iter().map(|d| d.to_string()).collect();
        let axes = match self.axes {
            None => "null".to_string(),
            Some([axis]) => axis.to_string(),
            Some(axes) => format!("{axes:?}").replace(' ', ""),
        };
        format!("[{}], {axes}", dims.join(","))
    }

    fn len(&self) -> usize {
        self.shape.iter().product()
    }
}

// ------------------------------------------------------------------ the bandwidth probe
// (normclip_core::probe: the same loops `npm run bench` measures through the binding)

fn probe(tier: Tier, data: &mut [f32], factor: f32) -> f32 {
    normclip_core::probe::two_pass(tier, data, factor).unwrap()
}

/// The probe's sum pass alone (the 4 B/element bound of a call that writes nothing).
fn sum_probe(tier: Tier, data: &[f32]) -> f32 {
    normclip_core::probe::sum_squares(tier, data).unwrap()
}

/// The sum probe on two threads (call it inside the pool).
fn sum_probe_parallel(tier: Tier, data: &[f32]) -> f32 {
    let (a, b) = data.split_at(data.len() / 2);
    let (x, y) = rayon::join(|| sum_probe(tier, a), || sum_probe(tier, b));
    x + y
}

/// The probe on two threads (call it inside the pool): each half on its own thread.
fn probe_parallel(tier: Tier, data: &mut [f32], factor: f32) -> f32 {
    let (a, b) = data.split_at_mut(data.len() / 2);
    let (x, y) = rayon::join(|| probe(tier, a, factor), || probe(tier, b, factor));
    x + y
}

// ------------------------------------------------------------------ timing

/// One timed thing: a pristine input and a call that works on a refreshed copy of it.
type Timed<'a> = (&'a [f32], Box<dyn FnMut(&mut [f32]) + 'a>);

/// Median times of each entry of `runs`, interleaved sample by sample (so that a noisy neighbour
/// hits them alike). Before each call the buffer is refreshed from the entry's pristine copy; the
/// refresh is not timed. Tiny buffers are timed in batches of (refresh + call) minus batches of
/// refreshes.
fn median_times(runs: &mut [Timed<'_>], buffer: &mut [f32], samples: usize) -> Vec<Duration> {
    let batch = (1 << 16) / buffer.len().max(1);
    for (pristine, run) in runs.iter_mut() {
        for _ in 0..3 {
            buffer.copy_from_slice(pristine);
            run(buffer);
        }
    }
    let mut times = vec![Vec::with_capacity(samples); runs.len()];
    for _ in 0..samples {
        for (i, (pristine, run)) in runs.iter_mut().enumerate() {
            let time = if batch <= 1 {
                buffer.copy_from_slice(pristine);
                let start = Instant::now();
                run(black_box(&mut *buffer));
                start.elapsed()
            } else {
                let start = Instant::now();
                for _ in 0..batch {
                    buffer.copy_from_slice(black_box(pristine));
                    run(black_box(&mut *buffer));
                }
                let with_call = start.elapsed();
                let start = Instant::now();
                for _ in 0..batch {
                    buffer.copy_from_slice(black_box(pristine));
                    black_box(&mut *buffer);
                }
                with_call.saturating_sub(start.elapsed()) / batch as u32
            };
            times[i].push(time);
        }
    }
    times
        .into_iter()
        .map(|mut t| {
            t.sort();
            t[samples / 2]
        })
        .collect()
}

fn samples_for(len: usize) -> usize {
    if len >= 1 << 22 {
        21
    } else if len >= 1 << 18 {
        41
    } else {
        101
    }
}

// ------------------------------------------------------------------ data

/// Deterministic normal data (the probe module's generator), in f32.
fn normal_data(len: usize, seed: u64) -> Vec<f32> {
    normclip_core::probe::normal(len, seed, 1.0)
        .into_iter()
        .map(|x| x as f32)
        .collect()
}

/// Data whose every slice has norm `target` (normalised with the crate's projection UnitNorm).
fn data_with_norm(case: &Case, target: f32) -> Vec<f32> {
    let mut data = normal_data(case.len(), 0xB0BA);
    Constraint::unit_norm(case.axes())
        .unwrap()
        .with_mode(Mode::Projection)
        .unwrap()
        .apply_in_place(&mut data, case.shape)
        .unwrap();
    for x in data.iter_mut() {
        *x *= target;
    }
    data
}

// ------------------------------------------------------------------ the run

struct Row {
    label: String,
    tier: String,
    threads: usize,
    probe_ms: f64,
    over_ms: f64,
    compliant_ms: f64,
    sum_probe_ms: f64,
    len: usize,
}

impl Row {
    fn markdown(&self) -> String {
        let bytes = self.len as f64 * 4.0;
        let gbs = |bytes_per_element: f64, ms: f64| bytes * bytes_per_element / 4.0 / (ms * 1e6);
        format!(
            "| {} | {} | {} | {} | {} | {:.1} | {:.0}% | {} | {} | {:.1} | {:.0}% |",
            self.label,
            self.tier,
            self.threads,
            fmt_ms(self.probe_ms),
            fmt_ms(self.over_ms),
            gbs(12.0, self.over_ms),
            100.0 * self.probe_ms / self.over_ms,
            fmt_ms(self.sum_probe_ms),
            fmt_ms(self.compliant_ms),
            gbs(4.0, self.compliant_ms),
            100.0 * self.sum_probe_ms / self.compliant_ms,
        )
    }
}

fn fmt_ms(ms: f64) -> String {
    if ms >= 10.0 {
        format!("{ms:.2}")
    } else if ms >= 0.1 {
        format!("{ms:.3}")
    } else {
        format!("{ms:.5}")
    }
}

fn measure(case: &Case, tier: Tier, pool: &rayon::ThreadPool) -> Row {
    let len = case.len();
    let samples = samples_for(len);
    let over = data_with_norm(case, 4.0);
    let compliant = data_with_norm(case, 2.5);
    let clip = Constraint::max_norm(2.0, case.axes()).unwrap();
    let keep = Constraint::max_norm(3.0, case.axes()).unwrap();
    let mut buffer = vec![0.0f32; len];

    // Sanity (not timed): the over-bound call rewrites, the compliant one does not.
    buffer.copy_from_slice(&compliant);
    keep.apply_in_place_with_tier(&mut buffer, case.shape, tier)
        .unwrap();
    assert!(
        buffer
            .iter()
            .zip(&compliant)
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "{}: the compliant case moved",
        case.label()
    );

    // The whole timing loop runs inside the pool: no cross-thread hand-off per call.
    let threads = pool.current_num_threads();
    let times = pool.install(|| {
        let mut runs: Vec<Timed<'_>> = vec![
            (
                &over,
                Box::new(|b: &mut [f32]| {
                    if threads == 1 {
                        black_box(probe(tier, b, 0.5));
                    } else {
                        black_box(probe_parallel(tier, b, 0.5));
                    }
                }),
            ),
            (
                &over,
                Box::new(|b: &mut [f32]| {
                    clip.apply_in_place_with_tier(b, case.shape, tier).unwrap()
                }),
            ),
            (
                &compliant,
                Box::new(|b: &mut [f32]| {
                    keep.apply_in_place_with_tier(b, case.shape, tier).unwrap()
                }),
            ),
            (
                &compliant,
                Box::new(|b: &mut [f32]| {
                    if threads == 1 {
                        black_box(sum_probe(tier, b));
                    } else {
                        black_box(sum_probe_parallel(tier, b));
                    }
                }),
            ),
        ];
        median_times(&mut runs, &mut buffer, samples)
    });
    let (probe_time, over_time, compliant_time) = (times[0], times[1], times[2]);
    let sum_probe_time = times[3];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    Row {
        label: case.label(),
        tier: tier.name().to_string(),
        threads,
        probe_ms: ms(probe_time),
        over_ms: ms(over_time),
        compliant_ms: ms(compliant_time),
        sum_probe_ms: ms(sum_probe_time),
        len,
    }
}

/// The CPU's model name with its family and model numbers (one name covers many Xeons).
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines()
            .find(|l| l.split(':').next().map(str::trim) == Some(key))
            .and_then(|l| l.split(':').nth(1))
            .map(|v| v.trim().to_string())
    };
    match (field("model name"), field("cpu family"), field("model")) {
        (Some(name), Some(family), Some(model)) => {
            format!("{name} (family {family}, model {model})")
        }
        (Some(name), _, _) => name,
        _ => "unknown CPU".to_string(),
    }
}

/// `kernels --profile LABEL [over|compliant|probe] [tier]`: loops over one call for a few
/// seconds without refreshing, for `perf record` / `perf stat`. Over-bound data is multiplied by 4
/// after each call (norm 2 -> 8), so every call rewrites every element.
fn profile(args: &[String]) {
    let case = CASES
        .iter()
        .find(|c| c.label().contains(args[0].as_str()))
        .expect("no such shape");
    let what = args.get(1).map_or("over", String::as_str);
    let tier = args
        .get(2)
        .map_or(Tier::active(), |t| Tier::parse(t).unwrap());
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let compliant = what == "compliant";
    let mut data = data_with_norm(case, if compliant { 2.5 } else { 4.0 });
    let c = Constraint::max_norm(if compliant { 3.0 } else { 2.0 }, case.axes()).unwrap();
    let calls = std::env::var("PROFILE_CALLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or((3e9 / (case.len() as f64 * 2.0)).max(1.0) as usize);
    one.install(|| {
        let start = Instant::now();
        for i in 0..calls {
            if what == "probe" {
                black_box(probe(tier, &mut data, if i % 2 == 0 { 0.5 } else { 2.0 }));
                continue;
            }
            c.apply_in_place_with_tier(&mut data, case.shape, tier)
                .unwrap();
            if what == "over" {
                for x in data.iter_mut() {
                    *x *= 4.0;
                }
            }
        }
        println!("{calls} calls in {:?}", start.elapsed());
    });
}

/// The probe's sum pass alone, AVX2.
fn sum_only(data: &[f32]) -> f32 {
    normclip_core::probe::sum_squares(Tier::Avx2, data).unwrap()
}

/// The probe's scale pass alone, AVX2.
fn scale_only(data: &mut [f32], factor: f32) {
    normclip_core::probe::scale(Tier::Avx2, data, factor).unwrap()
}

/// `kernels --passes LABEL...`: each pass on its own (AVX2 tier, one thread): the probe's sum
/// pass and scale pass, the crate's norm pass (`norms_with_tier`) and its whole over-bound call;
/// the crate's scale pass is the difference.
fn passes(labels: &[String]) -> Vec<String> {
    let mut lines = Vec::new();
    let mut out = |line: String| {
        println!("{line}");
        lines.push(line);
    };
    assert!(Tier::Avx2.is_supported(), "--passes measures the avx2 tier");
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    out("| shape, axis | probe sum ms | crate norms ms | % | probe scale ms | crate scale ms (call - norms) | % |".to_string());
    out("|---|---|---|---|---|---|---|".to_string());
    for case in CASES
        .iter()
        .filter(|c| labels.iter().any(|l| c.label().contains(l.as_str())))
    {
        let over = data_with_norm(case, 4.0);
        let mut buffer = over.clone();
        let axes = case.axes();
        let clip = Constraint::max_norm(2.0, axes.clone()).unwrap();
        let samples = samples_for(case.len());
        let times = one.install(|| {
            let mut runs: Vec<Timed<'_>> = vec![
                (
                    &over,
                    Box::new(|b: &mut [f32]| {
                        black_box(sum_only(b));
                    }),
                ),
                (
                    &over,
                    Box::new(|b: &mut [f32]| {
                        black_box(
                            normclip_core::apply::norms_with_tier(b, case.shape, &axes, Tier::Avx2)
                                .unwrap(),
                        );
                    }),
                ),
                (&over, Box::new(|b: &mut [f32]| scale_only(b, 0.5))),
                (
                    &over,
                    Box::new(|b: &mut [f32]| {
                        clip.apply_in_place_with_tier(b, case.shape, Tier::Avx2)
                            .unwrap()
                    }),
                ),
            ];
            median_times(&mut runs, &mut buffer, samples)
        });
        let ms: Vec<f64> = times.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let scale = ms[3] - ms[1];
        out(format!(
            "| {} | {} | {} | {:.0}% | {} | {} | {:.0}% |",
            case.label(),
            fmt_ms(ms[0]),
            fmt_ms(ms[1]),
            100.0 * ms[0] / ms[1],
            fmt_ms(ms[2]),
            fmt_ms(scale),
            100.0 * ms[2] / scale,
        ));
    }
    lines
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if args.first().is_some_and(|a| a == "--profile") {
        return profile(&args[1..]);
    }
    if args.first().is_some_and(|a| a == "--passes") {
        passes(&args[1..]);
        return;
    }
    // Any other argument filters the shapes by label.
    let filters: Vec<String> = args.into_iter().filter(|a| !a.starts_with("--")).collect();
    let tiers: Vec<Tier> = Tier::ALL.into_iter().filter(|t| t.is_supported()).collect();
    let one = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let two = rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .unwrap();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let header = [
        "| shape, axis | tier | threads | probe ms (12 B/el) | over-bound ms | GB/s | % of probe | sum probe ms (4 B/el) | compliant ms | GB/s (4 B/el) | % of sum probe |".to_string(),
        "|---|---|---|---|---|---|---|---|---|---|---|".to_string(),
    ];
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".to_string());
    let machine =
        format!(
        "{}, {cores} cores; tiers run: {}; default tier {}; normclip_core::thread_count() = {}; \
         load average at start {load}",
        cpu_model(),
        tiers.iter().map(|t| t.name()).collect::<Vec<_>>().join(", "),
        Tier::active().name(),
        normclip_core::thread_count(),
    );
    println!("{machine}");
    for line in &header {
        println!("{line}");
    }
    let mut rows = Vec::new();
    for case in CASES {
        if !filters.is_empty() && !filters.iter().any(|f| case.label().contains(f.as_str())) {
            continue;
        }
        for &tier in &tiers {
            let row = measure(case, tier, &one);
            println!("{}", row.markdown());
            rows.push(row);
        }
        if case.len() >= 1 << 20 && cores > 1 {
            let row = measure(case, Tier::active(), &two);
            println!("{}", row.markdown());
            rows.push(row);
        }
    }
    if !filters.is_empty() {
        return; // a partial run does not overwrite the committed table
    }
    // Where the time goes on the in-cache shapes: each pass on its own.
    let small: Vec<String> = CASES
        .iter()
        .filter(|c| c.len() < 1 << 20)
        .map(|c| c.label())
        .collect();
    let pass_lines = if Tier::Avx2.is_supported() {
        println!();
        passes(&small)
    } else {
        Vec::new()
    };
    let mut md = String::from("# `cargo bench -p normclip-core --features probe` results\n\n");
    md += &format!("{machine}  \n");
    md += "MaxNorm in place, median ms per call (buffer refreshed before each call, untimed; \
           probe, over-bound, compliant and sum probe interleaved call by call, so a noisy \
           neighbour hits them alike: compare ratios, not absolute times).\n\n";
    for line in &header {
        md += line;
        md.push('\n');
    }
    for row in &rows {
        md += &row.markdown();
        md.push('\n');
    }
    md +=
        "\n- probe: a plain Rust sum-of-squares pass plus an in-place scale pass over a buffer of \
           the same size, compiled for the same tier, same run (12 B/element).\n\
           - over-bound: MaxNorm(2), every slice norm 4: every element rewritten (12 B/element).\n\
           - compliant: MaxNorm(3), every slice norm 2.5: factors exactly 1.0, nothing written \
           (4 B/element), compared with the probe's sum pass alone (\"sum probe\", same tier).\n\
           - threads 1: inside a 1-thread rayon pool; threads 2: a 2-thread pool (the probe \
           splits the buffer in halves with `rayon::join`).\n";
    if !pass_lines.is_empty() {
        md += "\n## Each pass on its own (avx2, 1 thread, same data)\n\n";
        md += &pass_lines.join("\n");
        md.push('\n');
    }
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../bench/CARGO-BENCH.md");
    std::fs::write(path, md).expect("write bench/CARGO-BENCH.md");
    println!("\nwritten to bench/CARGO-BENCH.md");
}
