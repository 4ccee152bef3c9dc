//! Typed names of runs and of what each run is.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;

/// The two kinds of job of the experiment store: the prefix of a run's directory name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum JobKind {
    /// A training run (`train-…`).
    Train,
    /// An interpolation of two training runs (`pair-…`).
    Pair,
}

impl JobKind {
    pub const ALL: [JobKind; 2] = [JobKind::Train, JobKind::Pair];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Train => "train",
            JobKind::Pair => "pair",
        }
    }
}

/// The name of a run in the store: `<kind>-<16 hex digits of the hash of its identity>`.
/// Serialised as that string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RunId {
    kind: JobKind,
    hash: String,
}

impl RunId {
    /// The id of a run of `kind` whose identity hashes to `hash` (lowercase hex digits).
    pub fn new(kind: JobKind, hash: String) -> RunId {
        RunId { kind, hash }
    }

    pub fn kind(&self) -> JobKind {
        self.kind
    }

    pub fn is_training(&self) -> bool {
        self.kind == JobKind::Train
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.kind.as_str(), self.hash)
    }
}

impl FromStr for RunId {
    type Err = Error;
    fn from_str(s: &str) -> Result<RunId, Error> {
        let unknown = || Error::Unknown {
            what: "run id",
            value: s.to_string(),
            expected: "a run's directory name, such as `train-0123456789abcdef`".into(),
        };
        let (prefix, hash) = s.split_once('-').ok_or_else(unknown)?;
        let kind = JobKind::ALL
            .into_iter()
            .find(|k| k.as_str() == prefix)
            .ok_or_else(unknown)?;
        if hash.is_empty() || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(unknown());
        }
        Ok(RunId::new(kind, hash.to_ascii_lowercase()))
    }
}

impl Serialize for RunId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RunId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RunId, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The branch of an IMP experiment a run belongs to: IMP itself or one of its baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Branch {
    /// Magnitude pruning with rewinding.
    Imp,
    /// A random mask with the IMP mask's per-layer densities, on the rewound weights.
    RandomPrune,
    /// The IMP mask on freshly initialised weights.
    Reinit,
}

impl Branch {
    pub const ALL: [Branch; 3] = [Branch::Imp, Branch::RandomPrune, Branch::Reinit];
    /// The baselines IMP is compared with.
    pub const BASELINES: [Branch; 2] = [Branch::RandomPrune, Branch::Reinit];

    pub fn as_str(self) -> &'static str {
        match self {
            Branch::Imp => "imp",
            Branch::RandomPrune => "random-prune",
            Branch::Reinit => "reinit",
        }
    }

    /// How figures and tables name the branch.
    pub fn label(self) -> &'static str {
        match self {
            Branch::Imp => "IMP",
            Branch::RandomPrune => "random pruning",
            Branch::Reinit => "random reinit",
        }
    }
}

impl fmt::Display for Branch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Branch {
    type Err = Error;
    fn from_str(s: &str) -> Result<Branch, Error> {
        Branch::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| Error::Unknown {
                what: "branch",
                value: s.to_string(),
                expected: "imp, random-prune or reinit".into(),
            })
    }
}

/// What a run is, for time accounting and progress output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// Trained from the seeded initialisation.
    Dense,
    /// A branch that keeps its parent's mask and weights (a child of instability analysis).
    Child,
    /// A pruned IMP level.
    Imp,
    /// The random-pruning baseline.
    RandomPrune,
    /// The random-reinitialisation baseline.
    Reinit,
    /// An interpolation.
    Interpolation,
}

impl RunKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RunKind::Dense => "dense",
            RunKind::Child => "child",
            RunKind::Imp => "imp",
            RunKind::RandomPrune => "random-prune",
            RunKind::Reinit => "reinit",
            RunKind::Interpolation => "interpolation",
        }
    }
}

impl fmt::Display for RunKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
