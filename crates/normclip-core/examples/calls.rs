//! A loop of calls for instruction counts (callgrind) and `perf stat`: only `measured` does the
//! work that is counted, so run it as
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*measured*' [--cache-sim=yes] \
//!     target/release/examples/calls 784,512 0 f32 avx2 5 over
//! ```
//!
//! and divide the counts by `calls × elements`. Arguments: shape (`784,512`), axes (`0`, `0,1,2`,
//! `-1`, `null`), element type (`f32`/`f64`), tier (`portable`/`avx2`/`avx512`), number of calls,
//! and what to run:
//! - `over`: MaxNorm(2) with every slice norm ≈ 4: every element rewritten; the data is multiplied
//!   by 4 between calls (not counted) so that every call rewrites;
//! - `compliant`: MaxNorm(1e30): nothing written;
//! - `zeros`: MaxNorm(2) on an all-zero tensor (every slice is rechecked);
//! - `copy`: `apply_copy`-style call into a fresh buffer (over-bound data);
//! - `norms`: the norm pass alone (`norms_with_tier`);
//! - `probe`: the bandwidth probe (f32 only): a sum-of-squares pass and a scale pass.
//!
//! The data comes from a seeded generator (the same every run), so before/after comparisons of
//! outputs can use `--dump FILE` (writes the output bytes of the last call).

use std::hint::black_box;

use normclip_core::apply::norms_with_tier;
use normclip_core::kernels::Kernels;
use normclip_core::{Axes, Constraint, Element, Tier};

fn parse_axes(text: &str) -> Axes {
    if text == "null" {
        return Axes::All;
    }
    if text.is_empty() || text == "[]" {
        return Axes::List(vec![]);
    }
    Axes::List(text.split(',').map(|a| a.parse().expect("axis")).collect())
}

use normclip_core::probe::normal;

#[inline(never)]
fn measured<T: Element>(c: &Constraint, data: &mut [T], shape: &[usize], tier: Tier) {
    c.apply_in_place_with_tier(data, shape, tier).unwrap();
}

#[inline(never)]
fn measured_copy<T: Element>(c: &Constraint, data: &[T], shape: &[usize], tier: Tier) -> Vec<T> {
    let prepared = c.prepare(data.len(), shape).unwrap();
    prepared.run_copy(data, Kernels::for_tier(tier).unwrap())
}

#[inline(never)]
fn measured_norms<T: Element>(data: &[T], shape: &[usize], axes: &Axes, tier: Tier) -> Vec<T> {
    norms_with_tier(data, shape, axes, tier).unwrap().values
}

#[inline(never)]
fn measured_probe(data: &mut [f32], factor: f32, tier: Tier) -> f32 {
    normclip_core::probe::two_pass(tier, data, factor).unwrap()
}

fn write_bytes<T: Element>(path: &str, data: &[T]) {
    let bytes: Vec<u8> = data
        .iter()
        .flat_map(|x| {
            let v = x.to_f64();
            if std::mem::size_of::<T>() == 4 {
                (v as f32).to_le_bytes().to_vec()
            } else {
                v.to_le_bytes().to_vec()
            }
        })
        .collect();
    std::fs::write(path, bytes).expect("write the dump");
}

fn run<T: Element>(args: &[String]) {
    let shape: Vec<usize> = args[0]
        .split(',')
        .filter(|d| !d.is_empty())
        .map(|d| d.parse().expect("dimension"))
        .collect();
    let axes = parse_axes(&args[1]);
    let tier = Tier::parse(&args[3]).expect("tier");
    let calls: usize = args[4].parse().expect("calls");
    let what = args.get(5).map_or("over", String::as_str);
    let dump = args
        .iter()
        .position(|a| a == "--dump")
        .map(|i| args[i + 1].clone());
    let len: usize = shape.iter().product();
    let slices = norms_with_tier(&vec![T::ZERO; len], &shape, &axes, tier)
        .unwrap()
        .values
        .len();
    let slice_len = len.checked_div(slices).unwrap_or(0).max(1);
    // Every slice norm ≈ 4.
    let scale = 4.0 / (slice_len as f64).sqrt();
    let mut data: Vec<T> = normal(len, 0xCA11, scale)
        .into_iter()
        .map(T::from_f64)
        .collect();
    if what == "zeros" {
        data.fill(T::ZERO);
    }
    let max = if what == "compliant" { 1e30 } else { 2.0 };
    let c = Constraint::max_norm(max, axes.clone()).unwrap();
    let four = T::from_f64(4.0);
    let mut last: Vec<T> = Vec::new();
    let mut probe_data: Vec<f32> = data.iter().map(|x| x.to_f64() as f32).collect();
    for i in 0..calls {
        match what {
            "over" => {
                measured(&c, &mut data, &shape, tier);
                if i + 1 < calls {
                    for x in data.iter_mut() {
                        *x = *x * four;
                    }
                }
            }
            "compliant" | "zeros" => measured(&c, &mut data, &shape, tier),
            "copy" => last = black_box(measured_copy(&c, &data, &shape, tier)),
            "norms" => last = black_box(measured_norms(&data, &shape, &axes, tier)),
            "probe" => {
                black_box(measured_probe(
                    &mut probe_data,
                    if i % 2 == 0 { 0.5 } else { 2.0 },
                    tier,
                ));
            }
            other => panic!("unknown mode {other}"),
        }
    }
    if let Some(path) = dump {
        match what {
            "copy" | "norms" => write_bytes(&path, &last),
            _ => write_bytes(&path, &data),
        }
    }
    println!("{calls} calls of {what} on {shape:?} {axes:?} ({len} elements)");
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 5 {
        eprintln!("usage: calls SHAPE AXES f32|f64 TIER CALLS [over|compliant|copy|norms|probe] [--dump FILE]");
        std::process::exit(2);
    }
    match args[2].as_str() {
        "f32" => run::<f32>(&args),
        "f64" => run::<f64>(&args),
        other => panic!("unknown element type {other}"),
    }
}
