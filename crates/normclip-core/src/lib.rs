//! Axis-wise L2-norm weight constraints, exactly as Keras computes them, on flat row-major buffers.
//!
//! The pieces, in the order a call goes through them:
//! - [`layout`]: validates a shape and an axis set and plans the walk over memory (which axes are
//!   reduced, merged into at most a few contiguous groups).
//! - [`constraint`]: the constraints and their parameters (`MaxNorm`, `MinMaxNorm`, `UnitNorm`,
//!   `NonNeg`, `RadialConstraint`), validated on construction, and the per-slice factor formulas.
//! - [`apply`]: the norm pass, the factors, the scale pass; multi-threaded for large tensors.
//! - [`kernels`]: the SIMD loops, compiled once per CPU tier and chosen at run time.
//!
//! ```
//! use normclip_core::{Axes, Constraint};
//! // A Dense kernel [in=3, units=2]; MaxNorm(2) along axis 0 (one norm per unit).
//! let mut w = [3.0f32, 0.0, 4.0, 1.0, 0.0, 0.0];
//! let max_norm = Constraint::max_norm(2.0, Axes::default()).unwrap();
//! max_norm.apply_in_place(&mut w, &[3, 2]).unwrap();
//! assert!((w[0] - 1.2).abs() < 1e-6 && (w[2] - 1.6).abs() < 1e-6); // column 0 had norm 5
//! ```

pub mod apply;
pub mod batch;
pub mod clip;
pub mod constraint;
mod dispatch;
pub mod element;
pub mod error;
pub mod exact;
pub mod kernels;
pub mod layout;
mod parallel;
#[cfg(feature = "probe")]
pub mod probe;
mod radial;
pub mod spec;
pub mod wide;

pub use apply::Norms;
pub use constraint::{Constraint, Mode, DEFAULT_EPSILON};
pub use dispatch::norms_on;
pub use element::{Element, Floats, FloatsMut};
pub use error::{Error, ErrorKind};
pub use kernels::Tier;
pub use layout::Axes;
pub use parallel::{thread_count, MAX_THREADS_PER_CORE};
pub use spec::{ConstraintSpec, Kind};
