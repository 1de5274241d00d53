//! Core errors become JavaScript `TypeError`s and `RangeError`s with the core's message.

use napi::{Env, Error, Status};
use normclip_core::{Error as CoreError, ErrorKind};

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

/// `Result<T, CoreError>` → napi result, throwing on error.
pub trait OrThrow<T> {
    fn or_throw(self, env: &Env) -> napi::Result<T>;
}

impl<T> OrThrow<T> for Result<T, CoreError> {
    fn or_throw(self, env: &Env) -> napi::Result<T> {
        self.map_err(|error| throw(env, error))
    }
}
