//! Entry points for buffers of either element type, with the active tier: what a binding calls
//! once it has checked its arguments.

use crate::apply::{norms_into, Prepared};
use crate::element::{Element, Floats, FloatsMut};
use crate::error::{Error, Result};
use crate::kernels::{Kernels, Tier};
use crate::layout::Plan;

fn kernels<T: Element>() -> Kernels<T> {
    Kernels::for_tier(Tier::active()).expect("the active tier is supported by construction")
}

impl Prepared {
    /// [`Prepared::run`] on a buffer of either element type.
    pub fn run_on(&self, data: &mut FloatsMut<'_>) {
        match data {
            FloatsMut::F32(data) => self.run(data, &kernels()),
            FloatsMut::F64(data) => self.run(data, &kernels()),
        }
    }

    /// [`Prepared::run_copy_into`] for buffers of either element type (both the same, and of
    /// the prepared length).
    pub fn copy_on(&self, source: Floats<'_>, out: FloatsMut<'_>) -> Result<()> {
        match (source, out) {
            (Floats::F32(source), FloatsMut::F32(out))
                if (source.len(), out.len()) == (self.len(), self.len()) =>
            {
                self.run_copy_into(source, out, &kernels())
            }
            (Floats::F64(source), FloatsMut::F64(out))
                if (source.len(), out.len()) == (self.len(), self.len()) =>
            {
                self.run_copy_into(source, out, &kernels())
            }
            _ => {
                return Err(Error::type_error(
                    "output: expected an array of the input's type and length",
                ))
            }
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
            norms_into(data, plan, out, &kernels())
        }
        (Floats::F64(data), FloatsMut::F64(out))
            if (data.len(), out.len()) == (plan.len, plan.slices) =>
        {
            norms_into(data, plan, out, &kernels())
        }
        _ => {
            return Err(Error::type_error(
                "norms: expected an output of the input's type with one element per slice",
            ))
        }
    }
    Ok(())
}
