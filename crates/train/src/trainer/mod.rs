//! The training loop: [`Trainer`] runs a [`TrainConfig`] from its first state or a checkpoint,
//! evaluating, checkpointing and watching for divergence as configured. In parts: `config`
//! (what a run is and what it leaves), `step` (one optimiser step, data-parallel over
//! devices), `checkpoints` (a run's directory and its checkpoints), `progress`.

mod checkpoints;
use checkpoints::resumable;
mod config;
mod progress;
mod step;

pub use config::{EvalConfig, NoHooks, RunOutcome, TrainConfig, TrainData, TrainHooks, TrainState};
pub use step::with_device_rng;

use std::path::Path;
use std::time::Instant;

use burn::tensor::{Device, Tensor};
use data::{Batch, SeededBatches};
use nets::{Classifier, FromConfig};

use crate::divergence::DivergenceWatch;
use crate::{
    CheckpointStore, Error, MetricRecord, Metrics, Result, RunningTotals, Steps, evaluate,
};

/// By default, training reads its summed losses from the device every this many steps (and
/// before every evaluation and checkpoint): a NaN stops the run at the next read.
pub const LOSS_READ_EVERY: u64 = 50;

/// Seeds the device's RNG (dropout) per step and micro-batch, apart from the data streams.
const DROPOUT_STREAM: u64 = 0x6472_6f70;

/// Trains one [`TrainConfig`] on one device, or data-parallel on several.
pub struct Trainer {
    pub config: TrainConfig,
    pub data: TrainData,
    /// The autodiff-enabled training device: holds the model, the optimiser state and the
    /// first share of every batch.
    pub device: Device,
    /// Further autodiff-enabled devices that compute shares of every batch (data parallel).
    replicas: Vec<Device>,
    batches: SeededBatches,
    iterations_per_epoch: u64,
    total_steps: u64,
    show_progress: bool,
    loss_read_every: u64,
}

impl Trainer {
    /// `device` is a plain device (e.g. [`crate::default_device`]); autodiff is added here.
    pub fn new(config: TrainConfig, data: TrainData, device: &Device) -> Result<Trainer> {
        config.recipe.validate()?;
        let batches = SeededBatches::new(
            data.train.clone(),
            data.transform.clone(),
            config.recipe.data.batch_size,
            config.data_seed,
        )?
        .always_ahead(crate::backend::is_gpu(device));
        let iterations_per_epoch = batches.iterations_per_epoch();
        let total_steps = config.recipe.training_steps.resolve(iterations_per_epoch);
        Ok(Trainer {
            config,
            data,
            device: device.clone().autodiff(),
            replicas: vec![],
            batches,
            iterations_per_epoch,
            total_steps,
            show_progress: true,
            loss_read_every: LOSS_READ_EVERY,
        })
    }

    /// Trains data-parallel on `devices`: the model and optimiser live on the first; every
    /// step, each device computes the gradients of its share of the batch's micro-batches
    /// (`micro_batches` of the recipe, dealt round-robin) on a copy of the model, the
    /// gradients are moved to the first device and summed (burn's `GradientsParams::to_device`
    /// and `GradientsAccumulator`), and one optimiser step follows. The update is the one of a
    /// single device accumulating the same micro-batches. BN running statistics come from the
    /// first device's micro-batches, as in PyTorch's DistributedDataParallel (rank 0's buffers
    /// are the model's). Call before building or loading models.
    pub fn with_devices(mut self, devices: &[Device]) -> Result<Self> {
        let (first, rest) = devices.split_first().ok_or_else(|| {
            Error::Config("data-parallel training needs at least one device".into())
        })?;
        self.device = first.clone().autodiff();
        self.replicas = rest.iter().map(|d| d.clone().autodiff()).collect();
        Ok(self)
    }

    /// Number of devices that train.
    pub fn device_count(&self) -> usize {
        1 + self.replicas.len()
    }

    pub fn with_progress(mut self, show: bool) -> Self {
        self.show_progress = show;
        self
    }

    /// Reads the summed training losses from the device every `steps` steps (default
    /// [`LOSS_READ_EVERY`]); changes no number of the run, only when a NaN is noticed.
    pub fn with_loss_read_every(mut self, steps: u64) -> Self {
        self.loss_read_every = steps.max(1);
        self
    }

    /// How often training reads its losses from the device, in steps.
    pub fn loss_read_every(&self) -> u64 {
        self.loss_read_every
    }

    pub fn iterations_per_epoch(&self) -> u64 {
        self.iterations_per_epoch
    }

    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    pub fn resolve(&self, steps: Steps) -> u64 {
        steps.resolve(self.iterations_per_epoch)
    }

    /// The training examples (indices into the train split) of step `step`'s batch.
    pub fn batch_indices(&self, step: u64) -> Vec<usize> {
        self.batches.indices(step)
    }

    /// The batch of step `step` exactly as training sees it (augmented and normalised).
    pub fn batch(&self, step: u64) -> Result<Batch> {
        Ok(self.batches.batch(step)?)
    }

    /// The learning rate of step `step` (0-based) under the recipe's schedule.
    pub fn lr_at(&self, step: u64) -> f64 {
        self.config
            .recipe
            .schedule
            .lr_at(step, self.total_steps, self.iterations_per_epoch)
    }

    /// Trains `state` for `steps` optimiser steps, nothing written, and returns the loss of
    /// every step: what a step-for-step comparison with another framework needs.
    pub fn step_losses<M: Classifier>(
        &self,
        state: TrainState<M>,
        steps: u64,
    ) -> Result<(TrainState<M>, Vec<f32>)> {
        self.step_losses_with(state, steps, &mut NoHooks)
    }

    /// [`Trainer::step_losses`] with `hooks` called after every step, as in a run (e.g.
    /// the sparsity crate's mask re-applied).
    pub fn step_losses_with<M: Classifier>(
        &self,
        mut state: TrainState<M>,
        steps: u64,
        hooks: &mut impl TrainHooks<M>,
    ) -> Result<(TrainState<M>, Vec<f32>)> {
        let loss_fn = self.loss_fn();
        let mut losses = Vec::with_capacity(steps as usize);
        for _ in 0..steps {
            let step = state.step;
            let lr = self.lr_at(step);
            let (mut next, loss) = self.step(state, &loss_fn, lr, true)?;
            losses.push(loss.unwrap_or(f32::NAN));
            next.model = hooks.after_step(next.model, step)?;
            state = next;
        }
        Ok((state, losses))
    }

    /// The recipe's network, built for the data and initialised from the init seed.
    pub fn build_model<M: FromConfig>(&self) -> Result<M> {
        let t = &self.data.transform;
        let model = step::with_device_rng(|| {
            M::from_config(
                &self.config.recipe.model,
                t.channels(),
                t.size,
                self.data.num_classes,
                &self.device,
            )
        })?;
        Ok(nets::initialize(
            model,
            self.config.init_seed,
            self.config.recipe.bn_init,
        ))
    }

    /// The state at step 0.
    pub fn initial_state<M: FromConfig>(&self) -> Result<TrainState<M>> {
        Ok(TrainState {
            model: self.build_model()?,
            optimizer: self.config.recipe.optimizer.init(),
            step: 0,
            metrics: vec![],
        })
    }

    /// Runs the configuration in `dir`: reuses a finished run, resumes an interrupted one
    /// from its latest checkpoint, or starts from the seeded initialisation.
    pub fn run<M: FromConfig>(
        &self,
        dir: &Path,
        hooks: &mut impl TrainHooks<M>,
    ) -> Result<RunOutcome> {
        self.run_from(dir, || self.initial_state(), || self.build_model(), hooks)
    }

    /// Runs the configuration in `dir` from a custom starting state (a rewound, pruned or
    /// re-initialised network, with its step counter). Where that state comes from is the
    /// caller's to record (the experiment store names it in the run's identity). `start` is
    /// called only when the directory has no checkpoint yet;
    /// `template` builds an empty module of the right architecture to load checkpoints into.
    pub fn run_from<M: Classifier>(
        &self,
        dir: &Path,
        start: impl FnOnce() -> Result<TrainState<M>>,
        template: impl Fn() -> Result<M>,
        hooks: &mut impl TrainHooks<M>,
    ) -> Result<RunOutcome> {
        self.run_until(dir, start, template, self.total_steps, hooks)
    }

    /// Like [`Trainer::run_from`], but stops after step `until` (the schedule still runs to
    /// the recipe's full length): a parent run that only has to reach the last rewinding
    /// point.
    pub fn run_until<M: Classifier>(
        &self,
        dir: &Path,
        start: impl FnOnce() -> Result<TrainState<M>>,
        template: impl Fn() -> Result<M>,
        until: u64,
        hooks: &mut impl TrainHooks<M>,
    ) -> Result<RunOutcome> {
        let until = until.min(self.total_steps);
        self.claim_dir(dir)?;
        let numerics = crate::numerics(&self.device);
        let store = CheckpointStore::new(dir).with_numerics(numerics.clone());
        if store.has(until) {
            // Reached before: its metrics are the checkpoint's (checksummed); `metrics.json`
            // beside them is their copy for people and is rewritten when it is not. A corrupt
            // checkpoint falls through to the resumption below, which moves it aside.
            match store.metrics(until) {
                Ok(records) => {
                    let metrics = Metrics { records };
                    let path = dir.join("metrics.json");
                    if Metrics::load(&path).ok().as_ref() != Some(&metrics) {
                        if path.exists() {
                            tracing::warn!(
                                "{} does not hold the metrics of the checkpoint at step {until}; \
                                 rewritten from it",
                                path.display()
                            );
                        }
                        metrics.save(&path)?;
                    }
                    return Ok(RunOutcome {
                        dir: dir.to_path_buf(),
                        metrics,
                        reused: true,
                    });
                }
                Err(e) => tracing::warn!("{e}"),
            }
        }
        let optimizer = || self.config.recipe.optimizer.init();
        let (state, running) = match store.load_latest(&template, optimizer)? {
            Some(ck) => {
                resumable(dir, ck.step, ck.numerics, &numerics)?;
                tracing::info!("resuming {} from step {}", dir.display(), ck.step);
                let state = TrainState {
                    model: ck.model,
                    optimizer: ck.optimizer,
                    step: ck.step,
                    metrics: ck.metrics,
                };
                (state, ck.running)
            }
            None => {
                let state = start()?;
                store.save(state.step, &state.model, &state.optimizer, &state.metrics)?;
                (state, RunningTotals::default())
            }
        };
        tracing::debug!("state ready at step {}", state.step);
        let state = self.train(state, running, until, dir, hooks)?;
        Ok(RunOutcome {
            dir: dir.to_path_buf(),
            metrics: Metrics {
                records: state.metrics,
            },
            reused: false,
        })
    }

    fn is_eval_step(&self, step: u64) -> bool {
        step == self.total_steps
            || self
                .config
                .eval
                .every
                .map(|s| self.resolve(s))
                .is_some_and(|e| e > 0 && step.is_multiple_of(e))
    }

    /// Trains `state` up to step `until`, evaluating, checkpointing and writing
    /// `metrics.json` in `dir` as configured; `running` is what the run had accumulated since
    /// its last evaluation (a resumed run's, from its checkpoint; empty for a fresh start).
    pub fn train<M: Classifier>(
        &self,
        mut state: TrainState<M>,
        running: RunningTotals,
        until: u64,
        dir: &Path,
        hooks: &mut impl TrainHooks<M>,
    ) -> Result<TrainState<M>> {
        let store = CheckpointStore::new(dir).with_numerics(crate::numerics(&self.device));
        let metrics_path = dir.join("metrics.json");
        let loss_fn = self.loss_fn();
        let started = Instant::now();
        let elapsed_before = state.metrics.last().map_or(0.0, |m| m.elapsed_seconds);
        let mut last_checkpoint = store
            .latest()
            .filter(|&s| s <= state.step)
            .unwrap_or(state.step);
        let bar = self.progress_bar(state.step, until);
        let mut loss_sum = running.loss_sum;
        let mut loss_count = running.loss_count;
        // The losses since the last read, summed on the device and read every
        // `loss_read_every` steps (and before an evaluation or a checkpoint).
        let mut unread: Option<(Tensor<1>, u32, u64)> = None;
        let mut divergence = DivergenceWatch::new(
            self.config.divergence,
            self.data.num_classes,
            running.divergence_stretch,
        );
        while state.step < until {
            let step = state.step;
            let lr = self.lr_at(step);
            let next = step + 1;
            let (stepped, loss) = self.step_on_device(state, &loss_fn, lr)?;
            state = stepped;
            unread = Some(match unread.take() {
                Some((sum, count, from)) => (sum + loss, count + 1, from),
                None => (loss, 1, step),
            });
            let must_read = next.is_multiple_of(self.loss_read_every)
                || next == until
                || self.is_checkpoint_step(next)
                || self.is_eval_step(next);
            if let Some((sum, count, from)) = unread.take_if(|_| must_read) {
                let value = nets::readback::scalar(sum);
                if !value.is_finite() {
                    bar.abandon();
                    return Err(Error::NonFinite {
                        from,
                        step,
                        value,
                        last_checkpoint,
                        dir: dir.to_path_buf(),
                    });
                }
                if let Some(d) = divergence.observe(from, value as f64 / count as f64) {
                    bar.abandon();
                    return Err(Error::Diverged {
                        since: d.since,
                        step,
                        loss: d.loss,
                        threshold: d.threshold,
                        last_checkpoint,
                        dir: dir.to_path_buf(),
                    });
                }
                loss_sum += value as f64;
                loss_count += count;
                bar.set_message(format!("loss {:.4}", value / count as f32));
            }
            state.model = hooks.after_step(state.model, step)?;
            bar.set_position(next);

            if self.is_eval_step(next) {
                let train_loss = (loss_count > 0).then(|| (loss_sum / loss_count as f64) as f32);
                loss_sum = 0.0;
                loss_count = 0;
                let record = self.eval_record(
                    &state.model,
                    next,
                    lr,
                    train_loss,
                    elapsed_before + started.elapsed().as_secs_f64(),
                )?;
                tracing::info!(
                    "step {next}/{}: test accuracy {:.2}%, test loss {:.4}",
                    self.total_steps,
                    100.0 * record.test_accuracy,
                    record.test_loss
                );
                state.metrics.push(record);
                Metrics {
                    records: state.metrics.clone(),
                }
                .save(&metrics_path)?;
            }
            if self.is_checkpoint_step(next) {
                if !nets::params::all_finite(&state.model) {
                    bar.abandon();
                    return Err(Error::NonFinite {
                        from: step,
                        step,
                        value: f32::NAN,
                        last_checkpoint,
                        dir: dir.to_path_buf(),
                    });
                }
                let running = RunningTotals {
                    loss_sum,
                    loss_count,
                    divergence_stretch: divergence.stretch(),
                };
                store.save_with(
                    next,
                    &state.model,
                    &state.optimizer,
                    &state.metrics,
                    running,
                )?;
                last_checkpoint = next;
                store.prune(|s| s == next || self.is_kept(s))?;
            }
        }
        bar.finish_and_clear();
        if !store.has(state.step) {
            // A run stopped early (`run_until`) ends on a checkpoint too.
            let running = RunningTotals {
                loss_sum,
                loss_count,
                divergence_stretch: divergence.stretch(),
            };
            store.save_with(
                state.step,
                &state.model,
                &state.optimizer,
                &state.metrics,
                running,
            )?;
        }
        Ok(state)
    }

    fn eval_record<M: Classifier>(
        &self,
        model: &M,
        step: u64,
        lr: f64,
        train_loss: Option<f32>,
        elapsed: f64,
    ) -> Result<MetricRecord> {
        let valid = model.valid();
        let plain = self.device.clone().inner();
        let eval = &self.config.eval;
        let test = evaluate(
            &valid,
            &self.data.test,
            &self.data.transform,
            eval.batch_size,
            eval.test_subset,
            &plain,
        )?;
        let train = match eval.train_subset {
            Some(0) => None,
            limit => Some(evaluate(
                &valid,
                &self.data.train,
                &self.data.transform,
                eval.batch_size,
                limit,
                &plain,
            )?),
        };
        Ok(MetricRecord {
            step,
            epoch: step as f64 / self.iterations_per_epoch as f64,
            lr,
            train_loss,
            test_loss: test.loss,
            test_accuracy: test.accuracy,
            train_eval_loss: train.map(|t| t.loss),
            train_eval_accuracy: train.map(|t| t.accuracy),
            elapsed_seconds: elapsed,
        })
    }
}
