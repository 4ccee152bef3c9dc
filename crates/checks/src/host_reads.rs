//! Does a run wait for the device only where it must? On a GPU every device-to-host read
//! drains the queue, so the training loop reads its losses every
//! [`train::Trainer::loss_read_every`] steps (and before an evaluation or a checkpoint), an
//! evaluation pass reads once at its end, and nothing else in a step reads. This trains a
//! pruned network through the real loop (masks re-applied after every step, as in IMP's
//! rounds) with [`nets::readback`]'s per-thread count, and reports every read the schedule
//! does not call for. Used by the test suites (flex, and wgpu on lavapipe in CI) and by
//! `rewind gpu-check`.

use burn::module::Module;
use burn::tensor::Device;
use nets::readback::reads_on_this_thread;
use paper_networks::Network;
use serde::Serialize;
use sparsity::{MaskHook, PruneRule, Sparse};
use train::trainer::EvalConfig;
use train::{Recipe, Steps, TrainConfig, TrainHooks, TrainState, Trainer};

use crate::backend_check::synthetic_data;
use crate::{Error, Result};

/// The device-to-host reads of one training run and of one evaluation pass.
#[derive(Debug, Clone, Serialize)]
pub struct ReadAudit {
    pub steps: u64,
    /// The loop's schedule: losses read every this many steps and after the last.
    pub read_every: u64,
    /// Reads made during each step (index 0: the first), the scheduled loss reads included.
    pub reads_by_step: Vec<u64>,
    /// Steps (1-based: the step just taken) that read although the schedule does not say to,
    /// or did not read once where it does.
    pub unscheduled: Vec<u64>,
    /// Reads of one evaluation pass over `eval_batches` batches.
    pub reads_per_evaluation: u64,
    pub eval_batches: usize,
}

impl ReadAudit {
    /// No unscheduled read, and one read per evaluation pass.
    pub fn passed(&self) -> bool {
        self.unscheduled.is_empty() && self.reads_per_evaluation == 1
    }
}

/// Re-applies the mask, calls `extra` (a test's hook), and counts the reads of the step.
struct ReadLog<'a, H> {
    before: u64,
    reads: Vec<u64>,
    extra: &'a mut H,
}

impl<H: TrainHooks<Sparse<Network>>> TrainHooks<Sparse<Network>> for ReadLog<'_, H> {
    fn after_step(&mut self, model: Sparse<Network>, step: u64) -> train::Result<Sparse<Network>> {
        let model = MaskHook.after_step(model, step)?;
        let model = self.extra.after_step(model, step)?;
        let now = reads_on_this_thread();
        self.reads.push(now - self.before);
        self.before = now;
        Ok(model)
    }
}

/// Trains `recipe`'s network, pruned to 80% of its prunable weights, for `steps` steps on
/// `device` through [`Trainer::train`] (losses read every `read_every` steps, evaluation and a
/// checkpoint only at the end), with `extra` called after every step, and counts the reads;
/// then counts the reads of one evaluation pass over 4 batches.
pub fn audit(
    recipe: &Recipe,
    device: &Device,
    steps: u64,
    read_every: u64,
    extra: &mut impl TrainHooks<Sparse<Network>>,
) -> Result<ReadAudit> {
    let eval_batch = 50;
    let eval_batches = 4;
    let (data, _) = synthetic_data(recipe, eval_batch * eval_batches)?;
    let mut recipe = recipe.clone();
    recipe.training_steps = Steps::iterations(steps);
    let mut config = TrainConfig::new(recipe, 1, 1);
    config.eval = EvalConfig {
        every: None,
        train_subset: Some(0),
        test_subset: None,
        batch_size: eval_batch,
    };
    config.checkpoint_every = None;
    let trainer = Trainer::new(config, data, device)?
        .with_progress(false)
        .with_loss_read_every(read_every);
    let rule = PruneRule::for_model(&trainer.config.recipe.model);
    let model = Sparse::dense(trainer.build_model::<Network>()?, &rule).prune_magnitude(0.8)?;
    let state = TrainState {
        model,
        optimizer: trainer.config.recipe.optimizer.init(),
        step: 0,
        metrics: vec![],
    };
    let dir = tempfile::tempdir().map_err(|e| Error::Io {
        path: std::env::temp_dir(),
        source: e,
    })?;
    let mut log = ReadLog {
        before: reads_on_this_thread(),
        reads: Vec::with_capacity(steps as usize),
        extra,
    };
    let state = trainer.train(
        state,
        train::RunningTotals::default(),
        steps,
        dir.path(),
        &mut log,
    )?;
    let reads_by_step = log.reads;
    let unscheduled = reads_by_step
        .iter()
        .enumerate()
        .filter_map(|(i, &reads)| {
            let step = i as u64 + 1;
            let scheduled = u64::from(step.is_multiple_of(read_every) || step == steps);
            (reads != scheduled).then_some(step)
        })
        .collect();

    let eval = train::EvalSet::new(
        &trainer.data.test,
        &trainer.data.transform,
        eval_batch,
        None,
        device,
        usize::MAX,
    )?;
    let valid = state.model.valid();
    let before = reads_on_this_thread();
    eval.evaluate(&valid)?;
    Ok(ReadAudit {
        steps,
        read_every,
        reads_by_step,
        unscheduled,
        reads_per_evaluation: reads_on_this_thread() - before,
        eval_batches,
    })
}
