//! Constraints bound to one shape (`NativeConstraint.bind`), and `applyBound`: the per-call fast
//! path.
//!
//! `applyBound` is registered as a raw N-API function rather than through `#[napi]`: for a 16-element
//! tensor the napi-rs call glue (borrow scopes, the External registry lock) cost more than the
//! work itself (~1,500 of ~3,100 instructions per call, measured with callgrind). The raw callback
//! reads two arguments, checks the handle's type tag, and runs the plan made at bind time:
//! 1,787 instructions per call inclusive on a [16] MaxNorm (callgrind, 100,000 calls), of which
//! 526 are `take_raw` with its one `napi_get_typedarray_info` and 182 the type-tag check; before
//! the two-phase rewrite it was 1,708.

use std::ffi::c_void;
use std::ptr;

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env};
use normclip_core::apply::Prepared;
use normclip_core::{Constraint, Error as CoreError};

use crate::errors::{guard_raw, Failure, Res};
use crate::read::{Arg, Reading, Shape};
use crate::views::Access;

/// Marks our externals, so `applyBound` never reads another addon's pointer as ours.
const BOUND_TAG: sys::napi_type_tag = sys::napi_type_tag {
    lower: 0x6e6f_726d_636c_6970,
    upper: 0x626f_756e_6400_0001,
};

/// A constraint's plan for one shape, made once.
pub struct BoundConstraint {
    shape: Shape,
    prepared: Prepared,
}

unsafe extern "C" fn finalize_bound(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the `Box<BoundConstraint>` leaked in `create`; V8 calls this finalizer
    // exactly once, after the last JS reference is gone.
    drop(unsafe { Box::from_raw(data.cast::<BoundConstraint>()) });
}

/// A bound constraint as a tagged external (`NativeConstraint.bind`).
pub fn create<'env>(env: &'env Env, constraint: &Constraint, shape: Shape) -> Res<Unknown<'env>> {
    let prepared = constraint.prepare(shape.len(), shape.dims())?;
    let bound = Box::into_raw(Box::new(BoundConstraint { shape, prepared }));
    let mut external = ptr::null_mut();
    // SAFETY: `bound` is a fresh heap pointer whose ownership passes to the external (freed by
    // `finalize_bound`); `env` is the live environment of this call.
    let status = unsafe {
        sys::napi_create_external(
            env.raw(),
            bound.cast(),
            Some(finalize_bound),
            ptr::null_mut(),
            &mut external,
        )
    };
    if status != sys::Status::napi_ok {
        // SAFETY: the external was not created, so we still own `bound`.
        drop(unsafe { Box::from_raw(bound) });
        return Err(Failure::from_status(env.raw(), status));
    }
    // SAFETY: `external` was just created in this environment.
    let status = unsafe { sys::napi_type_tag_object(env.raw(), external, &BOUND_TAG) };
    if status != sys::Status::napi_ok {
        return Err(Failure::from_status(env.raw(), status));
    }
    // SAFETY: `external` is a valid value of this call's environment.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), external) })
}

/// `applyBound(bound, array)`: applies a bound constraint in place; the array must have the
/// bound shape's length. Reads two arguments and no property, so nothing in it runs JavaScript.
unsafe extern "C" fn apply_bound(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    guard_raw(env, || {
        let mut argc = 2usize;
        let mut argv = [ptr::null_mut(); 2];
        // SAFETY: `env` and `info` are the ones V8 passed to this callback; `argv` holds `argc`
        // slots.
        let status = unsafe {
            sys::napi_get_cb_info(
                env,
                info,
                &mut argc,
                argv.as_mut_ptr(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if status != sys::Status::napi_ok || argc < 2 {
            return Err(CoreError::type_error("applyBound: expected (bound, array)"));
        }
        let mut tagged = false;
        // SAFETY: `argv[0]` is an argument of this call.
        let status =
            unsafe { sys::napi_check_object_type_tag(env, argv[0], &BOUND_TAG, &mut tagged) };
        if status != sys::Status::napi_ok || !tagged {
            return Err(CoreError::type_error(
                "bound: expected a handle from NativeConstraint.bind",
            ));
        }
        let mut data = ptr::null_mut();
        // SAFETY: the type tag proves `argv[0]` is an external we created around a
        // `BoundConstraint`.
        unsafe { sys::napi_get_value_external(env, argv[0], &mut data) };
        // SAFETY: the external keeps the box alive while JS holds the handle, which it does
        // during this call (it is an argument).
        let bound = unsafe { &*data.cast::<BoundConstraint>() };
        let wrapped = Env::from_raw(env);
        // Two arguments and no property read: nothing here runs JavaScript, so phase 1 is empty
        // and the array's type is checked with its view, in one N-API call.
        let sealed = Reading::begin(&wrapped).seal();
        // SAFETY: `argv[1]` is an argument of this call (undefined when not passed).
        let value = unsafe { Unknown::from_raw_unchecked(env, argv[1]) };
        let mut view = sealed
            .view_of_value(
                &value,
                Arg::plain("array"),
                bound.shape.len(),
                Some(bound.shape.dims()),
                Access::Write,
            )
            .map_err(core)?;
        bound.prepared.run_on(&mut view.floats_mut());
        Ok(ptr::null_mut())
    })
}

/// Phase 1 of `applyBound` reads no property, so no exception can be pending: every failure is
/// a core error.
fn core(failure: Failure) -> CoreError {
    match failure {
        Failure::Core(error) => error,
        Failure::Pending(status) => {
            CoreError::type_error(format!("applyBound: N-API call failed ({status})"))
        }
    }
}

/// Creates the raw `applyBound` function when napi-rs builds the module's exports.
///
/// # Safety
/// Called by napi-rs with the module's live `env`.
unsafe fn create_apply_bound(env: sys::napi_env) -> napi::Result<sys::napi_value> {
    let mut function = ptr::null_mut();
    let name = "applyBound";
    // SAFETY: `env` is live (see above); the name pointer and length match.
    napi::check_status!(unsafe {
        sys::napi_create_function(
            env,
            name.as_ptr().cast(),
            name.len() as isize,
            Some(apply_bound),
            ptr::null_mut(),
            &mut function,
        )
    })?;
    Ok(function)
}

napi::ctor::declarative::ctor! {
    #[ctor(unsafe)]
    fn register_apply_bound() {
        napi::bindgen_prelude::register_module_export(None, "applyBound\0", create_apply_bound)
    }
}
