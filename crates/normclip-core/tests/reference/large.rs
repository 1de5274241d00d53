//! Large tensors: norm accuracy over millions of elements, and results that do not depend on the
//! number of threads (the reduction is cut into parts that depend on the shape only).

use super::common::*;
use normclip_core::apply::{norms, norms_with_tier};
use normclip_core::{Axes, Constraint};

fn axis(list: &[i64]) -> Axes {
    Axes::List(list.to_vec())
}

/// Norms of every tier within 1e-6 relative (and one ulp) of the f64 reference, all tiers alike.
fn check_norms(data: &[f32], shape: &[usize], axes: &Axes) {
    let w = walk(shape, axes);
    let reference = reference_norms(data, &w);
    let mut first: Option<Vec<f32>> = None;
    for tier in supported_tiers() {
        let n = norms_with_tier(data, shape, axes, tier).unwrap();
        for (s, (&got, exact)) in n.values.iter().zip(&reference).enumerate() {
            let what = format!("{shape:?} {axes:?} {tier:?} slice {s}");
            assert_norm_close(got as f64, exact.as_f64(), 1e-6, &what);
            assert!(
                ulps(got, exact.rounded) <= 1,
                "{what}: {got} vs {}",
                exact.rounded
            );
        }
        match &first {
            None => first = Some(n.values),
            Some(f) => assert_bits(&n.values, f, &format!("{shape:?} norms {tier:?}")),
        }
    }
}

#[test]
fn one_norm_over_16m_elements() {
    let mut rng = Rng::new(21);
    let data = normal_f32(&mut rng, 1 << 24, 1.0);
    check_norms(&data, &[1 << 24], &Axes::All);
    // A single f32 accumulator would be off by ~1e-2 here; a biased stream (all positive) is the
    // hard case for it.
    let positive: Vec<f32> = data.iter().map(|x| x.abs() + 0.5).collect();
    check_norms(&positive, &[1 << 24], &Axes::All);
}

#[test]
fn column_norms_of_4096x4096() {
    let mut rng = Rng::new(22);
    let data = normal_f32(&mut rng, 4096 * 4096, 0.05);
    check_norms(&data, &[4096, 4096], &axis(&[0]));
    check_norms(&data, &[4096, 4096], &axis(&[-1]));
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut rng = Rng::new(23);
    let cases: Vec<(Vec<usize>, Axes)> = vec![
        (vec![2048, 1024], axis(&[0])),
        (vec![1024, 2048], axis(&[-1])),
        (vec![1 << 24], Axes::All),
        (vec![64, 64, 64, 8], axis(&[0, 2])),
        (vec![200_000, 10], axis(&[0])), // narrow rows
    ];
    let pools = thread_pools(3);
    for (shape, axes) in cases {
        let len: usize = shape.iter().product();
        let w = walk(&shape, &axes);
        // Scale so that every slice is over the bound (every element is rewritten).
        let scale = 4.0 / (w.slice_len as f64).sqrt();
        let data = normal_f32(&mut rng, len, scale);
        let specs = [
            Spec::max_norm(2.0),
            Spec::unit(),
            Spec::min_max(0.5, 1.5, 0.5),
        ];
        for spec in specs {
            let c = spec.constraint(axes.clone());
            let mut results: Vec<(Vec<f32>, Vec<f32>)> = Vec::new();
            for pool in &pools {
                results.push(pool.install(|| {
                    let mut out = data.clone();
                    c.apply_in_place(&mut out, &shape).unwrap();
                    (out, norms(&data, &shape, &axes).unwrap().values)
                }));
            }
            let what = format!("{shape:?} {axes:?} {spec:?}");
            assert_same_for_all_thread_counts(&results, &what);
            // And the result is right: the formula from those norms, bit for bit.
            let (out, crate_norms) = &results[0];
            let ops: Vec<Op<f32>> = crate_norms
                .iter()
                .map(|&n| reference_op_elem(&spec, n))
                .collect();
            for (i, (&x, &s)) in data.iter().zip(&w.slice_of).enumerate() {
                let expected = ops[s as usize].apply(x);
                assert_eq!(out[i].to_bits(), expected.to_bits(), "{what}: element {i}");
            }
        }
        // Norms within 1e-6 of the reference.
        let reference = reference_norms(&data, &w);
        let n = norms(&data, &shape, &axes).unwrap();
        for (s, (&got, exact)) in n.values.iter().zip(&reference).enumerate() {
            assert_norm_close(
                got as f64,
                exact.as_f64(),
                1e-6,
                &format!("{shape:?} slice {s}"),
            );
        }
    }
    // NonNeg over a large buffer, split into tasks: the same with any pool.
    let data = normal_f32(&mut rng, 3 << 20, 1.0);
    let outs: Vec<Vec<f32>> = pools
        .iter()
        .map(|pool| {
            pool.install(|| {
                let mut out = data.clone();
                Constraint::NonNeg
                    .apply_in_place(&mut out, &[3 << 20])
                    .unwrap();
                out
            })
        })
        .collect();
    assert_bits(&outs[0], &reference_non_neg(&data), "NonNeg 3M");
    assert_bits(&outs[1], &outs[0], "NonNeg 3M, 2 threads");
    assert_bits(&outs[2], &outs[0], "NonNeg 3M, 3 threads");
}

/// Rows of a tensor reduced over its last axis are walked in L2-sized bands (`run_norm_call`):
/// every row must come out with the bits of a call on that row alone, in place and as a copy,
/// on every tier and thread count, with rows of every kind (over the bound, compliant, zero,
/// NaN, squares that overflow or underflow: the wide path) and rows of up to and past a band.
fn check_bands<T: Float>(rows: usize, row_len: usize, seed: u64) {
    let mut rng = Rng::new(seed);
    let shape = [rows, row_len];
    let scale = 4.0 / (row_len as f64).sqrt();
    let mut data: Vec<T> = (0..rows * row_len)
        .map(|_| T::from_f64(rng.normal() * scale))
        .collect();
    for (r, row) in data.chunks_mut(row_len).enumerate() {
        let factor = match r % 7 {
            1 => 0.01,  // compliant under MaxNorm(2)
            2 => 0.0,   // a zero row
            3 => 1e30,  // squares overflow in f32
            4 => 1e-30, // squares underflow
            _ => 1.0,
        };
        row.iter_mut()
            .for_each(|x| *x = T::from_f64(x.to_f64() * factor));
        if r % 11 == 5 {
            row[row_len / 2] = T::from_f64(f64::NAN);
        }
    }
    let pools = thread_pools(2);
    for spec in [
        Spec::max_norm(2.0),
        Spec::unit(),
        Spec::min_max(0.5, 1.5, 0.5),
    ] {
        let c = spec.constraint(Axes::List(vec![-1]));
        for tier in supported_tiers() {
            let kernels = normclip_core::kernels::Kernels::<T>::for_tier(tier).unwrap();
            let mut expected = data.clone();
            for row in expected.chunks_mut(row_len) {
                c.apply_in_place_with_tier(row, &[1, row_len], tier)
                    .unwrap();
            }
            let prepared = c.prepare(data.len(), &shape).unwrap();
            for (threads, pool) in pools.iter().enumerate() {
                let what = format!("{rows}x{row_len} {spec:?} {tier:?} {} threads", threads + 1);
                let (in_place, copy) = pool.install(|| {
                    let mut in_place = data.clone();
                    prepared.run(&mut in_place, kernels);
                    (in_place, prepared.run_copy(&data, kernels))
                });
                assert_bits(&in_place, &expected, &format!("{what}: in place"));
                assert_bits(&copy, &expected, &format!("{what}: copy"));
            }
        }
    }
}

#[test]
fn rows_walked_in_bands_keep_the_bits_of_each_row_alone() {
    // 64K f32 or 32K f64 elements per band: a row of 1 element per slice is not a run (it is a
    // column), so start at 2; 65536 f32 is one row per band, 65537 no banding at all.
    for (rows, row_len) in [
        (40_000, 2),
        (9_000, 7),
        (1_500, 100),
        (40, 4096),
        (9, 16_385),
        (3, 65_536),
        (2, 65_537),
    ] {
        check_bands::<f32>(rows, row_len, 31 + row_len as u64);
        check_bands::<f64>(rows, row_len, 37 + row_len as u64);
    }
}

/// A constrained copy is written task by task (copied, then scaled while in cache; a band of
/// columns: only the band scaled): on every tier and thread count it must hold the bits of the
/// same call in place, for rows of columns with whole tiles, tails and left-over rows, narrow
/// rows, runs, groups of columns, tensors of several tasks, each with every slice rescaled, some
/// compliant at either end (only a band of columns moves), every other one compliant, or none
/// moving, and into a new buffer or a used one.
#[test]
fn copies_hold_the_bits_of_in_place_on_every_tier() {
    let cases: Vec<(Vec<usize>, Axes)> = vec![
        (vec![300, 257], axis(&[0])), // 8 tiles and a tail, 77K elements: several tasks
        (vec![301, 33], axis(&[0])),  // one tile, a tail of 1, a left-over row
        (vec![70, 1030], axis(&[0])), // wider than the tiled norm pass
        (vec![3, 20], axis(&[0])),    // fewer rows than a group of four
        (vec![9000, 10], axis(&[0])), // narrow rows: a pattern, several tasks
        (vec![2000, 48], axis(&[-1])), // runs, one value each
        (vec![70_000], Axes::All),    // one run, several tasks
        (vec![64, 64, 8, 4], axis(&[0, 2])), // groups of columns
    ];
    for (shape, axes) in cases {
        check_copies::<f32>(&shape, &axes, 41 + shape[0] as u64);
        check_copies::<f64>(&shape, &axes, 43 + shape[0] as u64);
    }
}

/// Whether slice `s` of `n` is made compliant.
type Compliant = fn(usize, usize) -> bool;

fn check_copies<T: Float>(shape: &[usize], axes: &Axes, seed: u64) {
    let mut rng = Rng::new(seed);
    let w = walk(shape, axes);
    let len = w.slice_of.len();
    let scale = 4.0 / (w.slice_len as f64).sqrt();
    let normal: Vec<f64> = (0..len).map(|_| rng.normal() * scale).collect();
    let pools = thread_pools(2);
    // Which slices stay under MaxNorm(2): none, the first and last quarter, every other one, all.
    let patterns: [(&str, Compliant); 4] = [
        ("all over", |_, _| false),
        ("ends compliant", |s, n| s < n / 4 || s >= n - n / 4),
        ("every other compliant", |s, _| s % 2 == 1),
        ("all compliant", |_, _| true),
    ];
    for (name, compliant) in patterns {
        let data: Vec<T> = normal
            .iter()
            .zip(&w.slice_of)
            .map(|(&x, &s)| {
                let factor = if compliant(s as usize, w.slices) {
                    0.01
                } else {
                    1.0
                };
                T::from_f64(x * factor)
            })
            .collect();
        for spec in [Spec::max_norm(2.0), Spec::unit()] {
            let c = spec.constraint(axes.clone());
            let prepared = c.prepare(len, shape).unwrap();
            for tier in supported_tiers() {
                let kernels = normclip_core::kernels::Kernels::<T>::for_tier(tier).unwrap();
                let mut expected = data.clone();
                prepared.run(&mut expected, kernels);
                for (threads, pool) in pools.iter().enumerate() {
                    let what = format!(
                        "{shape:?} {axes:?} {spec:?} {name} {tier:?} {} threads",
                        threads + 1
                    );
                    let copy = pool.install(|| prepared.run_copy(&data, kernels));
                    assert_bits(&copy, &expected, &what);
                    let mut into = vec![T::from_f64(7.0); len];
                    pool.install(|| prepared.run_copy_into(&data, &mut into, kernels));
                    assert_bits(&into, &expected, &format!("{what}: into a used buffer"));
                }
            }
        }
    }
}
