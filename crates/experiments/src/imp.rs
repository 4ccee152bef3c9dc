//! Iterative magnitude pruning with rewinding (Algorithm 2 of the paper) as a graph of runs,
//! plus the random pruning and random reinitialisation baselines.
//!
//! Level 0 is the dense run from the seeded initialisation. Level L >= 1 prunes 20% (the
//! `fraction`) of the weights surviving at the end of level L - 1, globally by magnitude,
//! rewinds the survivors, BN buffers and step counter to the dense run's state at step k,
//! and trains from k to the end. A baseline at level L uses level L's density: a random mask
//! with the same per-layer densities on the rewound weights, or level L's mask on freshly
//! initialised weights.

pub use results::LevelResult;
use results::{Branch, RunId};
use serde::{Deserialize, Serialize};
use sparsity::PruneRule;
use train::{EvalConfig, Recipe};

use crate::runs::{MaskSource, OptimizerAtRewind, Plan, TrainResult, WeightSource};
use crate::{Error, Result};
use store::Store;

/// A baseline branch trained with the same recipe from the same step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    /// A random mask with the IMP mask's per-layer densities, on the rewound weights.
    RandomPrune,
    /// The IMP mask on freshly initialised weights.
    Reinit,
}

impl Baseline {
    pub const ALL: [Baseline; 2] = [Baseline::RandomPrune, Baseline::Reinit];

    pub fn as_str(self) -> &'static str {
        self.branch().as_str()
    }

    /// The branch of an IMP experiment this baseline trains.
    pub fn branch(self) -> Branch {
        match self {
            Baseline::RandomPrune => Branch::RandomPrune,
            Baseline::Reinit => Branch::Reinit,
        }
    }
}

impl std::str::FromStr for Baseline {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "random-prune" => Ok(Baseline::RandomPrune),
            "reinit" => Ok(Baseline::Reinit),
            other => Err(Error::Results(results::Error::Unknown {
                what: "baseline",
                value: other.to_string(),
                expected: "random-prune or reinit".into(),
            })),
        }
    }
}

/// An IMP experiment: one init seed, one data order, one rewind step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpConfig {
    pub recipe: Recipe,
    pub eval: EvalConfig,
    pub init_seed: u64,
    pub data_seed: u64,
    /// The rewind step k in iterations (0: the original lottery ticket).
    pub rewind: u64,
    /// Pruning rounds after the dense run.
    pub levels: usize,
    /// Fraction of the surviving weights pruned per round.
    pub fraction: f64,
    pub rule: PruneRule,
    #[serde(default)]
    pub optimizer_at_rewind: OptimizerAtRewind,
    #[serde(default)]
    pub baselines: Vec<Baseline>,
    /// Levels that get the baselines (all pruned levels when empty).
    #[serde(default)]
    pub baseline_levels: Vec<usize>,
    /// Seed of the random masks and of the re-initialised weights (plus the level).
    #[serde(default)]
    pub baseline_seed: u64,
}

/// The runs of one IMP experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpRuns {
    pub rewind: u64,
    /// Index = level; 0 is the dense run.
    pub levels: Vec<RunId>,
    pub baselines: Vec<(usize, Baseline, RunId)>,
}

impl ImpRuns {
    /// The run of `branch` at `level`.
    pub fn run(&self, level: usize, branch: Branch) -> Option<&RunId> {
        match branch {
            Branch::Imp => self.levels.get(level),
            other => self
                .baselines
                .iter()
                .find(|(l, b, _)| *l == level && b.branch() == other)
                .map(|(_, _, id)| id),
        }
    }
}

impl ImpConfig {
    /// Adds the experiment's runs to `plan`.
    pub fn plan(&self, plan: &mut Plan) -> Result<ImpRuns> {
        if !(0.0..1.0).contains(&self.fraction) {
            return Err(Error::Invalid(format!(
                "pruning fraction {} must be in [0, 1)",
                self.fraction
            )));
        }
        let dense = plan.train_from_init(
            &self.recipe,
            self.init_seed,
            self.data_seed,
            &self.eval,
            &self.rule,
        )?;
        plan.keep(&dense, self.rewind);
        let mut levels = vec![dense.clone()];
        let mut baselines = Vec::new();
        for level in 1..=self.levels {
            let previous = levels[level - 1].clone();
            let imp = plan.branch(
                &dense,
                self.rewind,
                self.data_seed,
                MaskSource::Prune {
                    run: previous.clone(),
                    fraction: self.fraction,
                },
                WeightSource::Parent,
                self.optimizer_at_rewind,
            )?;
            levels.push(imp);
            let wanted = self.baseline_levels.is_empty() || self.baseline_levels.contains(&level);
            if !wanted {
                continue;
            }
            let seed = self.baseline_seed.wrapping_add(level as u64);
            for &baseline in &self.baselines {
                let (mask, weights) = match baseline {
                    Baseline::RandomPrune => (
                        MaskSource::RandomLike {
                            run: previous.clone(),
                            fraction: self.fraction,
                            seed,
                        },
                        WeightSource::Parent,
                    ),
                    Baseline::Reinit => (
                        MaskSource::Prune {
                            run: previous.clone(),
                            fraction: self.fraction,
                        },
                        WeightSource::Reinit { seed },
                    ),
                };
                let id = plan.branch(
                    &dense,
                    self.rewind,
                    self.data_seed,
                    mask,
                    weights,
                    self.optimizer_at_rewind,
                )?;
                baselines.push((level, baseline, id));
            }
        }
        Ok(ImpRuns {
            rewind: self.rewind,
            levels,
            baselines,
        })
    }
}

/// The finished runs of an IMP experiment, level by level (baselines after their level).
pub fn imp_results(store: &Store, runs: &ImpRuns) -> Result<Vec<LevelResult>> {
    let mut out = Vec::new();
    let read = |level: usize, branch: Branch, id: &RunId| -> Result<LevelResult> {
        let r: TrainResult = store.finished(id)?;
        Ok(LevelResult {
            level,
            branch,
            density: r.density,
            layers: r.layers,
            test_accuracy: r.last.test_accuracy,
            test_loss: r.last.test_loss,
            train_accuracy: r.last.train_eval_accuracy,
            run: id.clone(),
        })
    };
    for (level, id) in runs.levels.iter().enumerate() {
        out.push(read(level, Branch::Imp, id)?);
        for (l, b, id) in &runs.baselines {
            if *l == level {
                out.push(read(level, b.branch(), id)?);
            }
        }
    }
    Ok(out)
}
