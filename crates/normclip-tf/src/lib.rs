//! normclip's passes as TensorFlow custom ops, so that tensors living in TensorFlow (tfjs-node's)
//! are constrained on their own memory instead of being copied out to JavaScript and back.
//!
//! - [`register`] resolves TensorFlow's C API from the TensorFlow library already loaded in the
//!   process ([`capi`]: `dlopen(RTLD_NOLOAD)` + `dlsym`, never a link-time dependency) and
//!   registers the op family ([`ops`]) with a CPU kernel each, once per process.
//! - Then anything that can execute a TensorFlow op by name runs them: tfjs-node's
//!   `backend.executeMultipleOutputs('NormclipConstrain', attrs, tensors, n)`.
//!
//! The ops' contract (inputs, outputs, attributes, forwarding) is documented in [`ops`]; the
//! `spec` attribute of `NormclipConstrain` in [`spec`].

mod capi;
pub mod ops;
pub mod spec;

pub use ops::{output_counts, register, Registration, DISABLE_ENV};
