//! The core's [`Error`] and [`Result`], shared by the IR, the backends and the model format;
//! the other crates wrap it in their own errors.

use std::path::PathBuf;

/// The result type of every dlbench library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the core, in an adapter or in a format reader.
///
/// Each variant names the thing at fault (a node, a value, a file) so that a user can find it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A node's inputs do not fit its op: names the node, the op and the shapes.
    #[error("node `{node}` ({op}): {message}")]
    Node {
        /// The node's name in the graph.
        node: String,
        /// The op's name, as [`crate::ir::Op::name`] gives it.
        op: String,
        /// What does not fit, with the shapes involved.
        message: String,
    },
    /// The graph or model is malformed (unknown value, missing weight, duplicate name...).
    #[error("{0}")]
    Invalid(String),
    /// A backend cannot do this; the reason is part of the results, never faked.
    #[error("unsupported by {backend}: {what}")]
    Unsupported {
        /// The backend's [`crate::Backend::name`].
        backend: String,
        /// The op, dtype, device or mode it lacks, and why.
        what: String,
    },
    /// A file could not be read or written as the format requires.
    #[error("{}: {message}", path.display())]
    File {
        /// The file at fault.
        path: PathBuf,
        /// What is wrong with its content.
        message: String,
    },
    /// The operating system failed to open, read, write or rename a file.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file being accessed, or a stream's name such as `<stdout>`.
        path: PathBuf,
        /// The underlying I/O error.
        source: std::io::Error,
    },
    /// A framework failed while running.
    #[error("{backend}: {message}")]
    Backend {
        /// The backend's [`crate::Backend::name`].
        backend: String,
        /// The framework's own message.
        message: String,
    },
}

impl Error {
    /// An [`Error::Invalid`] with this message.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    /// An [`Error::Node`] for the node `node` running `op`.
    pub fn node(node: &str, op: &str, message: impl Into<String>) -> Self {
        Error::Node {
            node: node.to_string(),
            op: op.to_string(),
            message: message.into(),
        }
    }

    /// An [`Error::Unsupported`]: `backend` cannot do `what`.
    pub fn unsupported(backend: &str, what: impl Into<String>) -> Self {
        Error::Unsupported {
            backend: backend.to_string(),
            what: what.into(),
        }
    }

    /// An [`Error::File`]: `path` holds content the format rejects.
    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::File {
            path: path.into(),
            message: message.into(),
        }
    }

    /// An [`Error::Io`]: the operating system failed on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
