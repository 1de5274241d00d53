//! Every entry point against a scalar f64 reference of its library's formula, on every tier and
//! across the accumulation's edge cases (overflowing and underflowing squares, NaN, inf, empty).

use super::*;
use crate::kernels::Tier;

/// Deterministic pseudo-random numbers (xorshift), uniform in [-1, 1).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 52) as f64 - 1.0
    }
    fn vec32(&mut self, n: usize, scale: f64) -> Vec<f32> {
        (0..n).map(|_| (self.next() * scale) as f32).collect()
    }
}

fn ref_norm(xs: &[f64]) -> f64 {
    // Exact enough: compensated in f64 via scaling.
    let m = xs.iter().fold(0.0f64, |m, x| m.max(x.abs()));
    if m == 0.0 || !m.is_finite() {
        return m;
    }
    m * xs.iter().map(|x| (x / m) * (x / m)).sum::<f64>().sqrt()
}

fn ulps32(a: f32, b: f32) -> u32 {
    if a == b || (a.is_nan() && b.is_nan()) {
        return 0;
    }
    let (ia, ib) = (a.to_bits() as i32, b.to_bits() as i32);
    let key = |i: i32| if i < 0 { i32::MIN - i } else { i };
    (key(ia) as i64 - key(ib) as i64).unsigned_abs() as u32
}

#[test]
fn norms_match_the_reference_for_every_p_and_size() {
    let mut rng = Rng(7);
    for &n in &[0usize, 1, 5, 31, 32, 33, 511, 512, 513, 10_000, 300_000] {
        let x = rng.vec32(n, 3.0);
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let t = [TensorRef::F32(&x)];
        let l2 = tensor_norms(&t, NormType::L2).unwrap()[0];
        let l1 = tensor_norms(&t, NormType::L1).unwrap()[0];
        let li = tensor_norms(&t, NormType::Inf).unwrap()[0];
        let want2 = ref_norm(&x64);
        let want1: f64 = x64.iter().map(|v| v.abs()).sum();
        let wanti = x64.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(
            (l2 - want2).abs() <= 1e-7 * want2,
            "n={n} l2 {l2} vs {want2}"
        );
        assert!(
            (l1 - want1).abs() <= 1e-7 * want1,
            "n={n} l1 {l1} vs {want1}"
        );
        assert_eq!(li, wanti);
    }
}

#[test]
fn every_tier_gives_the_same_bits() {
    let mut rng = Rng(11);
    let x = rng.vec32(70_001, 2.0);
    let mut results = Vec::new();
    for tier in Tier::ALL.into_iter().filter(|t| t.is_supported()) {
        let k = Kernels::<f32>::for_tier(tier).unwrap();
        let l2 = reduce::norm(&x, NormType::L2, k);
        let l1 = reduce::norm(&x, NormType::L1, k);
        let mut y = x.clone();
        (k.mul_div_run)(&mut y, 0.5f32, 3.0f32);
        let mut z = x.clone();
        (k.mul_div_columns)(&mut z[..70_000], 0.5f32, &[1.0, 2.0, 3.0, 4.0, 5.0]);
        results.push((l2.to_bits(), l1.to_bits(), y, z));
    }
    for r in &results[1..] {
        assert!(r == &results[0]);
    }
}

#[test]
fn overflowing_and_underflowing_squares_give_exact_norms() {
    // f32: squares overflow above 1.8e19, underflow below 1e-19.
    for &scale in &[1e-30f64, 1e-22, 1e20, 1e30, 3e38] {
        let x: Vec<f32> = [3.0, 4.0]
            .iter()
            .map(|v| (v * scale / 5.0) as f32)
            .collect();
        let x64: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let n = tensor_norms(&[TensorRef::F32(&x)], NormType::L2).unwrap()[0];
        assert!(
            (n - ref_norm(&x64)).abs() <= 1e-12 * ref_norm(&x64),
            "{scale}: {n}"
        );
    }
    // f64: squares overflow above 1.3e154, underflow below 1.5e-154.
    for &scale in &[1e-300f64, 1e-160, 1e160, 1e300] {
        let x = [3.0 * scale, 4.0 * scale];
        let n = tensor_norms(&[TensorRef::F64(&x)], NormType::L2).unwrap()[0];
        assert!((n / (5.0 * scale) - 1.0).abs() < 1e-15, "{scale}: {n}");
    }
    let inf = [1.0f32, f32::INFINITY];
    let nan = [f32::INFINITY, f32::NAN];
    assert_eq!(
        tensor_norms(&[TensorRef::F32(&inf)], NormType::L2).unwrap()[0],
        f64::INFINITY
    );
    assert!(tensor_norms(&[TensorRef::F32(&nan)], NormType::L2).unwrap()[0].is_nan());
    assert!(tensor_norms(&[TensorRef::F32(&nan)], NormType::Inf).unwrap()[0].is_nan());
    assert!(tensor_norms(&[TensorRef::F32(&nan)], NormType::L1).unwrap()[0].is_nan());
}

#[test]
fn global_norm_combines_without_overflow() {
    let a = [1e200f64, 0.0];
    let b = [1e200f64];
    let n = global_norm(&[TensorRef::F64(&a), TensorRef::F64(&b)]).unwrap();
    assert!((n / (1e200 * 2f64.sqrt()) - 1.0).abs() < 1e-15);
    assert_eq!(global_norm(&[]).unwrap(), 0.0);
}

/// TF's f32 formula for clip_by_norm given the norm (the reference evaluates it in f32 too).
fn tf_clip_by_norm_ref(x: &[f32], norm: f64, c: f64) -> Vec<f32> {
    let n = norm as f32;
    let c32 = c as f32;
    let d = if n.is_nan() || n > c32 { n } else { c32 };
    x.iter().map(|&v| (v * c32) / d).collect()
}

#[test]
fn clip_by_norm_is_tf_formula_given_the_norm() {
    let mut rng = Rng(3);
    let shape = [7usize, 5, 3];
    let x = rng.vec32(105, 2.0);
    for axes in [
        Axes::All,
        Axes::List(vec![0]),
        Axes::List(vec![-1]),
        Axes::List(vec![0, 2]),
        Axes::List(vec![]),
    ] {
        for &c in &[0.0, 0.5, 1.0, 100.0] {
            let mut y = x.clone();
            clip_by_norm(&mut y, &shape, &axes, c).unwrap();
            // Reference: per slice via the plan's slice index of each element.
            let plan = Plan::new(&shape, &axes).unwrap();
            let mut members: Vec<Vec<usize>> = vec![Vec::new(); plan.slices];
            for (index, slice) in reduce::slice_of_each(&plan, x.len()).enumerate() {
                members[slice].push(index);
            }
            for m in &members {
                let vals: Vec<f32> = m.iter().map(|&i| x[i]).collect();
                let norm = ref_norm(&vals.iter().map(|&v| v as f64).collect::<Vec<_>>());
                let want = tf_clip_by_norm_ref(&vals, norm, c);
                // The norm is within 1 ulp of the exact one (f32 blocks), the formula exact:
                // 2 ulp at most.
                for (&i, &w) in m.iter().zip(&want) {
                    assert!(ulps32(y[i], w) <= 2, "{axes:?} c={c}: {} vs {w}", y[i]);
                }
            }
        }
    }
}

#[test]
fn clip_by_norm_edge_values() {
    // Zero stays zero (-0 stays -0), NaN stays NaN.
    let mut z = [0.0f32, -0.0];
    clip_by_norm(&mut z, &[2], &Axes::All, 1.0).unwrap();
    assert_eq!(z.map(f32::to_bits), [0.0f32.to_bits(), (-0.0f32).to_bits()]);
    let mut n = [1.0f32, f32::NAN];
    clip_by_norm(&mut n, &[2], &Axes::All, 1.0).unwrap();
    assert!(n[0].is_nan() && n[1].is_nan());
    // Huge: exact norm 5e30 > f32 squares; TF would give zeros, we give the clipped direction.
    let mut h = [3e30f32, 4e30];
    clip_by_norm(&mut h, &[2], &Axes::All, 1.0).unwrap();
    assert!(ulps32(h[0], 0.6) <= 1 && ulps32(h[1], 0.8) <= 1, "{h:?}");
    // Beyond f32 range in norm·c: f64 path.
    let mut w = [3e38f32, 3e38];
    clip_by_norm(&mut w, &[2], &Axes::All, 2.0).unwrap();
    assert!(ulps32(w[0], 2.0f32.sqrt()) <= 1, "{w:?}");
    // Inf element: norm inf, x·c/inf: finite → 0, inf → NaN (TF's result).
    let mut i = [1.0f32, f32::INFINITY];
    clip_by_norm(&mut i, &[2], &Axes::All, 1.0).unwrap();
    assert!(i[0] == 0.0 && i[1].is_nan());
    // Empty tensors with enormous other dimensions: no plan, no allocation, axes still checked.
    let mut e: [f32; 0] = [];
    clip_by_norm(&mut e, &[0, 1 << 40, 1 << 20], &Axes::List(vec![0]), 1.0).unwrap();
    assert!(clip_by_norm(&mut e, &[0, 4], &Axes::List(vec![2]), 1.0).is_err());
}

#[test]
fn bad_bounds_are_rejected_before_writing() {
    let mut x = [3.0f32, 4.0];
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        assert!(clip_by_norm(&mut x, &[2], &Axes::All, bad).is_err());
        assert!(clip_by_global_norm(&mut [TensorMut::F32(&mut x)], bad, None).is_err());
        assert!(clip_grad_norm(&mut [TensorMut::F32(&mut x)], bad, NormType::L2, false).is_err());
        assert!(clip_update(&mut [TensorMut::F32(&mut x)], bad).is_err());
        assert!(clip_by_value(&mut [TensorMut::F32(&mut x)], bad).is_err());
    }
    assert!(clip_by_norm(&mut x, &[3], &Axes::All, 1.0).is_err());
    let err = clip_grad_norm(
        &mut [TensorMut::F32(&mut [1.0, f32::NAN])],
        1.0,
        NormType::L2,
        true,
    )
    .unwrap_err();
    assert!(err.message.contains("errorIfNonfinite"));
    assert_eq!(x, [3.0, 4.0]);
}

#[test]
fn global_clip_follows_tf_including_nonfinite_and_zero() {
    let mut a = [3.0f32, 4.0];
    let mut b = [12.0f32];
    let n = clip_by_global_norm(
        &mut [TensorMut::F32(&mut a), TensorMut::F32(&mut b)],
        1.0,
        None,
    )
    .unwrap();
    assert_eq!(n, 13.0);
    let s = 1.0f32 * (1.0f32 / 13.0);
    assert_eq!(a, [3.0 * s, 4.0 * s]);
    // N = 0: scale c·(1/c).
    let mut z = [0.0f32; 3];
    assert_eq!(
        clip_by_global_norm(&mut [TensorMut::F32(&mut z)], 1.0, None).unwrap(),
        0.0
    );
    assert_eq!(z, [0.0; 3]);
    // N = inf or NaN: every output NaN.
    let mut i = [1.0f32, f32::INFINITY];
    let mut other = [2.0f32];
    clip_by_global_norm(
        &mut [TensorMut::F32(&mut i), TensorMut::F32(&mut other)],
        1.0,
        None,
    )
    .unwrap();
    assert!(i.iter().chain(&other).all(|v| v.is_nan()));
    // No tensors: N = 0.
    assert_eq!(clip_by_global_norm(&mut [], 1.0, None).unwrap(), 0.0);
    // use_norm replaces the norm pass.
    let mut u = [1.0f32];
    clip_by_global_norm(&mut [TensorMut::F32(&mut u)], 1.0, Some(4.0)).unwrap();
    assert_eq!(u, [0.25]);
    assert!(clip_by_global_norm(&mut [TensorMut::F32(&mut u)], 1.0, Some(-1.0)).is_err());
}

#[test]
fn torch_clip_grad_norm_matches_the_formula() {
    let mut rng = Rng(5);
    for p in [NormType::L1, NormType::L2, NormType::Inf] {
        let a0 = rng.vec32(100, 1.0);
        let b0 = rng.vec32(33, 4.0);
        let (mut a, mut b) = (a0.clone(), b0.clone());
        let total = clip_grad_norm(
            &mut [TensorMut::F32(&mut a), TensorMut::F32(&mut b)],
            0.5,
            p,
            false,
        )
        .unwrap();
        let pn = |v: &[f32]| -> f64 {
            let v64: Vec<f64> = v.iter().map(|&x| x as f64).collect();
            match p {
                NormType::L1 => v64.iter().map(|x| x.abs()).sum(),
                NormType::L2 => ref_norm(&v64),
                NormType::Inf => v64.iter().fold(0.0f64, |m, x| m.max(x.abs())),
            }
        };
        let want = match p {
            NormType::L1 => pn(&a0) + pn(&b0),
            NormType::L2 => (pn(&a0).powi(2) + pn(&b0).powi(2)).sqrt(),
            NormType::Inf => pn(&a0).max(pn(&b0)),
        };
        assert!(
            (total - want).abs() <= 1e-7 * want,
            "{p:?}: {total} vs {want}"
        );
        let coef = (0.5 / (total + 1e-6)).min(1.0) as f32;
        assert!(a.iter().zip(&a0).all(|(&y, &x)| y == x * coef));
        assert!(b.iter().zip(&b0).all(|(&y, &x)| y == x * coef));
    }
    // Under the bound: untouched.
    let mut s = [0.1f32, 0.2];
    clip_grad_norm(&mut [TensorMut::F32(&mut s)], 10.0, NormType::L2, false).unwrap();
    assert_eq!(s, [0.1, 0.2]);
}

#[test]
fn per_example_styles_match_their_formulas() {
    let mut rng = Rng(9);
    let batch = 6;
    let g0 = rng.vec32(batch * 4, 2.0); // [6, 4]
    let mut g1 = rng.vec32(batch * 3, 0.1); // [6, 3]
    g1[3..6].copy_from_slice(&[0.0; 3]); // example 1: tensor 1 zero
    let mut g0z = g0.clone();
    g0z[4..8].copy_from_slice(&[0.0; 4]); // example 1: all zero
    g0z[8] = f32::NAN; // example 2: NaN
    let grads = [TensorRef::F32(&g0z), TensorRef::F32(&g1)];
    for style in [
        PerExampleStyle::Opacus,
        PerExampleStyle::Optax,
        PerExampleStyle::TfPrivacy,
    ] {
        let c = 1.0;
        let mut o0 = vec![0.0f32; 4];
        let mut o1 = vec![0.0f32; 3];
        let clipped = clip_per_example(
            &grads,
            batch,
            &Bounds::Flat(c),
            style,
            &mut [TensorMut::F32(&mut o0), TensorMut::F32(&mut o1)],
        )
        .unwrap();
        let mut want0 = [0.0f64; 4];
        let mut want1 = [0.0f64; 3];
        let mut count = 0;
        for i in 0..batch {
            let e0: Vec<f64> = g0z[i * 4..i * 4 + 4].iter().map(|&v| v as f64).collect();
            let e1: Vec<f64> = g1[i * 3..i * 3 + 3].iter().map(|&v| v as f64).collect();
            let all: Vec<f64> = e0.iter().chain(&e1).copied().collect();
            let n = if all.iter().any(|v| v.is_nan()) {
                f64::NAN
            } else {
                ref_norm(&all)
            };
            let f = match style {
                PerExampleStyle::Opacus => {
                    let f = c as f32 / (n as f32 + 1e-6f32);
                    if f.is_nan() {
                        f
                    } else {
                        f.min(1.0)
                    }
                }
                PerExampleStyle::Optax => {
                    let f = c as f32 / n as f32;
                    if f.is_nan() {
                        1.0
                    } else {
                        f.min(1.0)
                    }
                }
                PerExampleStyle::TfPrivacy => tf_global_scale::<f32>(n, c),
            } as f64;
            if f < 1.0 {
                count += 1;
            }
            for j in 0..4 {
                want0[j] += f * e0[j];
            }
            for j in 0..3 {
                want1[j] += f * e1[j];
            }
        }
        assert_eq!(clipped, vec![count], "{style:?}");
        for (got, want) in o0.iter().zip(&want0).chain(o1.iter().zip(&want1)) {
            let w = *want as f32;
            assert!(ulps32(*got, w) <= 1, "{style:?}: {got} vs {w}");
        }
        // NaN example: Opacus and TF Privacy give NaN sums, Optax's factor 1 passes the NaN on.
        assert!(o0[0].is_nan());
    }
    // Batch mismatch and bad out lengths are errors before anything is written.
    let mut o = vec![7.0f32; 4];
    let short = vec![0.0f32; 5];
    assert!(clip_per_example(
        &[TensorRef::F32(&short)],
        batch,
        &Bounds::Flat(1.0),
        PerExampleStyle::Optax,
        &mut [TensorMut::F32(&mut o)]
    )
    .is_err());
    assert_eq!(o, vec![7.0; 4]);
}

#[test]
fn per_layer_bounds_clip_each_tensor_apart() {
    let g0 = [3.0f32, 4.0, 0.3, 0.4]; // [2, 2]: norms 5, 0.5
    let g1 = [1.0f32, 1.0]; // [2, 1]: norms 1, 1
    let mut o0 = [0.0f32; 2];
    let mut o1 = [0.0f32; 1];
    let clipped = clip_per_example(
        &[TensorRef::F32(&g0), TensorRef::F32(&g1)],
        2,
        &Bounds::PerLayer(vec![1.0, 2.0]),
        PerExampleStyle::Optax,
        &mut [TensorMut::F32(&mut o0), TensorMut::F32(&mut o1)],
    )
    .unwrap();
    assert_eq!(clipped, vec![1, 0]);
    assert!(
        ulps32(o0[0], 0.6 + 0.3) <= 1 && ulps32(o0[1], 0.8 + 0.4) <= 1,
        "{o0:?}"
    );
    assert_eq!(o1, [2.0]);
}

#[test]
fn empty_examples_are_computed_once_whatever_the_batch() {
    // A batch bounded by no element (every tensor empty) must not be allocated or looped per
    // example: usize::MAX examples would be 2^67 bytes of norms.
    let empty32: [f32; 0] = [];
    let empty64: [f64; 0] = [];
    let grads = [TensorRef::F32(&empty32), TensorRef::F64(&empty64)];
    for (style, c, expected) in [
        (PerExampleStyle::Opacus, 1.0, 0),
        (PerExampleStyle::Opacus, 0.0, usize::MAX),
        (PerExampleStyle::Optax, 0.0, 0),
        (PerExampleStyle::TfPrivacy, 1.0, 0),
    ] {
        let (mut o32, mut o64): ([f32; 0], [f64; 0]) = ([], []);
        let mut out = [TensorMut::F32(&mut o32), TensorMut::F64(&mut o64)];
        let flat = clip_per_example(&grads, usize::MAX, &Bounds::Flat(c), style, &mut out);
        assert_eq!(flat.unwrap(), vec![expected], "{style:?} {c}");
        let layers = Bounds::PerLayer(vec![c, c]);
        let per_layer = clip_per_example(&grads, usize::MAX, &layers, style, &mut out);
        assert_eq!(per_layer.unwrap(), vec![expected; 2], "{style:?} {c}");
    }
    // No tensors at all: nothing is clipped (and nothing indexed).
    let none = clip_per_example(&[], 7, &Bounds::Flat(1.0), PerExampleStyle::Opacus, &mut []);
    assert_eq!(none.unwrap(), vec![0]);
}

#[test]
fn update_clipping() {
    let mut a = [3.0f32, 4.0];
    let r = clip_update(&mut [TensorMut::F32(&mut a)], 1.0).unwrap();
    assert_eq!(
        r,
        UpdateClip {
            norm: 5.0,
            clipped: true
        }
    );
    assert_eq!(a, [0.6, 0.8]);
    let mut z = [0.0f32, -0.0];
    let r = clip_update(&mut [TensorMut::F32(&mut z)], 1.0).unwrap();
    assert!(!r.clipped && r.norm == 0.0 && z[1].to_bits() == (-0.0f32).to_bits());
    let mut n = [f32::NAN, 1.0];
    assert!(
        !clip_update(&mut [TensorMut::F32(&mut n)], 1.0)
            .unwrap()
            .clipped
    );
    assert_eq!(n[1], 1.0);
}

#[test]
fn clip_value_keeps_nan_and_signed_zero() {
    let mut x = [-3.0f32, -0.0, 0.5, 9.0, f32::NAN];
    clip_by_value(&mut [TensorMut::F32(&mut x)], 1.0).unwrap();
    assert_eq!(x[..4], [-1.0, -0.0, 0.5, 1.0]);
    assert!(x[4].is_nan() && x[1].is_sign_negative());
}

#[test]
fn large_tensors_are_the_same_whatever_the_thread_count() {
    // 2M elements: above the parallel threshold; parts are cut by size, so a serial run (the
    // same parts summed in order) must give the same bits.
    let mut rng = Rng(13);
    let x = rng.vec32(2 << 20, 1.0);
    let parallel = tensor_norms(&[TensorRef::F32(&x)], NormType::L2).unwrap()[0];
    let k = Kernels::<f32>::active();
    let parts = crate::parallel::reduction_parts(x.len());
    let part_len = x.len().div_ceil(parts);
    let serial: f64 = x
        .chunks(part_len)
        .map(|p| (k.sum_squares)(p))
        .fold(0.0, |a, b| a + b);
    assert_eq!(parallel.to_bits(), serial.sqrt().to_bits());
}
