//! Constraints bound to one shape, and `applyBound`: the per-call fast path.
//!
//! `applyBound` is registered as a raw N-API function rather than through `#[napi]`: for a 16-element
//! tensor the napi-rs call glue (borrow scopes, the External registry lock) cost more than the
//! work itself (~1,500 of ~3,100 instructions per call, measured with callgrind). The raw callback
//! reads two arguments, checks the handle's type tag, and runs the plan made at bind time.

use std::ffi::c_void;
use std::ptr;

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env};
use napi_derive::napi;
use normclip_core::apply::Prepared;
use normclip_core::{Constraint, Error as CoreError};

use crate::arrays::{ArrayView, Dtype};
use crate::constraint::run_on;
use crate::errors::OrThrow;
use crate::shape::read_shape;
use crate::spec::read_spec;

/// Marks our externals, so `applyBound` never reads another addon's pointer as ours.
const BOUND_TAG: sys::napi_type_tag = sys::napi_type_tag {
    lower: 0x6e6f_726d_636c_6970,
    upper: 0x626f_756e_6400_0001,
};

/// A constraint with the plan for one shape, made once.
pub struct BoundConstraint {
    constraint: Constraint,
    shape: Vec<usize>,
    len: usize,
    prepared: Prepared,
}

unsafe extern "C" fn finalize_bound(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the `Box<BoundConstraint>` leaked in `create_bound_constraint`; V8 calls
    // this finalizer exactly once, after the last JS reference is gone.
    drop(unsafe { Box::from_raw(data.cast::<BoundConstraint>()) });
}

/// Builds a constraint for arrays of one `shape` (validated now, with its plan made once): the
/// fastest way to apply it many times, e.g. to the same weight after every training step.
/// Apply it with `applyBound(bound, array)`.
#[napi(
    ts_args_type = "spec: NativeConstraintSpec, shape: number[]",
    ts_return_type = "ExternalObject<'NativeBoundConstraint'>"
)]
pub fn create_bound_constraint<'env>(
    env: &'env Env,
    spec: Unknown,
    shape: Unknown,
) -> napi::Result<Unknown<'env>> {
    let constraint = read_spec(&spec).or_throw(env)?;
    let shape = read_shape(&shape, "shape").or_throw(env)?;
    let len = normclip_core::layout::element_count(&shape).or_throw(env)?;
    let prepared = constraint.prepare(len, &shape).or_throw(env)?;
    let bound = Box::into_raw(Box::new(BoundConstraint {
        constraint,
        shape,
        len,
        prepared,
    }));
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
        return Err(napi::Error::from_status(status.into()));
    }
    // SAFETY: `external` was just created in this environment.
    napi::check_status!(unsafe { sys::napi_type_tag_object(env.raw(), external, &BOUND_TAG) })?;
    // SAFETY: `external` is a valid value of this call's environment.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), external) })
}

/// Throws a JS error of the core error's kind; the raw callback then returns null.
fn throw_raw(env: sys::napi_env, error: CoreError) -> sys::napi_value {
    let _ = crate::errors::throw(&Env::from_raw(env), error);
    ptr::null_mut()
}

/// `applyBound(bound, array)`: applies a bound constraint in place; the array must have the
/// bound shape's length.
unsafe extern "C" fn apply_bound(
    env: sys::napi_env,
    info: sys::napi_callback_info,
) -> sys::napi_value {
    let mut argc = 2usize;
    let mut argv = [ptr::null_mut(); 2];
    // SAFETY: `env` and `info` are the ones V8 passed to this callback; `argv` holds `argc` slots.
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
    if status != sys::Status::napi_ok {
        return throw_raw(
            env,
            CoreError::type_error("applyBound: could not read the arguments"),
        );
    }
    let mut tagged = false;
    // SAFETY: `argv[0]` is an argument of this call (undefined if it was not passed).
    unsafe { sys::napi_check_object_type_tag(env, argv[0], &BOUND_TAG, &mut tagged) };
    if argc < 2 || !tagged {
        return throw_raw(
            env,
            CoreError::type_error("bound: expected a handle from createBoundConstraint"),
        );
    }
    let mut data = ptr::null_mut();
    // SAFETY: the type tag proves `argv[0]` is an external we created around a `BoundConstraint`.
    unsafe { sys::napi_get_value_external(env, argv[0], &mut data) };
    // SAFETY: the external keeps the box alive while JS holds the handle, which it does during this call.
    let bound = unsafe { &*data.cast::<BoundConstraint>() };
    let wrapped_env = Env::from_raw(env);
    // SAFETY: `argv[1]` is an argument of this call.
    let array = unsafe { Unknown::from_raw_unchecked(env, argv[1]) };
    let view = match ArrayView::from_value(&wrapped_env, &array, "array") {
        Ok(view) => view,
        Err(error) => return throw_raw(env, error),
    };
    if view.len != bound.len {
        return throw_raw(
            env,
            CoreError::range(format!(
                "array: expected length {} (the product of shape {:?}), got {}",
                bound.len, bound.shape, view.len
            )),
        );
    }
    match view.dtype {
        // SAFETY: the view was taken in this synchronous call (JS cannot run or detach the buffer
        // before we return) and is the only slice of its memory.
        Dtype::F32 => run_on(&bound.constraint, &bound.prepared, unsafe {
            view.f32_mut()
        }),
        // SAFETY: as above.
        Dtype::F64 => run_on(&bound.constraint, &bound.prepared, unsafe {
            view.f64_mut()
        }),
    }
    ptr::null_mut()
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
