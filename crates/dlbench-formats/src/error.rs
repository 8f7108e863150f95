//! The formats crate's [`Error`] and [`Result`]: reading and writing foreign model files
//! (PyTorch `state_dict` archives) and fitting their tensors to a model.

use std::path::PathBuf;

/// The result type of dlbench-formats.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while reading or writing a foreign model file. Each variant names the file
/// and, where it applies, the key or byte offset at fault and what was expected there.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system failed to open, read or write a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being accessed.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// The file is readable but is not what the format requires (a bad zip, a missing entry,
    /// an unsupported dtype, a pickle that does more than describe tensors).
    #[error("{}: {message}", path.display())]
    File {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong, with the entry, key or byte offset where it applies.
        message: String,
    },
    /// A tensor of the file does not fit the model it is loaded into.
    #[error("{}: `{key}`: {message}", path.display())]
    Tensor {
        /// The file holding the tensor.
        path: PathBuf,
        /// The tensor's `state_dict` key, e.g. `fc1.weight`.
        key: String,
        /// How it does not fit (shape, dtype, missing or extra).
        message: String,
    },
    /// An explicit tensor mapping (`OLD=NEW`, from `--map` or a mapping file) is malformed or
    /// names a tensor or parameter twice.
    #[error("{origin}: {message}")]
    Mapping {
        /// Where the pair was given: `--map `a=b``, or a mapping file and line (`map.txt:3`).
        origin: String,
        /// What is wrong with it.
        message: String,
    },
    /// A core error, e.g. a model that fails validation once its weights are loaded.
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

    pub(crate) fn tensor(
        path: impl Into<PathBuf>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Error::Tensor {
            path: path.into(),
            key: key.into(),
            message: message.into(),
        }
    }
}
