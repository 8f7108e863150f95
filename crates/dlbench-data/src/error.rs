//! The data crate's [`Error`] and [`Result`]: loading files (CSV, npy/npz) and preparing
//! datasets from them.

use std::path::PathBuf;

/// The result type of dlbench-data.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while loading or preparing data. File errors name the file and, where it
/// applies, the line, column or array at fault and what was expected there.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system failed to open or read a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is readable but not what the loader expects.
    #[error("{}: {message}", path.display())]
    File {
        /// The file at fault.
        path: PathBuf,
        /// Where in it (line, column, array) and what was expected there.
        message: String,
    },
    /// Data or arguments that do not fit together (shapes, fractions, labels).
    #[error("{0}")]
    Invalid(String),
    /// A core error, e.g. a tensor whose data does not fit its shape.
    #[error(transparent)]
    Core(#[from] dlbench_core::Error),
}

impl Error {
    pub(crate) fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::File {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }
}
