//! Property tests: random ranks, shapes, axis sets, constraints, modes, tiers and element types,
//! all checked against the independent scalar reference in `common`.

use super::common::*;
use normclip_core::apply::norms_with_tier;
use normclip_core::{Axes, Constraint, Mode};

/// Largest tensor a random case builds (keeps the whole suite fast).
const MAX_ELEMENTS: usize = 60_000;

fn random_dim(rng: &mut Rng) -> usize {
    match rng.below(12) {
        0 => {
            if rng.chance(0.25) {
                0
            } else {
                1
            }
        }
        1..=3 => 1,
        4..=7 => 2 + rng.below(5),
        8..=10 => 1 + rng.below(40),
        _ => 50 + rng.below(3000),
    }
}

fn random_shape(rng: &mut Rng) -> Vec<usize> {
    let rank = rng.below(7);
    let mut shape: Vec<usize> = (0..rank).map(|_| random_dim(rng)).collect();
    if rank > 0 && rng.chance(0.4) {
        // A narrow last axis (1..40), the case the flat-stream kernels exist for.
        shape[rank - 1] = 1 + rng.below(40);
    }
    while shape.iter().product::<usize>() > MAX_ELEMENTS {
        let largest = (0..rank).max_by_key(|&a| shape[a]).unwrap();
        shape[largest] = shape[largest].div_ceil(2);
    }
    shape
}

fn random_axes(rng: &mut Rng, rank: usize) -> Axes {
    match rng.below(10) {
        0 => Axes::All,
        1 => Axes::List(vec![]),
        _ => {
            let mut list: Vec<i64> = (0..rank as i64).filter(|_| rng.chance(0.5)).collect();
            rng.shuffle(&mut list);
            for a in list.iter_mut() {
                if rng.chance(0.5) {
                    *a -= rank as i64;
                }
            }
            Axes::List(list)
        }
    }
}

fn random_spec(rng: &mut Rng, typical: f64) -> Spec {
    let bound = |rng: &mut Rng| typical * rng.uniform(0.2, 3.0);
    let spec = match rng.below(3) {
        0 => Spec::max_norm(bound(rng)),
        1 => {
            let min = if rng.chance(0.2) { 0.0 } else { bound(rng) };
            let max = min + typical * rng.uniform(0.0, 2.0);
            let rate = match rng.below(3) {
                0 => 0.0,
                1 => 1.0,
                _ => rng.unit(),
            };
            Spec::min_max(min, max, rate)
        }
        _ => Spec::unit(),
    };
    let spec = spec.mode(if rng.chance(0.5) {
        Mode::Keras
    } else {
        Mode::Projection
    });
    match rng.below(8) {
        0 => spec.eps(0.0),
        1 => spec.eps(10f64.powf(-rng.uniform(1.0, 9.0))),
        _ => spec,
    }
}

/// Every supported tier gives the same bits; returns that output.
fn apply_all_tiers<T: Float>(c: &Constraint, data: &[T], shape: &[usize], what: &str) -> Vec<T> {
    let mut first: Option<Vec<T>> = None;
    for tier in supported_tiers() {
        let mut out = data.to_vec();
        c.apply_in_place_with_tier(&mut out, shape, tier)
            .unwrap_or_else(|e| panic!("{what}: {tier:?}: {e}"));
        match &first {
            None => first = Some(out),
            Some(f) => assert_bits(&out, f, &format!("{what}: {tier:?} vs first tier")),
        }
    }
    let out = first.unwrap();
    let copy = c.apply_copy(data, shape).unwrap();
    assert_bits(&copy, &out, &format!("{what}: apply_copy vs in place"));
    out
}

fn property<T: Float>(seed: u64, cases: usize) {
    let mut rng = Rng::new(seed);
    let (mut worst_norm, mut worst_out) = (0u64, 0u64);
    for case in 0..cases {
        let shape = random_shape(&mut rng);
        let axes = random_axes(&mut rng, shape.len());
        let w = walk(&shape, &axes);
        let len = w.slice_of.len();
        let scale = 10f64.powf(rng.uniform(-3.0, 3.0));
        let mut data: Vec<T> = (0..len)
            .map(|_| {
                if rng.chance(0.05) {
                    T::ZERO
                } else {
                    T::from_f64(rng.normal() * scale)
                }
            })
            .collect();
        if w.slices > 0 && rng.chance(0.3) {
            // One whole slice of zeros (some negative zeros).
            let z = rng.below(w.slices) as u32;
            for (x, &s) in data.iter_mut().zip(&w.slice_of) {
                if s == z {
                    *x = if rng.chance(0.5) {
                        T::ZERO
                    } else {
                        T::ZERO.negate()
                    };
                }
            }
        }
        let what = format!("{} case {case}: shape {shape:?} axes {axes:?}", T::NAME);

        if rng.chance(0.1) {
            let out = apply_all_tiers(&Constraint::NonNeg, &data, &shape, &what);
            assert_bits(&out, &reference_non_neg(&data), &format!("{what}: NonNeg"));
            continue;
        }

        let typical = scale * (w.slice_len.max(1) as f64).sqrt();
        let spec = random_spec(&mut rng, typical);
        let what = format!("{what} {spec:?}");
        let c = spec.constraint(axes.clone());
        let reference = reference_norms(&data, &w);

        // Norms: shape, accuracy, every tier the same bits.
        let mut core_norms: Option<Vec<T>> = None;
        for tier in supported_tiers() {
            let norms = norms_with_tier(&data, &shape, &axes, tier).unwrap();
            assert_eq!(norms.shape, w.norms_shape, "{what}: norms shape");
            assert_eq!(norms.values.len(), w.slices, "{what}: norms count");
            match &core_norms {
                None => core_norms = Some(norms.values),
                Some(first) => {
                    assert_bits(&norms.values, first, &format!("{what}: norms {tier:?}"))
                }
            }
        }
        let core_norms = core_norms.unwrap();
        // The brief's 1e-6 in f32; in f64 the recursive-summation bound (far tighter).
        let norm_tol = if T::UNIT_ROUNDOFF < 1e-10 {
            1e-13f64.max(w.slice_len as f64 * T::UNIT_ROUNDOFF * 4.0)
        } else {
            1e-6
        };
        for (s, (&n, &r)) in core_norms.iter().zip(&reference).enumerate() {
            assert_norm_close(
                n.to_f64(),
                T::from_f64(r).to_f64(),
                norm_tol,
                &format!("{what}: slice {s}"),
            );
        }

        let out = apply_all_tiers(&c, &data, &shape, &what);

        // The formula, bit for bit, from the norms the crate itself reports.
        let ops: Vec<Op<T>> = core_norms
            .iter()
            .map(|&n| reference_op_elem(&spec, n))
            .collect();
        let exact: Vec<T> = data
            .iter()
            .zip(&w.slice_of)
            .map(|(&x, &s)| ops[s as usize].apply(x))
            .collect();
        assert_bits(
            &out,
            &exact,
            &format!("{what}: formula from the crate's norms"),
        );

        // Fully independent: the formula from exact norms. Where the crate's norm is the
        // correctly rounded one, the output must be the reference's bits. Where it is k ulps off
        // (f32 squares are summed in f32 blocks of up to 16 terms: k <= 2 seen, within the 1e-6
        // above), the factor moves by ~k ulps and up to four roundings follow
        // (rate * bound + (1 - rate) * n, / n, * x): 2 + 2k ulps. f64 norms carry the
        // accumulation error of a long slice into the last bits.
        let expected = reference_apply(&spec, &data, &w, &reference);
        let f64_slack = if T::UNIT_ROUNDOFF < 1e-10 {
            w.slice_len as u64
        } else {
            0
        };
        let norm_ulps: Vec<u64> = core_norms
            .iter()
            .zip(&reference)
            .map(|(&n, &r)| ulps(n, T::from_f64(r)))
            .collect();
        for (s, &d) in norm_ulps.iter().enumerate() {
            assert!(
                d <= 3 + f64_slack,
                "{what}: slice {s}: norm {} is {d} ulps from the correctly rounded {}",
                core_norms[s],
                T::from_f64(reference[s])
            );
        }
        for (i, (&a, &b)) in out.iter().zip(&expected).enumerate() {
            let slice = w.slice_of[i] as usize;
            let allowed = if norm_ulps[slice] == 0 {
                0
            } else {
                2 + 2 * norm_ulps[slice] + f64_slack
            };
            let d = ulps(a, b);
            assert!(
                d <= allowed,
                "{what}: element {i} (slice {slice}, norm {} ulps off): got {a}, expected {b}: {d} ulps > {allowed}",
                norm_ulps[slice]
            );
            worst_out = worst_out.max(d);
        }
        worst_norm = worst_norm.max(norm_ulps.iter().copied().max().unwrap_or(0));
    }
    eprintln!(
        "{}: worst norm {worst_norm} ulps, worst output {worst_out} ulps",
        T::NAME
    );
}

#[test]
fn random_tensors_f32() {
    property::<f32>(0x5EED_0001, 3000);
}

#[test]
fn random_tensors_f64() {
    property::<f64>(0x5EED_0002, 2000);
}

/// Many small tensors: the shapes where the planner merges and drops axes most.
#[test]
fn random_small_tensors_f32() {
    let mut rng = Rng::new(0x5EED_0003);
    for case in 0..3000 {
        let rank = rng.below(7);
        let shape: Vec<usize> = (0..rank)
            .map(|_| rng.below(4) + usize::from(rng.chance(0.9)))
            .collect();
        let axes = random_axes(&mut rng, rank);
        let w = walk(&shape, &axes);
        let data: Vec<f32> = (0..w.slice_of.len())
            .map(|_| rng.normal() as f32 * 2.0)
            .collect();
        let spec = random_spec(&mut rng, (w.slice_len.max(1) as f64).sqrt() * 2.0);
        let what = format!("small case {case}: shape {shape:?} axes {axes:?} {spec:?}");
        let out = apply_all_tiers(&spec.constraint(axes.clone()), &data, &shape, &what);
        let expected = reference_apply(&spec, &data, &w, &reference_norms(&data, &w));
        assert_ulps(&out, &expected, 4, &what);
    }
}
