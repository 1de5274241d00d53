//! Property fuzzing of the core's public entry points with proptest: random shapes (empty ones
//! with huge other dimensions included), axis lists (out of range, repeated), constraint specs
//! (NaN, negative and inverted bounds, bad rates) and data (NaN, infinities, subnormals, huge
//! values), on every supported tier. What must hold whatever the input:
//! - nothing panics (a panic fails the property, and proptest prints the input and its seed);
//! - a rejected call leaves the data bit-identical;
//! - an accepted call's copy equals its in-place result bit for bit, every tier gives the same
//!   bits, and the norms match an independent scalar reference.
//!
//! `PROPTEST_CASES` bounds the run (default 20,000; CI uses the default). A failure prints the
//! minimal failing input and is saved under `tests/fuzz.regressions`, replayed first next run.

#[path = "reference/common.rs"]
#[expect(dead_code, reason = "the fuzz uses part of the shared reference")]
mod common;
#[path = "reference/exact.rs"]
mod exact;

use normclip_core::apply::{norms, norms_with_tier};
use normclip_core::{Axes, Constraint, ConstraintSpec, Kind, Mode};
use proptest::prelude::*;

fn dims() -> impl Strategy<Value = Vec<usize>> {
    prop_oneof![
        8 => prop::collection::vec(0usize..7, 0..5),
        // An empty tensor whose other dimensions multiply past the address space.
        1 => (prop::collection::vec(prop_oneof![Just(0usize), Just(1usize << 40), 1usize..4], 1..4))
            .prop_map(|mut d| { d.push(0); d }),
        1 => prop::collection::vec(prop_oneof![Just(1usize << 33), 1usize..3], 2..4),
    ]
}

/// Axes for a tensor of `rank` dimensions: mostly in range, sometimes not.
fn axes(rank: usize) -> impl Strategy<Value = Axes> {
    let r = rank as i64;
    prop_oneof![
        1 => Just(Axes::All),
        6 => prop::collection::vec(-r.max(1)..r.max(1), 0..4).prop_map(Axes::List),
        1 => prop::collection::vec(-r - 2..r + 2, 0..4).prop_map(Axes::List),
    ]
}

fn bound() -> impl Strategy<Value = Option<f64>> {
    prop_oneof![
        2 => Just(None),
        6 => (0.0f64..4.0).prop_map(Some),
        1 => prop_oneof![Just(f64::NAN), Just(-1.0), Just(f64::INFINITY), Just(0.0), Just(1e-30), Just(1e30)].prop_map(Some),
    ]
}

fn spec(rank: usize) -> impl Strategy<Value = ConstraintSpec> {
    (
        prop_oneof![4 => Just(Kind::MaxNorm), 2 => Just(Kind::MinMaxNorm), 2 => Just(Kind::UnitNorm), 1 => Just(Kind::NonNeg), 1 => Just(Kind::Radial)],
        bound(),
        bound(),
        prop_oneof![4 => Just(None), 4 => (0.0f64..1.0).prop_map(Some), 1 => Just(Some(1.5)), 1 => Just(Some(f64::NAN))],
        prop::option::of(axes(rank)),
        prop::option::of(prop_oneof![Just(Mode::Keras), Just(Mode::Projection)]),
        prop_oneof![4 => Just(None), 1 => prop_oneof![Just(1e-7), Just(1e-3), Just(0.0), Just(-1.0)].prop_map(Some)],
    )
        .prop_map(|(kind, max_value, min_value, rate, axes, mode, epsilon)| {
            let takes = kind.parameters();
            let keep = |name: &str| takes.contains(&name);
            ConstraintSpec {
                kind,
                max_value: max_value.filter(|_| keep("maxValue")),
                min_value: min_value.filter(|_| keep("minValue")),
                rate: rate.filter(|_| keep("rate")),
                axes: axes.filter(|_| keep("axis")),
                mode: mode.filter(|_| keep("mode")),
                epsilon: epsilon.filter(|_| keep("epsilon")),
            }
        })
}

fn value() -> impl Strategy<Value = f32> {
    prop_oneof![
        20 => -3.0f32..3.0,
        1 => prop_oneof![Just(f32::NAN), Just(f32::INFINITY), Just(-0.0), Just(0.0), Just(1e-40), Just(3e38), Just(1e-20), Just(2e19)],
    ]
}

fn run_case(
    spec: ConstraintSpec,
    shape: Vec<usize>,
    data_seed: Vec<f32>,
) -> Result<(), TestCaseError> {
    let Ok(constraint) = Constraint::try_from(spec.clone()) else {
        TALLY.lock().unwrap().refused_spec += 1;
        return Ok(()); // rejected at construction: nothing to apply
    };
    let len = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .unwrap_or(usize::MAX);
    if len > 4096 {
        // Only the shape checks can run (there is no such buffer): they must not panic.
        let mut empty: [f32; 0] = [];
        let _ = constraint.apply_in_place(&mut empty, &shape);
        return Ok(());
    }
    let data: Vec<f32> = (0..len)
        .map(|i| data_seed[i % data_seed.len().max(1)])
        .collect();
    let mut in_place = data.clone();
    match constraint.apply_in_place(&mut in_place, &shape) {
        Err(_) => {
            TALLY.lock().unwrap().refused_call += 1;
            prop_assert!(
                bits(&in_place) == bits(&data),
                "a rejected call changed the data"
            )
        }
        Ok(()) => {
            TALLY.lock().unwrap().applied += 1;
            let copy = constraint
                .apply_copy(&data, &shape)
                .expect("accepted in place, so accepted as a copy");
            prop_assert!(bits(&copy) == bits(&in_place), "copy and in place differ");
            for tier in common::supported_tiers() {
                let mut other = data.clone();
                constraint
                    .apply_in_place_with_tier(&mut other, &shape, tier)
                    .expect("tiers accept the same calls");
                prop_assert!(bits(&other) == bits(&in_place), "tier {:?} differs", tier);
            }
            if let Some(options) = constraint.options() {
                let crate_norms = match norms(&data, &shape, &options.axes) {
                    Ok(result) => result.values,
                    // An empty tensor may have more (zero) norms than fit in memory.
                    Err(error) if data.is_empty() => {
                        prop_assert!(
                            error.message.contains("more values than fit in memory"),
                            "{}",
                            error.message
                        );
                        return Ok(());
                    }
                    Err(error) => {
                        return Err(TestCaseError::fail(format!(
                            "accepted, but its norms fail: {}",
                            error.message
                        )))
                    }
                };
                let walk = common::walk(&shape, &options.axes);
                let exact = common::reference_norms(&data, &walk);
                for (ours, exact) in crate_norms.iter().zip(&exact) {
                    let expected = exact.rounded;
                    prop_assert!(
                        ours.to_bits() == expected.to_bits()
                            || common::ulps(*ours, expected) <= 2
                            || (ours.is_nan() && expected.is_nan()),
                        "norm {} against the reference {}",
                        ours,
                        expected
                    );
                }
                for tier in common::supported_tiers() {
                    let other = norms_with_tier(&data, &shape, &options.axes, tier)
                        .expect("tiers accept the same calls")
                        .values;
                    prop_assert!(
                        bits(&other) == bits(&crate_norms),
                        "tier {:?} norms differ",
                        tier
                    );
                }
            }
        }
    }
    Ok(())
}

fn bits(data: &[f32]) -> Vec<u32> {
    data.iter().map(|x| x.to_bits()).collect()
}

/// How the cases went, so that the run proves something: most must reach the checks.
#[derive(Default, Debug)]
struct Tally {
    refused_spec: usize,
    applied: usize,
    refused_call: usize,
}

static TALLY: std::sync::Mutex<Tally> = std::sync::Mutex::new(Tally {
    refused_spec: 0,
    applied: 0,
    refused_call: 0,
});

#[test]
fn any_input_is_applied_or_refused_cleanly() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(
            proptest::test_runner::FileFailurePersistence::WithSource("regressions"),
        )),
        ..ProptestConfig::default()
    });
    let strategy = dims().prop_flat_map(|shape| {
        (
            spec(shape.len()),
            Just(shape),
            prop::collection::vec(value(), 1..64),
        )
    });
    if let Err(failure) = runner.run(&strategy, |(spec, shape, data)| run_case(spec, shape, data)) {
        panic!("{failure}\n(replay: the failing input above is saved under proptest-regressions/)");
    }
    let tally = TALLY.lock().unwrap();
    eprintln!("fuzz: {cases} cases: {tally:?}");
    // Not vacuous: well over a third of the cases reach the comparisons, and both kinds of
    // refusal happen.
    assert!(tally.applied * 5 > cases as usize * 2, "{tally:?}");
    assert!(
        tally.refused_call > 0 && tally.refused_spec > 0,
        "{tally:?}"
    );
}
