//! Entry points for buffers of either element type, with the active tier: what a binding calls
//! once it has checked its arguments.

use crate::apply::{norms_into, Prepared};
use crate::element::{Element, Floats, FloatsMut};
use crate::error::{Error, Result};
use crate::kernels::Kernels;
use crate::layout::Plan;

fn kernels<T: Element>() -> &'static Kernels<T> {
    Kernels::active()
}

impl Prepared {
    /// [`Prepared::run`] on a buffer of either element type.
    pub fn run_on(&self, data: &mut FloatsMut<'_>) {
        match data {
            FloatsMut::F32(data) => self.run(data, kernels()),
            FloatsMut::F64(data) => self.run(data, kernels()),
        }
    }

    /// An error unless `len` is the prepared length.
    pub fn check_len(&self, len: usize) -> Result<()> {
        if len != self.len() {
            return Err(Error::type_error(format!(
                "array: expected {} elements, the length the call was prepared for, got {len}",
                self.len()
            )));
        }
        Ok(())
    }

    /// An error unless `source` and `out` are of one element type and of the prepared length.
    pub fn check_copy(&self, source: Floats<'_>, out: &FloatsMut<'_>) -> Result<()> {
        let same_type = matches!(
            (source, out),
            (Floats::F32(_), FloatsMut::F32(_)) | (Floats::F64(_), FloatsMut::F64(_))
        );
        if !same_type || (source.len(), out.len()) != (self.len(), self.len()) {
            return Err(Error::type_error(
                "output: expected an array of the input's type and length",
            ));
        }
        Ok(())
    }

    /// [`Prepared::run_copy_into`] for buffers of either element type (both the same, and of
    /// the prepared length).
    pub fn copy_on(&self, source: Floats<'_>, out: &mut FloatsMut<'_>) -> Result<()> {
        self.check_copy(source, out)?;
        match (source, out) {
            (Floats::F32(source), FloatsMut::F32(out)) => {
                self.run_copy_into(source, out, kernels())
            }
            (Floats::F64(source), FloatsMut::F64(out)) => {
                self.run_copy_into(source, out, kernels())
            }
            _ => unreachable!("check_copy matched the types"),
        }
        Ok(())
    }
}

/// [`norms_into`] for buffers of either element type (both the same).
pub fn norms_on(data: Floats<'_>, plan: &Plan, out: FloatsMut<'_>) -> Result<()> {
    match (data, out) {
        (Floats::F32(data), FloatsMut::F32(out))
            if (data.len(), out.len()) == (plan.len, plan.slices) =>
        {
            norms_into(data, plan, out, kernels())
        }
        (Floats::F64(data), FloatsMut::F64(out))
            if (data.len(), out.len()) == (plan.len, plan.slices) =>
        {
            norms_into(data, plan, out, kernels())
        }
        _ => {
            return Err(Error::type_error(
                "norms: expected an output of the input's type with one element per slice",
            ))
        }
    }
    Ok(())
}
