//! A run's directory: claiming it, loading a checkpoint, recomputing a missing one, and which
//! steps are checkpointed and kept.

use std::path::Path;

use burn::module::Module;
use nets::{Classifier, FromConfig};

use super::{TrainConfig, TrainHooks, TrainState, Trainer};
use crate::{CheckpointStore, Divergence, Error, Result};

impl Trainer {
    /// Loads the checkpoint of `step` of the run in `dir` (a run of the recipe's network).
    pub fn load_state<M: FromConfig>(&self, dir: &Path, step: u64) -> Result<TrainState<M>> {
        self.load_state_into(dir, step, self.build_model()?)
    }

    /// Loads the checkpoint of `step` of the run in `dir` into `template`.
    pub fn load_state_into<M: Module>(
        &self,
        dir: &Path,
        step: u64,
        template: M,
    ) -> Result<TrainState<M>> {
        let ck =
            CheckpointStore::new(dir).load(step, template, self.config.recipe.optimizer.init())?;
        Ok(TrainState {
            model: ck.model,
            optimizer: ck.optimizer,
            step: ck.step,
            metrics: ck.metrics,
        })
    }

    /// Writes `config.toml`, or checks that the one there is this configuration. Which
    /// checkpoints are written and kept does not change the result, so those two settings may
    /// differ between the sessions of one run.
    pub(super) fn claim_dir(&self, dir: &Path) -> Result<()> {
        let identity = TrainConfig {
            checkpoint_every: None,
            keep_checkpoints: vec![],
            divergence: Divergence::default(),
            ..self.config.clone()
        };
        crate::claim_toml(&dir.join("config.toml"), &identity)
    }

    /// Writes the checkpoint of `step` of the finished or interrupted run in `dir` when it is
    /// missing: retrains from the latest earlier checkpoint (deterministic, so the result is
    /// the state the run had at `step`). Metrics and other checkpoints are left alone.
    pub fn recompute_checkpoint<M: Classifier>(
        &self,
        dir: &Path,
        step: u64,
        template: impl Fn() -> Result<M>,
        hooks: &mut impl TrainHooks<M>,
    ) -> Result<()> {
        let numerics = crate::numerics(&self.device);
        let store = CheckpointStore::new(dir).with_numerics(numerics.clone());
        if store.has(step) {
            return Ok(());
        }
        let from = store
            .steps()
            .into_iter()
            .filter(|&s| s < step)
            .max()
            .ok_or_else(|| {
                Error::Config(format!(
                    "{} has no checkpoint before step {step} to recompute it from",
                    dir.display()
                ))
            })?;
        let ck = store.load(from, template()?, self.config.recipe.optimizer.init())?;
        resumable(dir, ck.step, ck.numerics, &numerics)?;
        let mut state = TrainState {
            model: ck.model,
            optimizer: ck.optimizer,
            step: ck.step,
            metrics: ck.metrics,
        };
        let loss_fn = self.loss_fn();
        while state.step < step {
            let lr = self.lr_at(state.step);
            let current = state.step;
            state = self.step(state, &loss_fn, lr, false)?.0;
            state.model = hooks.after_step(state.model, current)?;
        }
        store.save(step, &state.model, &state.optimizer, &state.metrics)
    }

    pub(super) fn is_kept(&self, step: u64) -> bool {
        step == 0
            || step == self.total_steps
            || self
                .config
                .keep_checkpoints
                .iter()
                .any(|s| self.resolve(*s) == step)
    }

    pub(super) fn is_checkpoint_step(&self, step: u64) -> bool {
        self.is_kept(step)
            || self
                .config
                .checkpoint_every
                .map(|s| self.resolve(s))
                .is_some_and(|e| e > 0 && step.is_multiple_of(e))
    }
}

/// Whether a run in `dir` whose checkpoint at `step` was written with `was` may be trained on
/// by this build (`now`, [`crate::numerics`]): only where the numerics are the same. A
/// checkpoint that records none was written before they were recorded: on the CPU that is
/// kernels numerics 1 or earlier, so this build's kernels refuse it; on a GPU runtime it is
/// trained on, with a warning.
pub(super) fn resumable(dir: &Path, step: u64, was: Option<String>, now: &str) -> Result<()> {
    let refuse = |was: String| {
        Err(Error::NumericsChanged {
            dir: dir.to_path_buf(),
            step,
            was,
            now: now.to_string(),
        })
    };
    match was {
        Some(was) if was != now => refuse(was),
        Some(_) => Ok(()),
        None if now.contains("kernels numerics") => refuse(
            "not recorded: a build before numerics were recorded, kernels numerics 1 or earlier"
                .into(),
        ),
        None => {
            tracing::warn!(
                "{}: its checkpoint at step {step} does not record the numerics that trained \
                 it; trained on with this build's ({now})",
                dir.display()
            );
            Ok(())
        }
    }
}
