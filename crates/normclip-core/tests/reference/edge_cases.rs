//! Edge cases and golden values, each against the scalar reference in `common` or a literal.

use super::common::*;
use normclip_core::apply::norms_with_tier;
use normclip_core::{Axes, Constraint, Mode};

fn axis(list: &[i64]) -> Axes {
    Axes::List(list.to_vec())
}

/// Applies with every supported tier, checks they agree bit for bit, returns the output.
fn apply<T: Float>(c: &Constraint, data: &[T], shape: &[usize]) -> Vec<T> {
    let mut first: Option<Vec<T>> = None;
    for tier in supported_tiers() {
        let mut out = data.to_vec();
        c.apply_in_place_with_tier(&mut out, shape, tier).unwrap();
        match &first {
            None => first = Some(out),
            Some(f) => assert_bits(&out, f, &format!("{c:?} {shape:?}: {tier:?}")),
        }
    }
    first.unwrap()
}

/// Applies `spec` and checks the result against the reference: bit for bit in every slice whose
/// norm the crate computes correctly rounded (most of them here), within 4 ulps in the others;
/// within one ulp of the exact product in slices on the wide path.
fn check_exact<T: Float>(spec: &Spec, axes: Axes, data: &[T], shape: &[usize]) -> Vec<T> {
    let w = walk(shape, &axes);
    let out = apply(&spec.constraint(axes.clone()), data, shape);
    let exact = reference_norms(data, &w);
    let ops = reference_ops(spec, &exact);
    let expected = reference_apply(spec, data, &w, &exact);
    let crate_norms = normclip_core::apply::norms(data, shape, &axes)
        .unwrap()
        .values;
    for (i, &s) in w.slice_of.iter().enumerate() {
        let s = s as usize;
        let same_norm = crate_norms[s].bits() == exact[s].rounded.bits()
            || (crate_norms[s].is_nan() && exact[s].rounded.is_nan());
        let d = ulps(out[i], expected[i]);
        if ops[s].is_wide() {
            assert!(
                d <= 1,
                "{spec:?} {shape:?}: element {i} (wide): got {}, expected {}",
                out[i],
                expected[i]
            );
        } else if same_norm {
            assert_eq!(
                out[i].bits(),
                expected[i].bits(),
                "{spec:?} {shape:?}: element {i}: got {}, expected {}",
                out[i],
                expected[i]
            );
        } else {
            assert!(
                d <= 4,
                "{spec:?} {shape:?}: element {i}: {} vs {}",
                out[i],
                expected[i]
            );
        }
    }
    out
}

fn all_specs() -> Vec<Spec> {
    let mut specs = Vec::new();
    for mode in [Mode::Keras, Mode::Projection] {
        specs.push(Spec::max_norm(2.0).mode(mode));
        specs.push(Spec::min_max(0.5, 3.0, 1.0).mode(mode));
        specs.push(Spec::min_max(0.5, 3.0, 0.25).mode(mode));
        specs.push(Spec::unit().mode(mode));
    }
    specs
}

// ---------------------------------------------------------------- golden values

#[test]
fn keras_max_norm_golden_3x4() {
    // Columns [0,0,0], [1,0,0], [3,0,0], [3,3,3] (shape 3×4, axis 0), Keras' own test.
    let w = [
        0.0f32, 1.0, 3.0, 3.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 3.0,
    ];
    let c = Constraint::max_norm(2.0, Axes::default()).unwrap();
    let out = apply(&c, &w, &[3, 4]);
    let column = |c: usize| [out[c], out[4 + c], out[8 + c]];
    assert_eq!(column(0), [0.0, 0.0, 0.0]);
    // Norm 1 is within bounds; only the eps shrink 1 / (1 + 1e-7) moves it.
    let shrink = 1.0f32 / (1e-7f32 + 1.0);
    assert_eq!(column(1), [shrink, 0.0, 0.0]);
    assert!((column(1)[0] - 1.0).abs() < 1e-6);
    assert_eq!(column(2), [2.0, 0.0, 0.0]);
    let third = 2.0 / 3f64.sqrt();
    for v in column(3) {
        assert!((v as f64 - third).abs() < 1e-6, "{v} vs {third}");
    }
    check_exact(&Spec::max_norm(2.0), axis(&[0]), &w, &[3, 4]);
    // Same in f64.
    let w64: Vec<f64> = w.iter().map(|&x| x as f64).collect();
    check_exact(&Spec::max_norm(2.0), axis(&[0]), &w64, &[3, 4]);
}

#[test]
fn tfjs_golden_1d() {
    let w = [-1.0f32, 2.0, 0.0, 4.0, -5.0, 6.0];
    let golden = [
        -0.2208630521,
        0.4417261043,
        0.0,
        0.8834522086,
        -1.104315261,
        1.325178313,
    ];
    let max = apply(&Constraint::max_norm(2.0, axis(&[0])).unwrap(), &w, &[6]);
    let unit = apply(&Constraint::unit_norm(axis(&[0])).unwrap(), &w, &[6]);
    for i in 0..6 {
        assert!((max[i] as f64 - golden[i]).abs() <= 1e-6 * golden[i].abs().max(1e-30));
        assert!((unit[i] as f64 - golden[i] / 2.0).abs() <= 1e-6 * golden[i].abs().max(1e-30));
    }
    // The whole tensor (axis None) is the same slice for a 1-D tensor.
    let all = apply(&Constraint::max_norm(2.0, Axes::All).unwrap(), &w, &[6]);
    assert_bits(&all, &max, "axis None vs axis 0 on 1-D");
    check_exact(&Spec::max_norm(2.0), axis(&[0]), &w, &[6]);
    check_exact(&Spec::unit(), axis(&[-1]), &w, &[6]);
}

#[test]
fn eps_shrinks_a_compliant_slice() {
    // Norm 1 under MaxNorm(2): factor 1 / (1 + 1e-7) in f32: 1 + 1e-7 rounds to 1 + 2^-23, and
    // the quotient to 1 - 2^-23 (two ulps below 1).
    let mut w = [0.6f32, 0.8];
    let n = norms_with_tier(&w, &[2], &Axes::All, normclip_core::Tier::Portable).unwrap();
    assert_eq!(n.values, vec![1.0]);
    let factor = 1.0f32 / (1e-7f32 + 1.0f32);
    assert_eq!(factor, 1.0 - f32::EPSILON);
    Constraint::max_norm(2.0, Axes::All)
        .unwrap()
        .apply_in_place(&mut w, &[2])
        .unwrap();
    assert_eq!(w, [0.6f32 * factor, 0.8f32 * factor]);
    assert!(w[0] < 0.6 && w[1] < 0.8);
    // Projection mode leaves it alone.
    let mut p = [0.6f32, 0.8];
    Constraint::max_norm(2.0, Axes::All)
        .unwrap()
        .with_mode(Mode::Projection)
        .unwrap()
        .apply_in_place(&mut p, &[2])
        .unwrap();
    assert_eq!(p, [0.6, 0.8]);
    // 1e5 applications shrink a norm-1 slice by ~1.1% in f32 (Keras' documented drift).
    let mut v = [0.6f32, 0.8];
    let c = Constraint::max_norm(2.0, Axes::All).unwrap();
    for _ in 0..100_000 {
        c.apply_in_place(&mut v, &[2]).unwrap();
    }
    let norm = (v[0] as f64).hypot(v[1] as f64);
    assert!(
        norm < 0.995 && norm > 0.98,
        "after 1e5 applications: {norm}"
    );
}

// ---------------------------------------------------------------- shapes

#[test]
fn size_zero_tensors() {
    for shape in [
        vec![0usize],
        vec![0, 4],
        vec![4, 0],
        vec![3, 0, 5],
        vec![2, 3, 0],
    ] {
        for axes in [Axes::All, axis(&[]), axis(&[0]), axis(&[-1])] {
            for spec in all_specs() {
                let mut empty: Vec<f32> = Vec::new();
                spec.constraint(axes.clone())
                    .apply_in_place(&mut empty, &shape)
                    .unwrap();
                let n = normclip_core::apply::norms(&empty, &shape, &axes).unwrap();
                let w = walk(&shape, &axes);
                assert_eq!(n.shape, w.norms_shape, "{shape:?} {axes:?}");
                // A slice with no elements has norm 0 (kept axes can be non-empty: [0, 4] axis 0).
                assert_eq!(n.values, vec![0.0; w.slices], "{shape:?} {axes:?}");
            }
            let mut empty: Vec<f64> = Vec::new();
            Constraint::NonNeg
                .apply_in_place(&mut empty, &shape)
                .unwrap();
        }
    }
    // Radial with zero channels or filters.
    let mut empty: Vec<f32> = Vec::new();
    Constraint::Radial
        .apply_in_place(&mut empty, &[3, 3, 0, 4])
        .unwrap();
}

#[test]
fn rank_zero_scalars() {
    for (x, max_expected) in [(5.0f32, 2.0f32), (-5.0, -2.0), (0.0, 0.0), (2.0, 2.0)] {
        let out = apply(&Constraint::max_norm(2.0, Axes::All).unwrap(), &[x], &[]);
        assert_eq!(out, [max_expected], "MaxNorm(2) of scalar {x}");
        let out = apply(&Constraint::max_norm(2.0, axis(&[])).unwrap(), &[x], &[]);
        assert_eq!(out, [max_expected]);
        for spec in all_specs() {
            check_exact(&spec, Axes::All, &[x], &[]);
            check_exact(&spec, axis(&[]), &[x as f64], &[]);
        }
        let n = normclip_core::apply::norms(&[x], &[], &Axes::All).unwrap();
        assert_eq!((n.values, n.shape), (vec![x.abs()], vec![]));
    }
    assert_eq!(apply(&Constraint::NonNeg, &[-3.0f32], &[]), [0.0]);
}

#[test]
fn one_element_slices_clip_magnitudes() {
    // axis [] reduces nothing: each element is its own slice, MaxNorm clips |w|.
    let w = [-5.0f32, 1.0, 3.0, -0.5, 0.0, 2.0];
    let out = apply(&Constraint::max_norm(2.0, axis(&[])).unwrap(), &w, &[2, 3]);
    let shrink = |x: f32| x * (x.abs() / (1e-7f32 + x.abs()));
    assert_eq!(out, [-2.0, shrink(1.0), 2.0, shrink(-0.5), 0.0, 2.0]);
    // The same through size-1 axes: [6, 1] axis 1 has one-element slices too.
    let out2 = apply(&Constraint::max_norm(2.0, axis(&[1])).unwrap(), &w, &[6, 1]);
    assert_bits(&out2, &out, "[6,1] axis 1 vs [2,3] axis []");
    for spec in all_specs() {
        check_exact(&spec, axis(&[]), &w, &[2, 3]);
        check_exact(&spec, axis(&[1]), &w, &[6, 1]);
    }
}

#[test]
fn zero_slices_stay_zero() {
    // Column 1 is all zeros (with a negative zero), column 0 is not.
    let w = [3.0f32, 0.0, 4.0, -0.0, 0.0, 0.0];
    for spec in all_specs() {
        let out = check_exact(&spec, axis(&[0]), &w, &[3, 2]);
        assert!(out.iter().all(|x| !x.is_nan()), "{spec:?}: {out:?}");
        assert_eq!(out[1].to_bits(), 0.0f32.to_bits(), "{spec:?}");
        assert_eq!(
            out[3].to_bits(),
            (-0.0f32).to_bits(),
            "{spec:?}: -0 keeps its sign"
        );
        assert_eq!(out[5], 0.0, "{spec:?}");
    }
    // The whole tensor zero, every axis form, f64 too.
    let zeros = vec![0.0f64; 24];
    for axes in [Axes::All, axis(&[]), axis(&[0]), axis(&[1, 2]), axis(&[-1])] {
        for spec in all_specs() {
            let out = apply(&spec.constraint(axes.clone()), &zeros, &[2, 3, 4]);
            assert!(
                out.iter().all(|&x| x == 0.0 && x.to_bits() == 0),
                "{spec:?}"
            );
        }
    }
}

// ---------------------------------------------------------------- special values

#[test]
fn nan_poisons_its_slice_only() {
    // Column 0 holds a NaN; column 1 is over the bound; column 2 is compliant.
    let w = [1.0f32, 3.0, 1.5, f32::NAN, 4.0, 1.5, 2.0, 0.0, 0.0];
    for spec in all_specs() {
        if spec.kind == Kind::Unit && spec.mode == Mode::Projection {
            continue; // see projection_nan_propagates_like_the_other_constraints
        }
        let out = check_exact(&spec, axis(&[0]), &w, &[3, 3]);
        assert!(
            out[0].is_nan() && out[3].is_nan() && out[6].is_nan(),
            "{spec:?}: {out:?}"
        );
        assert!(!out[1].is_nan() && !out[2].is_nan(), "{spec:?}");
    }
    let n = normclip_core::apply::norms(&w, &[3, 3], &axis(&[0])).unwrap();
    assert!(n.values[0].is_nan() && n.values[1] == 5.0);
}

#[test]
fn infinity_gives_nan_for_itself_and_zeros_elsewhere_under_max_norm() {
    // Keras: n = inf, factor = max / (eps + inf) = 0: inf * 0 = NaN, finite * 0 = ±0.
    let w = [f32::INFINITY, 1.0, -2.0, 0.0, 1.0, 1.0];
    let out = apply(&Constraint::max_norm(2.0, axis(&[0])).unwrap(), &w, &[3, 2]);
    assert!(out[0].is_nan());
    assert_eq!(out[2].to_bits(), (-0.0f32).to_bits(), "-2 * 0");
    assert_eq!(out[4].to_bits(), 0.0f32.to_bits());
    // Column 1 ([1, 0, 1], norm √2) is within the bound: only the eps shrink.
    let shrink = 2f32.sqrt() / (1e-7 + 2f32.sqrt());
    assert_eq!([out[1], out[3], out[5]], [shrink, 0.0, shrink]);
    let neg = [-2.0f32, f32::NEG_INFINITY, 3.0];
    let out = apply(&Constraint::max_norm(2.0, Axes::All).unwrap(), &neg, &[3]);
    assert_eq!(out[0].to_bits(), (-0.0f32).to_bits());
    assert!(out[1].is_nan());
    assert_eq!(out[2].to_bits(), 0.0f32.to_bits());
    // Every Keras-mode constraint against the reference (MinMax: 0 * inf = NaN for rate 1 too,
    // as in Keras; UnitNorm: x / inf).
    for spec in all_specs().into_iter().filter(|s| s.mode == Mode::Keras) {
        check_exact(&spec, axis(&[0]), &w, &[3, 2]);
        check_exact(&spec, Axes::All, &neg.map(|x| x as f64), &[3]);
    }
}

#[test]
fn denormal_slices() {
    // A column of f32 denormals next to a normal column: squares of 1e-40 underflow in f32, the
    // exact norm does not. Keras-mode MaxNorm and UnitNorm give the same result either way.
    let w = [1e-40f32, 3.0, -1e-40, 4.0, 1e-40, 0.0];
    for spec in [
        Spec::max_norm(2.0),
        Spec::unit(),
        Spec::min_max(0.0, 1.0, 0.5),
    ] {
        check_exact(&spec, axis(&[0]), &w, &[3, 2]);
    }
    // MaxNorm in projection mode: far below the bound, untouched.
    let out = check_exact(
        &Spec::max_norm(2.0).mode(Mode::Projection),
        axis(&[0]),
        &w,
        &[3, 2],
    );
    assert_eq!(out[0].to_bits(), 1e-40f32.to_bits());
    // f64 denormals (their squares underflow in f64 too; the reference sees the same zeros).
    let w64 = [1e-310f64, 3.0, -1e-310, 4.0];
    for spec in all_specs().into_iter().filter(|s| s.mode == Mode::Keras) {
        check_exact(&spec, axis(&[0]), &w64, &[2, 2]);
    }
}

#[test]
fn squares_overflowing_f32_scale_to_the_true_bound() {
    // Elements ~1e20: squares 1e40 overflow f32 but the norm (~1.7e20) is finite: Keras would
    // zero the slice, the crate scales it onto the bound.
    let w = [1e20f32, 1.0, 1e20, 1.0, 1e20, 1.0];
    let n = normclip_core::apply::norms(&w, &[3, 2], &axis(&[0])).unwrap();
    assert_norm_close(
        n.values[0] as f64,
        1e20f32 as f64 * 3f64.sqrt(),
        1e-6,
        "1e20 column",
    );
    for spec in all_specs() {
        let out = check_exact(&spec, axis(&[0]), &w, &[3, 2]);
        assert!(out.iter().all(|x| x.is_finite()), "{spec:?}: {out:?}");
    }
    let out = apply(&Constraint::max_norm(2.0, axis(&[0])).unwrap(), &w, &[3, 2]);
    let col0 = (0..3)
        .map(|r| (out[2 * r] as f64).powi(2))
        .sum::<f64>()
        .sqrt();
    assert_norm_close(col0, 2.0, 1e-6, "1e20 column after MaxNorm(2)");

    // Near f32::MAX: the norm itself (~5.2e38) overflows f32; the factor comes from f64.
    let big = [3e38f32, 3e38, -3e38];
    for max in [2.0, 0.5] {
        let out = apply(&Constraint::max_norm(max, Axes::All).unwrap(), &big, &[3]);
        let norm = out.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        assert_norm_close(norm, max, 1e-6, &format!("[3e38; 3] after MaxNorm({max})"));
        assert!(out[2] < 0.0);
    }
    // Keras mode against the reference (factor from the f64 formula, rounded to f32).
    check_exact(&Spec::max_norm(2.0), Axes::All, &big, &[3]);
    check_exact(&Spec::min_max(0.5, 3.0, 0.25), Axes::All, &big, &[3]);
}

#[test]
fn non_neg_zeroes_negatives_and_keeps_nan_bits() {
    let payload_nan = f32::from_bits(0x7fc0_1234);
    let negative_nan = f32::from_bits(0xffc0_0001);
    let w = [
        -1.0f32,
        -0.0,
        0.0,
        2.5,
        f32::NAN,
        payload_nan,
        negative_nan,
        f32::NEG_INFINITY,
        f32::INFINITY,
        -1e-40,
        1e-40,
        f32::MIN,
    ];
    let out = apply(&Constraint::NonNeg, &w, &[12]);
    assert_bits(&out, &reference_non_neg(&w), "NonNeg specials");
    assert_eq!(
        out[1].to_bits(),
        0,
        "-0 becomes +0, as Keras 3's backends return"
    );
    assert_eq!(out[5].to_bits(), 0x7fc0_1234);
    assert_eq!(out[6].to_bits(), 0xffc0_0001);
    assert_eq!(out[0].to_bits(), 0);
    // Any shape, f64, long buffers (the vector loop and its tail).
    let mut rng = Rng::new(7);
    for len in [0usize, 1, 7, 16, 33, 1000, 70_001] {
        let data: Vec<f64> = (0..len).map(|_| rng.normal()).collect();
        let out = apply(&Constraint::NonNeg, &data, &[len]);
        assert_bits(
            &out,
            &reference_non_neg(&data),
            &format!("NonNeg len {len}"),
        );
    }
}

// ---------------------------------------------------------------- the skip path

#[test]
fn compliant_max_norm_slices_are_bit_identical() {
    // MaxNorm(3) in f32: columns with norms in [2, 3] get a factor of exactly 1.0 (eps + n
    // rounds to n), so they must come back bit for bit — including -0 and denormals.
    let mut rng = Rng::new(11);
    let (rows, cols) = (64, 48);
    let mut w = vec![0.0f32; rows * cols];
    for c in 0..cols {
        let target = match c % 3 {
            0 => 2.0,
            1 => 2.5 + rng.unit() * 0.5,
            _ => 10.0, // over the bound: this column is rewritten
        };
        let raw: Vec<f64> = (0..rows).map(|_| rng.normal()).collect();
        let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
        for r in 0..rows {
            w[r * cols + c] = (raw[r] * target / norm) as f32;
        }
        if c % 3 != 2 {
            w[c] = -0.0;
            w[cols + c] = 1e-41;
        }
    }
    let n = normclip_core::apply::norms(&w, &[rows, cols], &axis(&[0])).unwrap();
    let out = apply(
        &Constraint::max_norm(3.0, axis(&[0])).unwrap(),
        &w,
        &[rows, cols],
    );
    for c in 0..cols {
        let value = n.values[c];
        let factor = value.min(3.0) / (1e-7 + value);
        for r in 0..rows {
            let (before, after) = (w[r * cols + c], out[r * cols + c]);
            if (2.0..=3.0).contains(&value) {
                assert_eq!(factor, 1.0);
                assert_eq!(
                    after.to_bits(),
                    before.to_bits(),
                    "column {c} (norm {value})"
                );
            } else {
                assert_eq!(after, before * factor, "column {c}");
            }
        }
    }
    // A norm of exactly 2 (the lower edge of the skip range).
    let edge = [2.0f32, 0.0, 0.0];
    assert_bits(
        &apply(&Constraint::max_norm(2.0, Axes::All).unwrap(), &edge, &[3]),
        &edge,
        "norm exactly 2",
    );
}

#[test]
fn projection_leaves_compliant_slices_bit_identical() {
    let mut rng = Rng::new(12);
    let shape = [7, 5, 33];
    let data: Vec<f64> = (0..7 * 5 * 33).map(|_| rng.normal()).collect();
    let axes = axis(&[0, 2]);
    let w = walk(&shape, &axes);
    let norms: Vec<f64> = reference_norms(&data, &w)
        .iter()
        .map(|n| n.rounded)
        .collect();
    // Bounds around the median norm: some slices inside, some outside.
    let mut sorted = norms.clone();
    sorted.sort_by(f64::total_cmp);
    let (lo, hi) = (sorted[1], sorted[3]);
    let spec = Spec::min_max(lo, hi, 0.7).mode(Mode::Projection);
    let out = check_exact(&spec, axes, &data, &shape);
    let mut untouched = 0;
    for (i, &s) in w.slice_of.iter().enumerate() {
        let n = norms[s as usize];
        if n >= lo && n <= hi {
            assert_eq!(out[i].to_bits(), data[i].to_bits());
            untouched += 1;
        } else {
            assert_ne!(out[i], data[i]);
        }
    }
    assert!(untouched > 0);
}

// ---------------------------------------------------------------- validation

#[test]
fn invalid_calls_leave_the_buffer_unchanged() {
    let original: Vec<f32> = (0..24).map(|i| i as f32 - 7.5).collect();
    let max = |axes: Axes| Constraint::max_norm(2.0, axes).unwrap();
    let cases: Vec<(Constraint, Vec<usize>)> = vec![
        (max(axis(&[2])), vec![4, 6]),          // out of range
        (max(axis(&[-3])), vec![4, 6]),         // out of range, negative
        (max(axis(&[1, -1])), vec![4, 6]),      // the same axis twice
        (max(axis(&[0])), vec![]),              // rank 0 has no axes
        (max(axis(&[0])), vec![5, 5]),          // length mismatch
        (max(Axes::All), vec![25]),             // length mismatch
        (Constraint::NonNeg, vec![2, 3]),       // length mismatch
        (Constraint::Radial, vec![2, 3, 4]),    // not rank 4
        (Constraint::Radial, vec![2, 3, 2, 2]), // not square
        (Constraint::Radial, vec![1, 1, 4, 6]), // 1×1
        (max(axis(&[0])), vec![usize::MAX, 2]), // overflowing shape
        (Constraint::unit_norm(axis(&[3])).unwrap(), vec![2, 3, 4]),
    ];
    for (c, shape) in cases {
        for tier in supported_tiers() {
            let mut data = original.clone();
            let result = c.apply_in_place_with_tier(&mut data, &shape, tier);
            assert!(result.is_err(), "{c:?} {shape:?} should fail");
            assert_bits(&data, &original, &format!("{c:?} {shape:?} after an error"));
        }
        let mut data64: Vec<f64> = original.iter().map(|&x| x as f64).collect();
        assert!(c.apply_in_place(&mut data64, &shape).is_err());
        assert!(data64.iter().zip(&original).all(|(&a, &b)| a == b as f64));
        assert!(c.apply_copy(&original, &shape).is_err());
    }
    assert!(normclip_core::apply::norms(&original, &[4, 6], &axis(&[2])).is_err());
    assert!(normclip_core::apply::norms(&original, &[4, 5], &axis(&[0])).is_err());
    // Bad parameters never make a constraint at all.
    assert!(Constraint::max_norm(-1.0, Axes::default()).is_err());
    assert!(Constraint::max_norm(f64::NAN, Axes::default()).is_err());
    assert!(Constraint::max_norm(f64::INFINITY, Axes::default()).is_err());
    assert!(Constraint::min_max_norm(2.0, 1.0, 1.0, Axes::default()).is_err());
    assert!(Constraint::min_max_norm(0.0, 1.0, -0.1, Axes::default()).is_err());
    assert!(Constraint::min_max_norm(0.0, 1.0, 1.1, Axes::default()).is_err());
    assert!(Constraint::min_max_norm(-1.0, 1.0, 1.0, Axes::default()).is_err());
    assert!(Constraint::unit_norm(axis(&[1, 1])).is_err());
    assert!(Constraint::unit_norm(Axes::All)
        .unwrap()
        .with_epsilon(f64::NAN)
        .is_err());
    assert!(Constraint::NonNeg.with_mode(Mode::Projection).is_err());
}

// ---------------------------------------------------------------- RadialConstraint

#[test]
fn radial_matches_the_tf_keras_code() {
    let mut rng = Rng::new(13);
    for h in 2..=6 {
        for (channels, filters) in [(1, 1), (2, 3), (3, 1), (1, 4), (5, 7)] {
            let shape = [h, h, channels, filters];
            let len = h * h * channels * filters;
            let data: Vec<f32> = (0..len).map(|_| rng.normal() as f32).collect();
            let out = apply(&Constraint::Radial, &data, &shape);
            assert_bits(
                &out,
                &reference_radial(&data, &shape),
                &format!("radial {shape:?}"),
            );
            let data64: Vec<f64> = data.iter().map(|&x| x as f64).collect();
            let out64 = apply(&Constraint::Radial, &data64, &shape);
            assert_bits(
                &out64,
                &reference_radial(&data64, &shape),
                &format!("radial f64 {shape:?}"),
            );
        }
    }
    // The 4×4 docstring example's corners and core: corners from k[3,3], core from k[1,1].
    let k: Vec<f32> = (0..16).map(|i| i as f32).collect();
    let out = apply(&Constraint::Radial, &k, &[4, 4, 1, 1]);
    assert_eq!(out[0], 15.0);
    assert_eq!(out[5], 5.0);
    assert_eq!(out[10], 5.0);
    // 5×5: centre k[1,1], ring 1 k[2,2], ring 2 k[3,3].
    let k: Vec<f32> = (0..25).map(|i| i as f32).collect();
    let out = apply(&Constraint::Radial, &k, &[5, 5, 1, 1]);
    assert_eq!((out[12], out[6], out[0]), (6.0, 12.0, 18.0));
}
