use std::path::PathBuf;

/// The result type of dlbench-formats.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while reading or writing a foreign model file. Each variant names the file
/// and, where it applies, the key or byte offset at fault and what was expected there.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is readable but is not what the format requires (a bad zip, a missing entry,
    /// an unsupported dtype, a pickle that does more than describe tensors).
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    /// A tensor of the file does not fit the model it is loaded into.
    #[error("{}: `{key}`: {message}", path.display())]
    Tensor {
        path: PathBuf,
        key: String,
        message: String,
    },
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
