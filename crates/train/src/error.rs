use std::path::PathBuf;

/// What can stop a training run. Every variant says what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Data(#[from] data::Error),
    #[error(transparent)]
    Model(#[from] nets::Error),
    #[error(
        "invalid step string `{0}`: use iterations and/or epochs such as `500it`, `2ep` or `120ep50it`"
    )]
    Steps(String),
    #[error(transparent)]
    Write(#[from] results::Error),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error(
        "the loss (or a weight) became {value} between steps {from} and {step}; training stopped. The last good checkpoint (step {last_checkpoint}) is kept in {dir}. Lower the learning rate or check the data, then run again."
    )]
    NonFinite {
        /// The first step since the last finite read.
        from: u64,
        step: u64,
        value: f32,
        last_checkpoint: u64,
        dir: PathBuf,
    },
    #[error(
        "the training diverged: its loss stayed above {threshold:.3}, far above chance level (the divergence rule: a multiple of ln(classes)), from step {since} to {step}, last at {loss:.3e}; training stopped. Its checkpoints are kept in {dir}, the latest at step {last_checkpoint}. Lower the learning rate (or add a warmup) or check the data and labels, then run again (the rule is `divergence` in the run's configuration)."
    )]
    Diverged {
        since: u64,
        step: u64,
        loss: f64,
        threshold: f64,
        last_checkpoint: u64,
        dir: PathBuf,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid {what}: {reason}")]
    Parse {
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error(
        "checkpoint {path} cannot be loaded ({reason}). A run resuming from it falls back to its \
         previous checkpoint by itself; where another run branches from it, delete the run \
         directory that holds it: the next invocation trains that run again."
    )]
    Checkpoint { path: PathBuf, reason: String },
    #[error(
        "{dir} was trained up to step {step} with other numerics ({was}; here: {now}): trained \
         on here it would not end as the network an uninterrupted run computes. Go on with the \
         build (and kind of machine) that trained it, or delete that run's directory to train it \
         again from the start."
    )]
    NumericsChanged {
        dir: PathBuf,
        step: u64,
        was: String,
        now: String,
    },
    #[error(
        "could not write checkpoint {path} ({reason}). Nothing of it was kept; free disk space (or fix permissions) and run the same command again: the run resumes from its last complete checkpoint."
    )]
    CheckpointWrite { path: PathBuf, reason: String },
    #[error("the first state of the run could not be made: {0}")]
    Start(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error(
        "{dir} holds a run with a different configuration. Use another directory, or delete it to start over.\n  existing: {existing}\n  new:      {new}"
    )]
    ConfigMismatch {
        dir: PathBuf,
        existing: String,
        new: String,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
