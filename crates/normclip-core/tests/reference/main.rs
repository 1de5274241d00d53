//! normclip-core against an independent scalar reference (one test binary: one link).
//!
//! - `common`: a seeded PRNG, float helpers and the reference itself (exact norms by walking
//!   multi-indices, factors with the Keras formula in the element type or to ~106 bits on the
//!   wide path, RadialConstraint as the tf-keras code builds it).
//! - `exact`: the reference's exact arithmetic (big-integer sums of squares, correctly rounded
//!   square roots, a double-double float with an unbounded exponent).
//! - `accuracy`: each numerical claim of the README, measured and asserted on every tier.
//! - `properties`: random ranks, shapes, axis sets, constraints, modes, tiers, f32 and f64, at
//!   typical and at extreme magnitudes.
//! - `edge_cases`: golden values, empty and rank-0 tensors, special values, the skip path,
//!   validation, RadialConstraint.
//! - `large`: norm accuracy over 16M elements and thread-count independence.
//! - `regressions`: one test per issue the reference suite found in the core, all fixed.

mod accuracy;
mod common;
mod edge_cases;
mod exact;
mod large;
mod properties;
mod regressions;
