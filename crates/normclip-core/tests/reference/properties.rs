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
        0 => spec.eps(1e-300), // 0 in float32
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
        // The tier's copy (copied and scaled task by task) gives the same bits.
        let kernels = normclip_core::kernels::Kernels::<T>::for_tier(tier).unwrap();
        let copy = c
            .prepare(data.len(), shape)
            .unwrap()
            .run_copy(data, kernels);
        assert_bits(&copy, &out, &format!("{what}: {tier:?} copy vs in place"));
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

/// How the data of a random case is drawn.
#[derive(Clone, Copy, PartialEq)]
enum Magnitudes {
    /// Normal values of one scale in [1e-3, 1e3].
    Typical,
    /// Each slice at its own scale anywhere in the type's range, from subnormal to near
    /// overflow, some slices spanning many binades: the wide path and the exact recomputation.
    Extreme,
}

fn random_value<T: Float>(rng: &mut Rng, magnitudes: Magnitudes, scale: f64) -> T {
    match magnitudes {
        Magnitudes::Typical => T::from_f64(rng.normal() * scale),
        Magnitudes::Extreme => {
            // A random binade of the type (subnormals included), a random mantissa, a sign.
            let (low, high) = if T::UNIT_ROUNDOFF > 1e-10 {
                (-149.0, 128.0)
            } else {
                (-1074.0, 1024.0)
            };
            let e = if rng.chance(0.7) {
                scale.log2() + rng.uniform(-8.0, 8.0)
            } else {
                rng.uniform(low, high)
            };
            let v =
                T::from_f64(rng.uniform(1.0, 2.0) * 2f64.powf(e.clamp(low, high - 1.0).floor()));
            if rng.chance(0.5) {
                v.negate()
            } else {
                v
            }
        }
    }
}

#[derive(Default)]
struct Worst {
    norm: u64,
    plain: u64,
    wide: u64,
    /// Of wide outputs against the formula evaluated exactly (not in 53-bit steps).
    wide_exact: u64,
    wide_slices: usize,
    /// Largest norm of a projected slice above its bound, in ulps of the bound (element-type
    /// path, wide path).
    projection_excess: u64,
    projection_excess_wide: u64,
}

fn property<T: Float>(seed: u64, cases: usize, magnitudes: Magnitudes) -> Worst {
    let mut rng = Rng::new(seed);
    let mut worst = Worst::default();
    let norm_limit = if T::UNIT_ROUNDOFF < 1e-10 { 1 } else { 2 };
    for case in 0..cases {
        let shape = random_shape(&mut rng);
        let axes = random_axes(&mut rng, shape.len());
        let w = walk(&shape, &axes);
        let len = w.slice_of.len();
        let scale = match magnitudes {
            Magnitudes::Typical => 10f64.powf(rng.uniform(-3.0, 3.0)),
            Magnitudes::Extreme if T::UNIT_ROUNDOFF > 1e-10 => {
                2f64.powf(rng.uniform(-150.0, 128.0))
            }
            Magnitudes::Extreme => 2f64.powf(rng.uniform(-1075.0, 1024.0)),
        };
        // In extreme mode each slice gets its own scale.
        let slice_scales: Vec<f64> = (0..w.slices)
            .map(|_| {
                if magnitudes == Magnitudes::Extreme && rng.chance(0.5) {
                    scale * 2f64.powf(rng.uniform(-60.0, 60.0))
                } else {
                    scale
                }
            })
            .collect();
        let mut data: Vec<T> = (0..len)
            .map(|i| {
                if rng.chance(0.05) {
                    T::ZERO
                } else {
                    random_value(&mut rng, magnitudes, slice_scales[w.slice_of[i] as usize])
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

        let reference = reference_norms(&data, &w);
        let typical = match magnitudes {
            Magnitudes::Typical => scale * (w.slice_len.max(1) as f64).sqrt(),
            // A bound near some slice's norm, or anywhere.
            Magnitudes::Extreme => {
                let n = reference
                    .get(rng.below(w.slices.max(1)))
                    .map_or(1.0, |n| n.as_f64());
                if n.is_finite() && n > 0.0 && rng.chance(0.7) {
                    n
                } else {
                    2f64.powf(rng.uniform(-140.0, 120.0))
                }
            }
        };
        let mut spec = random_spec(&mut rng, typical);
        if T::from_f64(spec.max).to_f64().is_infinite() {
            spec.max = T::MAX.to_f64(); // a bound float32 cannot hold is a test artefact
        }
        if spec.min > spec.max {
            spec.min = spec.max;
        }
        let what = format!("{what} {spec:?}");
        let c = spec.constraint(axes.clone());

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
        let norm_ulps = assert_norm_ulps(&core_norms, &reference, norm_limit, &what);
        worst.norm = worst.norm.max(norm_ulps.iter().copied().max().unwrap_or(0));

        let out = apply_all_tiers(&c, &data, &shape, &what);

        // From the crate's own norms: the element-type formula bit for bit, or (wide path)
        // within one ulp of the exact product.
        let with_crate_norms: Vec<RefNorm<T>> = core_norms
            .iter()
            .zip(&reference)
            .map(|(&n, r)| RefNorm {
                rounded: n,
                big: r.big,
            })
            .collect();
        let crate_ops = reference_ops(&spec, &with_crate_norms);
        for (i, (&x, &s)) in data.iter().zip(&w.slice_of).enumerate() {
            let op = crate_ops[s as usize];
            let expected = op.apply(x);
            let d = ulps(out[i], expected);
            if op.is_wide() {
                assert!(
                    d <= 1,
                    "{what}: element {i} (slice {s}, wide {op:?}): got {}, expected {expected}",
                    out[i]
                );
            } else {
                assert_eq!(
                    out[i].bits(),
                    expected.bits(),
                    "{what}: element {i} (slice {s}, {op:?}): got {}, expected {expected} (formula from the crate's norm {})",
                    out[i],
                    core_norms[s as usize]
                );
            }
        }

        // Fully independent: the formula from exact norms. Where the crate's norm is the
        // correctly rounded one, the output must be the reference's bits. Where it is k ulps off
        // (f32 squares are summed in f32 blocks of up to 16 terms), the factor moves by ~k ulps
        // and up to four roundings follow (rate * bound + (1 - rate) * n, / n, * x): 2 + 2k ulps.
        let ops = reference_ops(&spec, &reference);
        let expected = reference_apply(&spec, &data, &w, &reference);
        for (i, (&a, &b)) in out.iter().zip(&expected).enumerate() {
            let slice = w.slice_of[i] as usize;
            let d = ulps(a, b);
            let allowed = if ops[slice].is_wide() {
                1
            } else {
                allowed_ulps(norm_ulps[slice])
            };
            assert!(
                d <= allowed,
                "{what}: element {i} (slice {slice}, norm {} ulps off, {:?}): got {a}, expected {b}: {d} ulps > {allowed}",
                norm_ulps[slice],
                ops[slice]
            );
            if ops[slice].is_wide() {
                worst.wide = worst.wide.max(d);
            } else {
                worst.plain = worst.plain.max(d);
            }
        }
        worst.wide_slices += ops.iter().filter(|op| op.is_wide()).count();
        let exact_ops: Vec<Op<T>> = reference
            .iter()
            .map(|n| reference_op_exact(&spec, n))
            .collect();
        for (i, (&a, &s)) in out.iter().zip(&w.slice_of).enumerate() {
            if exact_ops[s as usize].is_wide() {
                let d = ulps(a, exact_ops[s as usize].apply(data[i]));
                assert!(
                    d <= 2,
                    "{what}: element {i}: {d} ulps from the exact formula"
                );
                worst.wide_exact = worst.wide_exact.max(d);
            }
        }

        // Projection: a slice moved onto its upper bound lands on it, up to the rounding of
        // its elements.
        if spec.mode == Mode::Projection && spec.kind != Kind::Unit && spec.rate == 1.0 {
            let after = reference_norms(&out, &w);
            let max = T::from_f64(spec.max);
            for (s, r) in reference.iter().enumerate() {
                if r.big.is_finite() && r.rounded > max && after[s].rounded > max {
                    let excess = ulps(after[s].rounded, max);
                    if ops[s].is_wide() {
                        worst.projection_excess_wide = worst.projection_excess_wide.max(excess);
                    } else {
                        worst.projection_excess = worst.projection_excess.max(excess);
                    }
                }
            }
        }
    }
    eprintln!(
        "{} {}: worst norm {} ulps; worst output {} ulps (element-type path), {} ulps (wide path, {} slices; {} ulps from the exact formula); projection: worst norm {} ulps above the bound ({} on the wide path)",
        T::NAME,
        if magnitudes == Magnitudes::Typical { "typical" } else { "extreme" },
        worst.norm,
        worst.plain,
        worst.wide,
        worst.wide_slices,
        worst.wide_exact,
        worst.projection_excess,
        worst.projection_excess_wide
    );
    worst
}

#[test]
fn random_tensors_f32() {
    let worst = property::<f32>(0x5EED_0001, 3000, Magnitudes::Typical);
    assert!(worst.norm <= 2 && worst.projection_excess <= 2);
}

#[test]
fn random_tensors_f64() {
    let worst = property::<f64>(0x5EED_0002, 2000, Magnitudes::Typical);
    assert!(worst.norm <= 1 && worst.projection_excess <= 2);
}

/// Random tensors of extreme magnitudes: many slices must take the wide path.
fn extreme_magnitudes<T: Float>(seed: u64) {
    let worst = property::<T>(seed, 1500, Magnitudes::Extreme);
    assert!(
        worst.wide_slices > 100,
        "the wide path was hardly exercised"
    );
}

#[test]
fn random_extreme_magnitudes_f32() {
    extreme_magnitudes::<f32>(0x5EED_0004);
}

#[test]
fn random_extreme_magnitudes_f64() {
    extreme_magnitudes::<f64>(0x5EED_0005);
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
