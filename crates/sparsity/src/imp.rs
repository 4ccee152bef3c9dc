//! Iterative magnitude pruning with rewinding (Algorithm 2 of the paper), plus the random
//! pruning and random reinitialisation baselines.
//!
//! Layout of an IMP directory:
//!
//! ```text
//! imp.toml                  the IMP configuration (part of the identity of every level)
//! level-00/                 the dense run, keeping its checkpoint at the rewind step k
//! level-01/ .. level-NN/    prune 20% of the survivors of the previous level, rewind the
//!                           survivors (and BN buffers) to W_k, train from step k to T
//! level-NN-random-prune/    baseline: random mask with level NN's per-layer densities, W_k
//! level-NN-reinit/          baseline: level NN's mask, freshly initialised weights
//! summary.json              density and final accuracy of every finished run
//! ```
//!
//! Every run is an ordinary training run directory: it is reused when finished and resumed
//! from its latest checkpoint when interrupted, so re-running the command continues where it
//! stopped.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use nets::Network;
use serde::{Deserialize, Serialize};
use train::{NoHooks, Steps, TrainConfig, TrainData, TrainState, Trainer};

use crate::{Error, MaskHook, PruneRule, Result, Sparse};

/// What happens to the optimiser state at the rewind point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerAtRewind {
    /// A fresh optimiser (empty momentum / Adam moments), as the paper's public code does.
    #[default]
    Fresh,
    /// The optimiser state of the dense run at step k.
    Rewound,
}

/// A baseline branch trained with the same recipe from the same step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Baseline {
    /// A random mask with the IMP mask's per-layer densities, on the rewound weights.
    RandomPrune,
    /// The IMP mask on freshly initialised weights.
    Reinit,
}

impl Baseline {
    pub fn as_str(self) -> &'static str {
        match self {
            Baseline::RandomPrune => "random-prune",
            Baseline::Reinit => "reinit",
        }
    }
}

impl std::str::FromStr for Baseline {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "random-prune" => Ok(Baseline::RandomPrune),
            "reinit" => Ok(Baseline::Reinit),
            other => Err(Error::Invalid(format!(
                "unknown baseline `{other}`: use random-prune or reinit"
            ))),
        }
    }
}

/// The IMP experiment on top of a [`TrainConfig`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImpConfig {
    /// The rewind step k (`0it` is the original lottery ticket).
    pub rewind: Steps,
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

/// One finished run of an IMP experiment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LevelResult {
    pub level: usize,
    /// `imp`, `random-prune` or `reinit`.
    pub branch: String,
    /// Fraction of prunable weights kept.
    pub density: f64,
    /// Kept / total weights per prunable layer.
    pub layers: Vec<crate::LayerDensity>,
    pub test_accuracy: f32,
    pub test_loss: f32,
    pub train_accuracy: Option<f32>,
    pub dir: PathBuf,
}

type SparseNet = Sparse<Network>;

/// Runs (or resumes, or reuses) an IMP experiment in `dir`.
pub struct Imp {
    trainer: Trainer,
    imp: ImpConfig,
    dir: PathBuf,
    rewind_step: u64,
}

impl Imp {
    pub fn new(
        mut config: TrainConfig,
        data: TrainData,
        device: &Device,
        imp: ImpConfig,
        dir: &Path,
    ) -> Result<Imp> {
        if !(0.0..1.0).contains(&imp.fraction) {
            return Err(Error::Invalid(format!(
                "pruning fraction {} must be in [0, 1)",
                imp.fraction
            )));
        }
        if !config.keep_checkpoints.contains(&imp.rewind) {
            config.keep_checkpoints.push(imp.rewind);
        }
        let trainer = Trainer::new(config, data, device)?;
        let rewind_step = trainer.resolve(imp.rewind);
        if rewind_step >= trainer.total_steps() {
            return Err(Error::Invalid(format!(
                "the rewind step {} is not before the end of training ({} steps)",
                imp.rewind,
                trainer.total_steps()
            )));
        }
        train::claim_toml(&dir.join("imp.toml"), &imp)?;
        Ok(Imp {
            trainer,
            imp,
            dir: dir.to_path_buf(),
            rewind_step,
        })
    }

    pub fn with_progress(mut self, show: bool) -> Self {
        self.trainer = self.trainer.with_progress(show);
        self
    }

    pub fn trainer(&self) -> &Trainer {
        &self.trainer
    }

    pub fn level_dir(&self, level: usize, branch: Option<Baseline>) -> PathBuf {
        match branch {
            None => self.dir.join(format!("level-{level:02}")),
            Some(b) => self.dir.join(format!("level-{level:02}-{}", b.as_str())),
        }
    }

    fn template(&self) -> Result<SparseNet> {
        Ok(Sparse::dense(self.trainer.build_model()?, &self.imp.rule))
    }

    /// The final state of IMP level `level`.
    pub fn final_model(&self, level: usize, branch: Option<Baseline>) -> Result<SparseNet> {
        Ok(self
            .trainer
            .load_state_into(
                &self.level_dir(level, branch),
                self.trainer.total_steps(),
                self.template()?,
            )?
            .model)
    }

    /// The dense run's state at the rewind step.
    fn rewind_state(&self) -> Result<TrainState<SparseNet>> {
        Ok(self.trainer.load_state_into(
            &self.level_dir(0, None),
            self.rewind_step,
            self.template()?,
        )?)
    }

    /// The mask of level `level` >= 1: level `level - 1`'s final weights pruned by `fraction`.
    pub fn mask_of(&self, level: usize) -> Result<SparseNet> {
        self.final_model(level - 1, None)?
            .prune_magnitude(self.imp.fraction)
    }

    fn origin(&self, level: usize, branch: &str) -> toml::Value {
        let mut t = toml::Table::new();
        t.insert("experiment".into(), "imp".into());
        t.insert("branch".into(), branch.into());
        t.insert("level".into(), (level as i64).into());
        t.insert("rewind".into(), self.imp.rewind.to_string().into());
        t.insert("fraction".into(), self.imp.fraction.into());
        t.insert(
            "unpruned_layers".into(),
            toml::Value::Array(
                self.imp
                    .rule
                    .unpruned_layers
                    .iter()
                    .map(|l| l.clone().into())
                    .collect(),
            ),
        );
        t.insert(
            "optimizer_at_rewind".into(),
            format!("{:?}", self.imp.optimizer_at_rewind).into(),
        );
        if branch != "imp" {
            t.insert(
                "baseline_seed".into(),
                (self.imp.baseline_seed as i64).into(),
            );
        }
        toml::Value::Table(t)
    }

    /// Builds the starting state of a child from its model (weights and mask in place).
    fn child_state(
        &self,
        model: SparseNet,
        rewound: TrainState<SparseNet>,
    ) -> TrainState<SparseNet> {
        let optimizer = match self.imp.optimizer_at_rewind {
            OptimizerAtRewind::Fresh => self.trainer.config.recipe.optimizer.init(),
            OptimizerAtRewind::Rewound => rewound.optimizer,
        };
        TrainState {
            model,
            optimizer,
            step: self.rewind_step,
            metrics: vec![],
        }
    }

    fn result(
        &self,
        level: usize,
        branch: &str,
        dir: PathBuf,
        outcome: &train::RunOutcome,
    ) -> Result<LevelResult> {
        let density = self
            .trainer
            .load_state_into(&dir, self.trainer.total_steps(), self.template()?)?
            .model
            .density();
        let last = outcome
            .final_record()
            .ok_or_else(|| Error::Invalid(format!("{} has no metrics", dir.display())))?;
        Ok(LevelResult {
            level,
            branch: branch.to_string(),
            density: density.fraction(),
            layers: density.layers,
            test_accuracy: last.test_accuracy,
            test_loss: last.test_loss,
            train_accuracy: last.train_eval_accuracy,
            dir,
        })
    }

    /// Trains IMP level `level` (0 is the dense run).
    pub fn run_level(&self, level: usize) -> Result<LevelResult> {
        let dir = self.level_dir(level, None);
        let template = || self.template().map_err(into_train);
        let outcome = if level == 0 {
            let start = || {
                Ok(self.trainer.initial_state()?).map(|s| TrainState {
                    model: Sparse::dense(s.model, &self.imp.rule),
                    optimizer: s.optimizer,
                    step: s.step,
                    metrics: s.metrics,
                })
            };
            self.trainer.run_from(
                &dir,
                Some(self.origin(0, "imp")),
                start,
                template,
                &mut NoHooks,
            )?
        } else {
            let start = || -> train::Result<TrainState<SparseNet>> {
                let pruned = self.mask_of(level).map_err(into_train)?;
                let rewound = self.rewind_state().map_err(into_train)?;
                let model = pruned
                    .transplant(rewound.model.model.clone())
                    .map_err(into_train)?;
                tracing::info!(
                    "IMP level {level}: density {:.4}",
                    model.density().fraction()
                );
                Ok(self.child_state(model, rewound))
            };
            self.trainer.run_from(
                &dir,
                Some(self.origin(level, "imp")),
                start,
                template,
                &mut MaskHook,
            )?
        };
        self.result(level, "imp", dir, &outcome)
    }

    /// Trains a baseline branch at level `level` >= 1.
    pub fn run_baseline(&self, level: usize, baseline: Baseline) -> Result<LevelResult> {
        let dir = self.level_dir(level, Some(baseline));
        let seed = self.imp.baseline_seed.wrapping_add(level as u64);
        let template = || self.template().map_err(into_train);
        let start = || -> train::Result<TrainState<SparseNet>> {
            let imp_mask = self.mask_of(level).map_err(into_train)?;
            let rewound = self.rewind_state().map_err(into_train)?;
            let model = match baseline {
                Baseline::RandomPrune => {
                    imp_mask.random_mask_like(rewound.model.model.clone(), seed)
                }
                Baseline::Reinit => {
                    let fresh = nets::initialize(
                        self.trainer.build_model()?,
                        seed,
                        self.trainer.config.recipe.bn_init,
                    );
                    imp_mask.transplant(fresh)
                }
            }
            .map_err(into_train)?;
            Ok(self.child_state(model, rewound))
        };
        let outcome = self.trainer.run_from(
            &dir,
            Some(self.origin(level, baseline.as_str())),
            start,
            template,
            &mut MaskHook,
        )?;
        self.result(level, baseline.as_str(), dir, &outcome)
    }

    /// Runs every level and baseline in order, writing `summary.json` after each.
    pub fn run(&self) -> Result<Vec<LevelResult>> {
        let mut results = Vec::new();
        for level in 0..=self.imp.levels {
            results.push(self.run_level(level)?);
            self.write_summary(&results)?;
            let wanted =
                self.imp.baseline_levels.is_empty() || self.imp.baseline_levels.contains(&level);
            if level > 0 && wanted {
                for &b in &self.imp.baselines {
                    results.push(self.run_baseline(level, b)?);
                    self.write_summary(&results)?;
                }
            }
        }
        Ok(results)
    }

    fn write_summary(&self, results: &[LevelResult]) -> Result<()> {
        let json = serde_json::to_vec_pretty(results).map_err(|e| Error::Invalid(e.to_string()))?;
        train::write_atomic(&self.dir.join("summary.json"), &json)?;
        Ok(())
    }
}

fn into_train(e: Error) -> train::Error {
    match e {
        Error::Train(t) => t,
        Error::Invalid(msg) => train::Error::Config(msg),
    }
}
