//! Chunked processing against one whole-tensor call of the core: the same outputs (bit for bit
//! where chunks keep slices whole; within a few ulp where the leading axis is reduced and the
//! norm is gathered over chunks), the same norms, every layout of axes.

use std::fs;
use std::sync::atomic::AtomicU64;

use normclip_core::{Axes, Constraint, Mode};
use normclip_files::dtype::{DType, Order};
use normclip_files::tensor::{Files, Job, Outcome, Output, Segment, TensorRef};

fn temp(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("normclip-files-test-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    dir.join(name).display().to_string()
}

/// Writes `data` as little-endian f32 after `pad` bytes of something else, constrains it through
/// a chunked file job of `chunk` elements, and returns what the job wrote, what one core call
/// makes of the same data, and the job's outcome.
fn run_file(
    shape: &[usize],
    data: &[f32],
    pad: usize,
    constraint: &Constraint,
    chunk: usize,
    name: &str,
) -> (Vec<f32>, Vec<f32>, Outcome) {
    let n = data.len();
    let input = temp(&format!("{name}.in"));
    let output = temp(&format!("{name}.out"));
    let mut bytes = vec![7u8; pad];
    bytes.extend(data.iter().flat_map(|v| v.to_le_bytes()));
    fs::write(&input, &bytes).unwrap();
    fs::write(&output, vec![0u8; n * 4]).unwrap();
    let inputs = Files::open_read(std::slice::from_ref(&input)).unwrap();
    let outputs = Files {
        files: vec![fs::OpenOptions::new().write(true).open(&output).unwrap()],
        paths: vec![output.clone()],
    };
    let tensor = TensorRef {
        name: "w".into(),
        dtype: DType::F32(Order::Little),
        shape: shape.to_vec(),
        segments: vec![Segment {
            file: 0,
            offset: pad as u64,
            len: n as u64 * 4,
        }],
    };
    let progress = AtomicU64::new(0);
    let outcome = Job {
        files: &inputs,
        tensor: &tensor,
        axes: None,
        count_negatives: false,
        output: Some(Output {
            files: &outputs,
            segments: vec![Segment {
                file: 0,
                offset: 0,
                len: n as u64 * 4,
            }],
            dtype: DType::F32(Order::Little),
            constraint: Some(constraint),
        }),
        progress: &progress,
        chunk_elements: chunk,
    }
    .run()
    .unwrap();
    let written: Vec<f32> = fs::read(&output)
        .unwrap()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let mut expected = data.to_vec();
    constraint.apply_in_place(&mut expected, shape).unwrap();
    (written, expected, outcome)
}

fn run(
    shape: &[usize],
    constraint: &Constraint,
    chunk: usize,
    name: &str,
) -> (Vec<f32>, Vec<f32>, Vec<f64>, Vec<f64>) {
    let n: usize = shape.iter().product();
    // xorshift64 from a seed per size: varied values in [-1.5, 1.5), the same on every run.
    let mut state = 0x9E37_79B9_7F4A_7C15 ^ n as u64;
    let data: Vec<f32> = (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            ((state >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 3.0
        })
        .collect();
    // 3 bytes of something else in front, so the tensor is unaligned in the file.
    let (written, expected, outcome) = run_file(shape, &data, 3, constraint, chunk, name);
    (written, expected, outcome.norms, outcome.norms_after)
}

fn ulps(a: f32, b: f32) -> u32 {
    (a.to_bits() as i64 - b.to_bits() as i64).unsigned_abs() as u32
}

#[test]
fn chunked_outputs_match_one_core_call() {
    let cases: &[(&[usize], Axes, u32)] = &[
        // Leading axis kept: chunks of whole slices, bit-identical.
        (&[64, 48], Axes::List(vec![1]), 0),
        (&[16, 8, 24], Axes::List(vec![-1]), 0),
        // Rows larger than a chunk with the leading axis kept: each row on its own.
        (&[3, 40, 30], Axes::List(vec![2]), 0),
        (&[3, 40, 30], Axes::List(vec![1]), 4),
        // Leading axis reduced: norms gathered over chunks in f64, then the extra-row pass. The
        // core's own norms are within 2 ulp of the correctly rounded ones, ours closer: outputs
        // may differ by a few ulp where the factor depends on the norm.
        (&[300, 7], Axes::List(vec![0]), 4),
        (&[3, 3, 20, 16], Axes::List(vec![0, 1, 2]), 4),
        (&[40, 5, 6], Axes::List(vec![0, 2]), 4),
        (&[1000], Axes::All, 4),
        (&[30, 40], Axes::All, 4),
    ];
    for (index, (shape, axes, tolerance)) in cases.iter().enumerate() {
        for constraint in [
            Constraint::max_norm(1.5, axes.clone()).unwrap(),
            Constraint::min_max_norm(0.5, 1.0, 0.7, axes.clone()).unwrap(),
            Constraint::unit_norm(axes.clone()).unwrap(),
            Constraint::max_norm(1.5, axes.clone())
                .unwrap()
                .with_mode(Mode::Projection)
                .unwrap(),
        ] {
            let (written, expected, norms, after) =
                run(shape, &constraint, 200, &format!("case{index}"));
            let worst = written
                .iter()
                .zip(&expected)
                .map(|(a, b)| ulps(*a, *b))
                .max()
                .unwrap();
            assert!(
                worst <= *tolerance,
                "{shape:?} {axes:?} {constraint:?}: {worst} ulp"
            );
            let whole = normclip_core::apply::norms(&expected, shape, axes).unwrap();
            assert_eq!(after.len(), whole.values.len());
            for (a, b) in after.iter().zip(&whole.values) {
                assert!(
                    (a - *b as f64).abs() <= 4e-7 * b.abs() as f64 + 1e-12,
                    "{shape:?}: {a} vs {b}"
                );
            }
            assert_eq!(norms.len(), whole.values.len());
        }
    }
}

#[test]
fn nan_and_inf_behave_as_in_one_call() {
    // A NaN in one chunk makes its whole slice NaN, an infinite element zeroes its slice (MaxNorm).
    let shape = [100usize, 4];
    let constraint = Constraint::max_norm(1.0, Axes::List(vec![0])).unwrap();
    let n = 400;
    let mut data: Vec<f32> = (0..n).map(|i| (i % 7) as f32 * 0.1).collect();
    data[4 * 90 + 1] = f32::NAN;
    data[4 * 10 + 2] = f32::INFINITY;
    let (written, expected, outcome) = run_file(&shape, &data, 0, &constraint, 40, "nan");
    for (i, (a, b)) in written.iter().zip(&expected).enumerate() {
        assert!(
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()) || ulps(*a, *b) <= 2,
            "element {i}: {a} vs {b}"
        );
    }
    assert_eq!((outcome.counts.nan, outcome.counts.inf), (1, 1));
}
