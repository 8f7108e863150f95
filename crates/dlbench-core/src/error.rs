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
        node: String,
        op: String,
        message: String,
    },
    /// The graph or model is malformed (unknown value, missing weight, duplicate name...).
    #[error("{0}")]
    Invalid(String),
    /// A backend cannot do this; the reason is part of the results, never faked.
    #[error("unsupported by {backend}: {what}")]
    Unsupported { backend: String, what: String },
    /// A file could not be read or written as the format requires.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// A framework failed while running.
    #[error("{backend}: {message}")]
    Backend { backend: String, message: String },
}

impl Error {
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid(message.into())
    }

    pub fn node(node: &str, op: &str, message: impl Into<String>) -> Self {
        Error::Node {
            node: node.to_string(),
            op: op.to_string(),
            message: message.into(),
        }
    }

    pub fn unsupported(backend: &str, what: impl Into<String>) -> Self {
        Error::Unsupported {
            backend: backend.to_string(),
            what: what.into(),
        }
    }

    pub fn file(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::File {
            path: path.into(),
            message: message.into(),
        }
    }

    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
