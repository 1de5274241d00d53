//! The numerical claims of the README, one test each, on every tier, in float32 and float64,
//! each measuring its maximum error against the exact reference (`exact`: big-integer sums of
//! squares, ~106-bit formulas) and asserting it.

use super::common::*;
use normclip_core::apply::norms_with_tier;
use normclip_core::{Axes, Constraint, Mode};

fn axis(list: &[i64]) -> Axes {
    Axes::List(list.to_vec())
}

/// Worst errors seen by [`check`].
#[derive(Debug, Default, Clone, Copy)]
struct Errors {
    /// Norms against the correctly rounded norm.
    norm: u64,
    /// Outputs of slices on the wide path, against `x · factor` with the factor evaluated in
    /// 53-bit steps and the product rounded once.
    wide: u64,
    /// The same outputs against the factor evaluated exactly.
    wide_exact: u64,
    wide_slices: usize,
}

impl Errors {
    fn max(self, other: Errors) -> Errors {
        Errors {
            norm: self.norm.max(other.norm),
            wide: self.wide.max(other.wide),
            wide_exact: self.wide_exact.max(other.wide_exact),
            wide_slices: self.wide_slices + other.wide_slices,
        }
    }
}

/// Applies `spec` on every tier (all must agree bit for bit, norms too) and checks it against the
/// reference: norms within `norm_limit` ulps; slices on the element-type path bit for bit when
/// their norm is the correctly rounded one (else within 2 + 2k ulps for a norm k ulps off);
/// slices on the wide path within one ulp of the reference (two of the exact formula).
fn check<T: Float>(spec: &Spec, axes: &Axes, data: &[T], shape: &[usize]) -> (Vec<T>, Errors) {
    let w = walk(shape, axes);
    let c = spec.constraint(axes.clone());
    let prepared = c.prepare(data.len(), shape).unwrap();
    let mut outputs: Vec<(Vec<T>, Vec<T>)> = Vec::new();
    for tier in supported_tiers() {
        let mut out = data.to_vec();
        c.apply_in_place_with_tier(&mut out, shape, tier).unwrap();
        let norms = norms_with_tier(data, shape, axes, tier).unwrap().values;
        // The tier's copy (copied and scaled task by task, a path of its own) against its output.
        let kernels = normclip_core::kernels::Kernels::<T>::for_tier(tier).unwrap();
        let copy = prepared.run_copy(data, kernels);
        assert_bits(&copy, &out, &format!("{spec:?} {shape:?}: {tier:?} copy"));
        if let Some((first_out, first_norms)) = outputs.first() {
            assert_bits(
                &out,
                first_out,
                &format!("{spec:?} {shape:?}: {tier:?} output"),
            );
            assert_bits(
                &norms,
                first_norms,
                &format!("{spec:?} {shape:?}: {tier:?} norms"),
            );
        }
        outputs.push((out, norms));
    }
    let (out, norms) = outputs.swap_remove(0);
    let copy = c.apply_copy(data, shape).unwrap();
    assert_bits(&copy, &out, &format!("{spec:?} {shape:?}: apply_copy"));

    let reference = reference_norms(data, &w);
    let norm_limit = if T::UNIT_ROUNDOFF < 1e-10 { 1 } else { 2 };
    let mut errors = Errors::default();
    let norm_ulps = assert_norm_ulps(
        &norms,
        &reference,
        norm_limit,
        &format!("{spec:?} {shape:?}"),
    );
    errors.norm = errors
        .norm
        .max(norm_ulps.iter().copied().max().unwrap_or(0));
    let ops = reference_ops(spec, &reference);
    let exact_ops: Vec<Op<T>> = reference
        .iter()
        .map(|n| reference_op_exact(spec, n))
        .collect();
    errors.wide_slices = ops.iter().filter(|op| op.is_wide()).count();
    for (i, (&x, &s)) in data.iter().zip(&w.slice_of).enumerate() {
        let s = s as usize;
        let d = ulps(out[i], ops[s].apply(x));
        if ops[s].is_wide() {
            assert!(
                d <= 1,
                "{spec:?} {shape:?}: element {i} (wide {:?}): got {}, expected {}",
                ops[s],
                out[i],
                ops[s].apply(x)
            );
            errors.wide = errors.wide.max(d);
            let e = ulps(out[i], exact_ops[s].apply(x));
            assert!(
                e <= 2,
                "{spec:?} {shape:?}: element {i}: {e} ulps from the exact formula"
            );
            errors.wide_exact = errors.wide_exact.max(e);
        } else {
            let allowed = allowed_ulps(norm_ulps[s]);
            assert!(
                d <= allowed,
                "{spec:?} {shape:?}: element {i} ({:?}): got {}, expected {} ({d} ulps > {allowed})",
                ops[s],
                out[i],
                ops[s].apply(x)
            );
        }
    }
    (out, errors)
}

/// [`check`] of `grid` (`shape`, 2-D) along axis 0 and axis -1, for [`all_specs`] at each
/// `(max, min)` of `scales`: the worst errors.
fn check_columns_and_runs<T: Float>(
    grid: &[T],
    shape: &[usize],
    scales: [(f64, f64); 3],
) -> Errors {
    let mut worst = Errors::default();
    for spec in scales
        .into_iter()
        .flat_map(|(max, min)| all_specs(max, min))
    {
        worst = worst.max(check(&spec, &axis(&[0]), grid, shape).1);
        worst = worst.max(check(&spec, &axis(&[-1]), grid, shape).1);
    }
    worst
}

fn all_specs(max: f64, min: f64) -> Vec<Spec> {
    let mut specs = Vec::new();
    for mode in [Mode::Keras, Mode::Projection] {
        specs.push(Spec::max_norm(max).mode(mode));
        specs.push(Spec::min_max(min, max, 1.0).mode(mode));
        specs.push(Spec::min_max(min, max, 0.25).mode(mode));
        specs.push(Spec::unit().mode(mode));
    }
    specs
}

/// The exact norm of `data`, rounded to `T`.
fn exact_norm<T: Float>(data: &[T]) -> T {
    reference_norms(data, &walk(&[data.len()], &Axes::All))[0].rounded
}

/// Every spec over one slice of subnormals and zeros, into `worst`; returns its unit-norm
/// projection, whose norm the caller checks against 1 in its own precision.
fn check_tiny_slice<T: Float>(tiny: &[T], worst: &mut Errors) -> Vec<T> {
    for spec in all_specs(2.0, 0.5) {
        *worst = worst.max(check(&spec, &Axes::All, tiny, &[tiny.len()]).1);
    }
    check(
        &Spec::unit().mode(Mode::Projection),
        &Axes::All,
        tiny,
        &[tiny.len()],
    )
    .0
}

// ------------------------------------------------------------------ float64 norms

/// Every float64 norm within one ulp of the correctly rounded value at every length up to 2^24,
/// whatever the layout (one run, runs, wide columns, narrow columns), on every tier.
#[test]
fn float64_norms_are_within_one_ulp_at_every_length() {
    let mut rng = Rng::new(31);
    let mut worst = 0;
    let mut exact_count = 0usize;
    let mut total = 0usize;
    let lengths = [
        1usize,
        2,
        15,
        16,
        17,
        100,
        1000,
        4097,
        65_537,
        (1 << 20) + 5,
        1 << 22,
        1 << 24,
    ];
    for &len in &lengths {
        let kinds: &[&str] = if len >= 1 << 22 {
            &["normal", "positive"]
        } else {
            &["normal", "positive", "binades"]
        };
        for &kind in kinds {
            let data: Vec<f64> = (0..len)
                .map(|_| match kind {
                    "normal" => rng.normal(),
                    // A biased stream: the hard case for a plain sum.
                    "positive" => rng.normal().abs() + 0.5,
                    // Values over 200 binades.
                    _ => rng.normal() * 2f64.powf(rng.uniform(-100.0, 100.0)),
                })
                .collect();
            let mut layouts: Vec<(Vec<usize>, Axes)> = vec![(vec![len], Axes::All)];
            if len % 8 == 0 || len > 1000 {
                let rows = len / 8;
                layouts.push((vec![rows, 8], axis(&[0]))); // narrow columns
            }
            if len >= 4096 {
                layouts.push((vec![len / 512, 512], axis(&[0]))); // wide columns
                layouts.push((vec![512, len / 512], axis(&[-1]))); // runs
            }
            for (shape, axes) in layouts {
                let n: usize = shape.iter().product();
                let data = &data[..n];
                let w = walk(&shape, &axes);
                let reference = reference_norms(data, &w);
                let mut first: Option<Vec<f64>> = None;
                for tier in supported_tiers() {
                    let norms = norms_with_tier(data, &shape, &axes, tier).unwrap().values;
                    for (s, (&got, r)) in norms.iter().zip(&reference).enumerate() {
                        let d = ulps(got, r.rounded);
                        assert!(
                            d <= 1,
                            "{kind} {shape:?} {axes:?} {tier:?} slice {s}: {got} vs {} ({d} ulps)",
                            r.rounded
                        );
                        worst = worst.max(d);
                    }
                    match &first {
                        None => first = Some(norms),
                        Some(f) => assert_bits(&norms, f, &format!("{shape:?} {tier:?}")),
                    }
                }
                let norms = first.unwrap();
                exact_count += norms
                    .iter()
                    .zip(&reference)
                    .filter(|(&n, r)| n == r.rounded)
                    .count();
                total += norms.len();
            }
        }
    }
    eprintln!(
        "float64 norms up to 2^24 elements: worst {worst} ulp; {exact_count} of {total} correctly rounded"
    );
}

#[test]
fn float64_results_do_not_depend_on_the_thread_count() {
    let mut rng = Rng::new(32);
    let pools = thread_pools(3);
    for (shape, axes) in [
        (vec![1 << 22], Axes::All),
        (vec![2048, 1024], axis(&[0])),
        (vec![1024, 2048], axis(&[-1])),
        (vec![300_000, 10], axis(&[0])),
    ] {
        let len: usize = shape.iter().product();
        let w = walk(&shape, &axes);
        let scale = 4.0 / (w.slice_len as f64).sqrt();
        let data: Vec<f64> = (0..len).map(|_| rng.normal() * scale).collect();
        let c = Constraint::max_norm(2.0, axes.clone()).unwrap();
        let results: Vec<(Vec<f64>, Vec<f64>)> = pools
            .iter()
            .map(|pool| {
                pool.install(|| {
                    let mut out = data.clone();
                    c.apply_in_place(&mut out, &shape).unwrap();
                    let n = normclip_core::apply::norms(&data, &shape, &axes).unwrap();
                    (out, n.values)
                })
            })
            .collect();
        assert_same_for_all_thread_counts(&results, &format!("{shape:?}"));
        let reference = reference_norms(&data, &w);
        for (s, (&got, r)) in results[0].1.iter().zip(&reference).enumerate() {
            assert!(ulps(got, r.rounded) <= 1, "{shape:?} slice {s}");
        }
    }
}

// ------------------------------------------------------------------ float64 over- and underflow

/// Squares above ~1.3e154 overflow float64 (Keras: zeros from MaxNorm and UnitNorm, NaN from
/// MinMaxNorm); such slices are recomputed with exact power-of-two scaling.
#[test]
fn float64_squares_that_overflow_are_rescaled() {
    let mut worst = Errors::default();
    let cases: Vec<Vec<f64>> = vec![
        vec![2e154, -3e154, 1e154, 0.0],
        vec![1e200, 1e200, -1e200, 1.0],
        vec![1e300, -2e300, 5e299, 1e-300],
        // The norm itself beyond f64::MAX: sqrt(3) · 1.5e308.
        vec![1.5e308, -1.5e308, 1.5e308, 7.0],
    ];
    for data in &cases {
        // One slice per column of [4, 2]: the big column and a plain one.
        let mut grid = Vec::new();
        for &x in data {
            grid.push(x);
            grid.push(x / 1e300 + 0.5);
        }
        for spec in all_specs(2.0, 0.5) {
            let (out, e) = check(&spec, &Axes::All, data, &[4]);
            assert!(
                out.iter().all(|x| x.is_finite()),
                "{spec:?} {data:?}: {out:?}"
            );
            worst = worst.max(e);
            let (_, e) = check(&spec, &axis(&[0]), &grid, &[4, 2]);
            worst = worst.max(e);
        }
        // MaxNorm(2) lands on 2.
        let (out, _) = check(&Spec::max_norm(2.0), &Axes::All, data, &[4]);
        let n = exact_norm(&out);
        assert!(
            (n - 2.0).abs() <= 4.0 * f64::EPSILON,
            "{data:?}: norm {n} after MaxNorm(2)"
        );
    }
    // Norms: correctly rounded, inf only when the norm itself overflows.
    let n = normclip_core::apply::norms(&cases[0], &[4], &Axes::All)
        .unwrap()
        .values[0];
    assert_eq!(n, exact_norm(&cases[0]));
    let n = normclip_core::apply::norms(&cases[3], &[4], &Axes::All)
        .unwrap()
        .values[0];
    assert_eq!(n, f64::INFINITY);
    eprintln!("float64 overflowing squares: {worst:?}");
    assert!(worst.wide_slices > 0);
}

/// Squares of ~1e-160 are subnormal (they lose bits) and those of ~1e-170 vanish: recomputed with
/// exact scaling, such slices keep exact norms (and a zero slice stays zero).
#[test]
fn float64_squares_that_underflow_are_rescaled() {
    let mut worst = Errors::default();
    let cases: Vec<Vec<f64>> = vec![
        vec![1e-160, 3e-161, -2e-160, 1e-160],
        vec![1e-170, -1e-170, 1e-170, 2e-171],
        vec![1e-310, 2e-310, -5e-324, 0.0],
        vec![1e-200, 0.0, -0.0, 3e-200],
        vec![0.0, -0.0, 0.0, 0.0],
    ];
    for data in &cases {
        for spec in all_specs(2.0, 0.5) {
            let (out, e) = check(&spec, &Axes::All, data, &[4]);
            worst = worst.max(e);
            if data.iter().all(|&x| x == 0.0) {
                assert!(out
                    .iter()
                    .zip(data)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            }
        }
        let norm = normclip_core::apply::norms(data, &[4], &Axes::All)
            .unwrap()
            .values[0];
        assert_eq!(norm, exact_norm(data), "{data:?}");
        // Projection UnitNorm makes it a unit vector however small it is.
        let (out, _) = check(&Spec::unit().mode(Mode::Projection), &Axes::All, data, &[4]);
        if data.iter().any(|&x| x != 0.0) {
            let n = exact_norm(&out);
            assert!(
                (n - 1.0).abs() <= 2.0 * f64::EPSILON,
                "{data:?}: {out:?}, norm {n}"
            );
        }
    }
    // A long slice of tiny values (the vector loop, not only the short-run path).
    let long: Vec<f64> = (0..1000)
        .map(|i| (1.0 + i as f64 / 1000.0) * 1e-165)
        .collect();
    for spec in all_specs(2.0, 0.5) {
        worst = worst.max(check(&spec, &Axes::All, &long, &[1000]).1);
        worst = worst.max(check(&spec, &axis(&[0]), &long, &[100, 10]).1);
    }
    eprintln!("float64 underflowing squares: {worst:?}");
}

// ------------------------------------------------------------------ subnormal factors and norms

/// A factor or norm in the subnormal range keeps only a few significant bits: such slices take
/// the wide path (each output one correctly rounded product or quotient). The cases:
/// MaxNorm(1e-3) on [3e38, 1e-30] was 916 ulp off (and above the bound in projection mode);
/// projection UnitNorm on subnormal slices 752 ulp off.
#[test]
fn float32_subnormal_factors_and_norms_take_the_wide_path() {
    let mut worst = Errors::default();
    let big = [3e38f32, 1e-30];
    for mode in [Mode::Keras, Mode::Projection] {
        let (out, e) = check(&Spec::max_norm(1e-3).mode(mode), &Axes::All, &big, &[2]);
        worst = worst.max(e);
        assert_eq!(out[0], 1e-3f32, "{mode:?}: {out:?}");
        assert!(exact_norm(&out) <= 1e-3f32, "{mode:?}: above the bound");
    }
    // A factor that underflows float32 entirely: 1e-30 / 3e38.
    let (out, e) = check(
        &Spec::max_norm(1e-30),
        &Axes::All,
        &[3e38f32, 1.0, -3e38],
        &[3],
    );
    worst = worst.max(e);
    assert!(out[0] > 0.0 && out[2] < 0.0, "{out:?}");
    // Subnormal slices.
    let tiny = [1e-42f32, -2e-42, 7e-45, 0.0, 3e-43];
    let out = check_tiny_slice(&tiny, &mut worst);
    let n = exact_norm(&out);
    assert!((n - 1.0).abs() <= 2.0 * f32::EPSILON, "{out:?}: norm {n}");
    // The same inside larger tensors, as columns and runs, next to plain slices.
    let mut rng = Rng::new(33);
    let mut grid = vec![0.0f32; 64 * 40];
    for r in 0..64 {
        for c in 0..40 {
            grid[r * 40 + c] = match c % 4 {
                0 => (rng.normal() * 1e-43) as f32,
                1 => (rng.normal() * 1e37) as f32,
                2 => (rng.normal() * 1e-25) as f32,
                _ => rng.normal() as f32,
            };
        }
    }
    let scales = [(1e-3, 1e-4), (2.0, 0.5), (1e30, 1e20)];
    worst = worst.max(check_columns_and_runs(&grid, &[64, 40], scales));
    eprintln!("float32 subnormal factors and norms: {worst:?}");
    assert!(worst.wide_slices > 50);
    assert!(worst.wide == 0, "{worst:?}");
}

#[test]
fn float64_subnormal_factors_and_norms_take_the_wide_path() {
    let mut worst = Errors::default();
    // A factor of 1e-600: below f64 altogether.
    for mode in [Mode::Keras, Mode::Projection] {
        let (out, e) = check(
            &Spec::max_norm(1e-300).mode(mode),
            &Axes::All,
            &[1e300, 1e10],
            &[2],
        );
        worst = worst.max(e);
        assert_eq!(out[0], 1e-300, "{mode:?}: {out:?}");
    }
    // Subnormal norms.
    let tiny = [1e-310f64, -2e-310, 5e-324, 0.0, 3e-315];
    let out = check_tiny_slice(&tiny, &mut worst);
    let n = exact_norm(&out);
    assert!((n - 1.0).abs() <= 2.0 * f64::EPSILON, "{out:?}: norm {n}");
    // A factor above f64::MAX (min 1 over a norm of ~1e-320): zeros stay zeros, the rest
    // becomes finite.
    let (out, e) = check(
        &Spec::min_max(1.0, 2.0, 1.0).mode(Mode::Projection),
        &Axes::All,
        &[1e-320f64, 0.0, -0.0, 2e-321],
        &[4],
    );
    worst = worst.max(e);
    assert_eq!(
        (out[1].to_bits(), out[2].to_bits()),
        (0, (-0.0f64).to_bits())
    );
    assert!(out[0].is_finite() && out[0] > 0.9);
    let mut rng = Rng::new(34);
    let mut grid = vec![0.0f64; 48 * 24];
    for r in 0..48 {
        for c in 0..24 {
            grid[r * 24 + c] = match c % 4 {
                0 => rng.normal() * 1e-315,
                1 => rng.normal() * 1e300,
                2 => rng.normal() * 1e-200,
                _ => rng.normal(),
            };
        }
    }
    let scales = [(1e-300, 1e-305), (2.0, 0.5), (1e300, 1e200)];
    worst = worst.max(check_columns_and_runs(&grid, &[48, 24], scales));
    eprintln!("float64 subnormal factors and norms: {worst:?}");
    assert!(worst.wide_slices > 50);
}

// ------------------------------------------------------------------ epsilon

/// `epsilon: 0` would turn a zero slice into 0 / 0: rejected, naming the argument and the range.
/// A positive epsilon that rounds to 0 in float32 (1e-300) keeps zero slices zero all the same.
#[test]
fn epsilon_must_be_positive() {
    for bad in [0.0, -0.0, -1e-7, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = Constraint::max_norm(2.0, Axes::All)
            .unwrap()
            .with_epsilon(bad)
            .unwrap_err();
        assert_eq!(err.kind, normclip_core::ErrorKind::Range);
        assert_eq!(
            err.message,
            format!("epsilon: expected a finite number > 0, got {bad}")
        );
    }
    for eps in [1e-300, 1e-46, f64::from_bits(1)] {
        for spec in all_specs(2.0, 0.5) {
            let spec = spec.eps(eps);
            let data = [0.0f32, -0.0, 0.0, 3.0, 4.0, 0.0];
            let (out, _) = check(&spec, &axis(&[-1]), &data, &[2, 3]);
            assert_bits(&out[..3], &data[..3], &format!("{spec:?} float32"));
            let data = [0.0f64, -0.0, 0.0, 3.0, 4.0, 0.0];
            let (out, _) = check(&spec, &axis(&[-1]), &data, &[2, 3]);
            assert_bits(&out[..3], &data[..3], &format!("{spec:?} float64"));
        }
    }
}

/// A zero slice stays as it is even where the formula overflows: MinMaxNorm's `rate · min / eps`
/// at a zero norm is inf in float32 for min = 1e32 (Keras: 0 · inf = NaN).
#[test]
fn zero_slices_stay_zero_where_the_formula_overflows() {
    let zeros32 = [0.0f32, -0.0, 0.0, 1.0, 2.0, 3.0];
    let zeros64 = [0.0f64, -0.0, 0.0, 1.0, 2.0, 3.0];
    for mode in [Mode::Keras, Mode::Projection] {
        for rate in [1.0, 0.5] {
            let spec = Spec::min_max(1e32, 1e33, rate).mode(mode);
            let (out, _) = check(&spec, &axis(&[-1]), &zeros32, &[2, 3]);
            assert_bits(&out[..3], &zeros32[..3], &format!("{spec:?} float32"));
            let spec = Spec::min_max(1e300, 1e301, rate).mode(mode).eps(1e-20);
            let (out, _) = check(&spec, &axis(&[-1]), &zeros64, &[2, 3]);
            assert_bits(&out[..3], &zeros64[..3], &format!("{spec:?} float64"));
        }
    }
}
