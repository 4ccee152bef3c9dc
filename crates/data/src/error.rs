use std::path::PathBuf;

/// Everything that can go wrong while finding, downloading or reading a dataset.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Name(#[from] results::Error),
    #[error("{dataset} is missing from {dir}: expected the files {expected}. {hint}")]
    Missing {
        dataset: String,
        dir: PathBuf,
        expected: String,
        hint: String,
    },
    #[error("{path} is corrupt or truncated: {reason}. Delete it and download it again.")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{path}: checksum mismatch (expected {expected}, found {found}). Delete it and download it again."
    )]
    Checksum {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("could not read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("download of {url} failed: {reason}")]
    Download { url: String, reason: String },
    #[error("cannot decode image {path}: {reason}")]
    Decode { path: PathBuf, reason: String },
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
