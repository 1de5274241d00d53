//! How calls fail: core errors become JavaScript `TypeError`s and `RangeError`s with the core's
//! message; an exception user code threw while we read its values propagates unchanged; a panic
//! becomes an `Error` instead of aborting Node.

use std::any::Any;
use std::ffi::CString;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;

use napi::bindgen_prelude::Unknown;
use napi::{sys, Env, Error, Status};
use normclip_core::{Error as CoreError, ErrorKind};

/// Why a call stopped before it finished.
#[derive(Debug)]
pub enum Failure {
    /// A bad argument: thrown as a TypeError or RangeError.
    Core(CoreError),
    /// JavaScript threw (a getter, a Proxy trap) or N-API failed while we read a value; the
    /// exception, if any, is still pending and reaches the caller as it is.
    Pending(Status),
}

pub type Res<T> = Result<T, Failure>;

impl From<CoreError> for Failure {
    fn from(error: CoreError) -> Self {
        Failure::Core(error)
    }
}

impl Failure {
    pub fn type_error(message: impl Into<String>) -> Self {
        Failure::Core(CoreError::type_error(message))
    }

    pub fn range(message: impl Into<String>) -> Self {
        Failure::Core(CoreError::range(message))
    }

    pub fn from_status(_env: sys::napi_env, status: sys::napi_status) -> Self {
        Failure::Pending(Status::from(status))
    }

    /// The napi-rs error that makes the binding glue throw this failure.
    pub fn throw(self, env: &Env) -> Error {
        match self {
            Failure::Core(error) => throw(env, error),
            Failure::Pending(status) => {
                let mut pending = false;
                // SAFETY: `env` is the live environment of this call.
                unsafe { sys::napi_is_exception_pending(env.raw(), &mut pending) };
                if pending {
                    Error::from_status(Status::PendingException)
                } else {
                    Error::new(status, format!("normclip: N-API call failed ({status})"))
                }
            }
        }
    }
}

/// Throws `error` as the matching JS error class and returns the "exception pending" marker the
/// napi glue expects, so the thrown object (not a generic `Error`) reaches the caller.
pub fn throw(env: &Env, error: CoreError) -> Error {
    let thrown = match error.kind {
        ErrorKind::Type => env.throw_type_error(&error.message, None),
        ErrorKind::Range => env.throw_range_error(&error.message, None),
    };
    match thrown {
        Ok(()) => Error::from_status(Status::PendingException),
        Err(failed) => failed,
    }
}

/// `Result<T, Failure>` → napi result, throwing on error.
pub trait OrThrow<T> {
    fn or_throw(self, env: &Env) -> napi::Result<T>;
}

impl<T> OrThrow<T> for Res<T> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|failure| failure.throw(env))
    }
}

impl<T> OrThrow<T> for Result<T, CoreError> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|error| throw(env, error))
    }
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn Any + Send)) -> String {
    let detail = payload
        .downcast_ref::<&str>()
        .map(|text| text.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    format!(
        "normclip: internal error ({detail}); nothing was written. This is a bug: please report it"
    )
}

/// Runs the body of an export, turning a panic into a thrown `Error` that says what happened
/// (napi-rs' own `catch_unwind` stays as the last line, for its glue).
pub fn guard<T>(env: &Env, body: impl FnOnce() -> napi::Result<T>) -> napi::Result<T> {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(result) => result,
        Err(payload) => {
            throw_error(env.raw(), &panic_message(payload.as_ref()));
            Err(Error::from_status(Status::PendingException))
        }
    }
}

/// Runs the body of a raw N-API callback, turning a panic into a thrown `Error` (unwinding out of
/// an `extern "C"` function would abort the process). Returns null when it threw.
pub fn guard_raw(
    env: sys::napi_env,
    body: impl FnOnce() -> Result<sys::napi_value, CoreError>,
) -> sys::napi_value {
    // The body holds no state that a panic could leave half-updated for a later call: each call
    // builds its own.
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(Ok(value)) => value,
        Ok(Err(error)) => {
            let _ = throw(&Env::from_raw(env), error);
            ptr::null_mut()
        }
        Err(payload) => {
            throw_error(env, &panic_message(payload.as_ref()));
            ptr::null_mut()
        }
    }
}

/// Throws a plain `Error` with `message`.
pub fn throw_error(env: sys::napi_env, message: &str) {
    let text = CString::new(message.replace('\0', " ")).expect("NULs were replaced");
    // SAFETY: `env` is the live environment of the current call; the message is NUL-terminated.
    unsafe { sys::napi_throw_error(env, ptr::null(), text.as_ptr()) };
}

/// A `RangeError` object (not thrown), e.g. to reject a Promise with.
pub fn range_error_value<'env>(env: &'env Env, message: &str) -> napi::Result<Unknown<'env>> {
    let mut text = ptr::null_mut();
    // SAFETY: `env` is live; the pointer and length describe `message`'s UTF-8 bytes.
    napi::check_status!(unsafe {
        sys::napi_create_string_utf8(
            env.raw(),
            message.as_ptr().cast(),
            message.len() as isize,
            &mut text,
        )
    })?;
    let mut error = ptr::null_mut();
    // SAFETY: `text` is a string of this environment; a null code is allowed.
    napi::check_status!(unsafe {
        sys::napi_create_range_error(env.raw(), ptr::null_mut(), text, &mut error)
    })?;
    // SAFETY: `error` was just created in this environment.
    Ok(unsafe { Unknown::from_raw_unchecked(env.raw(), error) })
}
