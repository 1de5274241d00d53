//! One error type for everything a file can do wrong. The message always names the file, so the
//! CLI can print it as it is: `model.safetensors: tensor "w" needs 64 bytes, the file has 60`.

use std::fmt;
use std::path::Path;

/// What went wrong, for the exit status and the JS error class.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileErrorKind {
    /// The file is not what it claims to be: truncated, a header that lies, bad JSON, …
    Invalid,
    /// A valid file with something normclip does not handle (a dtype, a compression method).
    Unsupported,
    /// The operating system refused: missing file, permissions, full disk.
    Io,
    /// The caller's request does not fit the file (a constraint on an integer tensor, a bad axis).
    Request,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub kind: FileErrorKind,
    /// The file the problem is in (as the user named it).
    pub path: String,
    /// What is wrong, without the path.
    pub message: String,
}

impl FileError {
    pub fn new(kind: FileErrorKind, path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Self {
            kind,
            path: path.as_ref().display().to_string(),
            message: message.into(),
        }
    }

    pub fn invalid(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Self::new(FileErrorKind::Invalid, path, message)
    }

    pub fn unsupported(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Self::new(FileErrorKind::Unsupported, path, message)
    }

    pub fn request(path: impl AsRef<Path>, message: impl Into<String>) -> Self {
        Self::new(FileErrorKind::Request, path, message)
    }

    /// An OS error while doing `what` (e.g. "cannot write").
    pub fn io(path: impl AsRef<Path>, what: &str, error: &std::io::Error) -> Self {
        Self::new(FileErrorKind::Io, path, format!("{what}: {error}"))
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

impl std::error::Error for FileError {}

pub type Result<T> = std::result::Result<T, FileError>;
