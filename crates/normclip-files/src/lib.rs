//! Weight files read and constrained at disk speed with `normclip-core`, a chunk at a time.
//!
//! - [`safetensors`]: headers through the `safetensors` crate (the format's reference).
//! - [`npy`]: NumPy `.npy` headers; [`zip`]: zip directories (`.npz`, `.keras`), so stored entries
//!   are byte ranges like any other.
//! - [`tensor`]: a tensor as byte ranges of files, its norms and constraint computed in chunks of
//!   at most [`tensor::CHUNK_ELEMENTS`] elements (memory stays bounded for files of any size).
//! - [`plan`]: inspecting tensors, and writing new files from copied ranges, literal bytes and
//!   constrained tensors, synced before the caller renames them into place.
//!
//! Formats whose layout is JSON (TensorFlow.js `model.json`) are read by the caller, which hands
//! over byte ranges.

pub mod dtype;
pub mod error;
pub mod npy;
pub mod plan;
pub mod safetensors;
pub mod tensor;
pub mod zip;

pub use dtype::{DType, Order};
pub use error::{FileError, FileErrorKind, Result};
pub use plan::{inspect, write, CrcPatch, OutputFile, Piece, TensorTask, WritePlan};
pub use tensor::{Outcome, Segment, TensorRef};
