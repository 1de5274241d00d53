//! normclip-core against an independent scalar reference (one test binary: one link).
//!
//! - `common`: a seeded PRNG, float helpers and the reference itself (norms in f64 by walking
//!   multi-indices, factors with the Keras formula in the element type, RadialConstraint as the
//!   tf-keras code builds it).
//! - `properties`: random ranks, shapes, axis sets, constraints, modes, tiers, f32 and f64.
//! - `edge_cases`: golden values, empty and rank-0 tensors, special values, the skip path,
//!   validation, RadialConstraint.
//! - `large`: norm accuracy over 16M elements and thread-count independence.
//! - `known_issues`: failing tests for issues found in the core (kept apart; see each test).

mod common;
mod edge_cases;
mod known_issues;
mod large;
mod properties;
