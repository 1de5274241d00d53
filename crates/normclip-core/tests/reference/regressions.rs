//! Regression tests: one per issue the reference suite once found in the core (all fixed), each
//! stating the behaviour the crate's own rules ask for, so none comes back.

use super::common::*;
use normclip_core::{Axes, Constraint, Mode};

fn axis(list: &[i64]) -> Axes {
    Axes::List(list.to_vec())
}

fn apply<T: Float>(c: &Constraint, data: &[T], shape: &[usize]) -> Vec<T> {
    let mut out = data.to_vec();
    c.apply_in_place(&mut out, shape).unwrap();
    out
}

#[test]
fn max_norm_factor_of_an_overflowing_norm_keeps_its_precision() {
    // [3e38; 3] has norm ~5.2e38 > f32::MAX. The factor 1e-3 / 5.2e38 ~ 1.9e-42 is an f32
    // denormal with ~11 significant bits: applied in f32 it would miss the bound by 2.7e-4
    // relative, so the factor takes the wide path.
    let big = [3e38f32, 3e38, -3e38];
    let out = apply(&Constraint::max_norm(1e-3, Axes::All).unwrap(), &big, &[3]);
    let norm = out.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
    assert_norm_close(norm, 1e-3, 1e-6, "[3e38; 3] after MaxNorm(1e-3)");
}

#[test]
fn tiny_f32_slices_have_accurate_norms() {
    // Squares of |x| < ~1e-19 are f32 denormals (or 0): summed in f32 they lose their bits, the
    // way squares above ~1.8e19 overflow; both kinds of sum are recomputed exactly.
    // (Runs shorter than 32 are summed with f64 squares and are fine; longer runs and columns
    // accumulate f32 squares.)
    for (x, n) in [(1e-20f32, 100usize), (1e-40, 64), (3e-22, 1000)] {
        let data = vec![x; n];
        let norm = normclip_core::apply::norms(&data, &[n], &Axes::All)
            .unwrap()
            .values[0];
        let exact = x as f64 * (n as f64).sqrt();
        assert_eq!(
            norm, exact as f32,
            "norm of [{x:e}; {n}]: got {norm:e}, exact {exact:e}"
        );
    }
    // Projection UnitNorm of a column of 1e-30 (norm 8e-30, a normal f32): its exact norm is
    // > 0, so it must become a unit vector, although its f32 squares underflow to 0.
    let unit = apply(
        &Constraint::unit_norm(axis(&[0]))
            .unwrap()
            .with_mode(Mode::Projection)
            .unwrap(),
        &[1e-30f32; 64 * 33],
        &[64, 33],
    );
    assert_norm_close(
        unit[0] as f64,
        0.125,
        1e-6,
        "UnitNorm projection of a 1e-30 column",
    );
}

#[test]
fn unit_norm_of_a_slice_whose_norm_overflows_f32() {
    // The exact norm (~5.2e38) is finite; the crate claims the exact-norm result over Keras'
    // zeros: both modes land on the unit sphere.
    let big = [3e38f32, 3e38, -3e38];
    for mode in [Mode::Keras, Mode::Projection] {
        let out = apply(
            &Constraint::unit_norm(Axes::All)
                .unwrap()
                .with_mode(mode)
                .unwrap(),
            &big,
            &[3],
        );
        let norm = out.iter().map(|&x| (x as f64).powi(2)).sum::<f64>().sqrt();
        assert_norm_close(
            norm,
            1.0,
            1e-6,
            &format!("UnitNorm {mode:?} of [3e38; 3]: {out:?}"),
        );
    }
}

#[test]
fn projection_nan_propagates_like_the_other_constraints() {
    // In projection mode MaxNorm and MinMaxNorm turn a NaN slice into NaNs (as Keras does);
    // UnitNorm does the same rather than leave the slice (and its NaN) as it was.
    let w = [1.0f32, 3.0, f32::NAN, 4.0];
    let max = apply(
        &Constraint::max_norm(2.0, axis(&[0]))
            .unwrap()
            .with_mode(Mode::Projection)
            .unwrap(),
        &w,
        &[2, 2],
    );
    assert!(max[0].is_nan() && max[2].is_nan());
    let unit = apply(
        &Constraint::unit_norm(axis(&[0]))
            .unwrap()
            .with_mode(Mode::Projection)
            .unwrap(),
        &w,
        &[2, 2],
    );
    assert!(
        unit[0].is_nan() && unit[2].is_nan(),
        "UnitNorm projection: {unit:?}"
    );
}

#[test]
fn projection_max_norm_with_an_infinite_element() {
    // Projection scales an over-bound slice by bound / n: with n = inf, 0, as Keras mode does
    // (NaN for the infinite element, zeros for the rest).
    let w = [f32::INFINITY, 1.0, -2.0];
    let keras = apply(&Constraint::max_norm(2.0, Axes::All).unwrap(), &w, &[3]);
    let projection = apply(
        &Constraint::max_norm(2.0, Axes::All)
            .unwrap()
            .with_mode(Mode::Projection)
            .unwrap(),
        &w,
        &[3],
    );
    assert!(keras[0].is_nan() && keras[1] == 0.0 && keras[2] == 0.0);
    assert!(
        projection[0].is_nan() && projection[1] == 0.0 && projection[2] == 0.0,
        "projection: {projection:?}"
    );
}
