//! The training loop.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor};
use data::{Batch, DatasetName, ImageSource, SeededBatches, Split, Transform, mix_seed};
use nets::{Classifier, Network};
use serde::{Deserialize, Serialize};

use crate::divergence::DivergenceWatch;
use crate::{
    CheckpointStore, Divergence, Error, MetricRecord, Metrics, Recipe, Result, Steps, evaluate,
};

/// How often a run evaluates, and on what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Evaluate every this many steps (and always at the end). `None`: only at the end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<Steps>,
    /// Evaluate the training set on its first N examples (a fixed subset) instead of all;
    /// `Some(0)` skips the training-set evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub train_subset: Option<usize>,
    /// Evaluate on the first N test examples instead of all (small-scale runs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test_subset: Option<usize>,
    #[serde(default = "default_eval_batch")]
    pub batch_size: usize,
}

fn default_eval_batch() -> usize {
    1000
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            every: Some(Steps::epochs(1)),
            train_subset: Some(10_000),
            test_subset: None,
            batch_size: default_eval_batch(),
        }
    }
}

/// Everything that determines a training run. Stored as `config.toml` in the run directory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub recipe: Recipe,
    /// Seed of the initial weights.
    pub init_seed: u64,
    /// Seed of the data order and augmentation.
    pub data_seed: u64,
    #[serde(default)]
    pub eval: EvalConfig,
    /// Write a checkpoint every this many steps (the latest one is kept, older ones deleted
    /// unless listed in `keep_checkpoints`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkpoint_every: Option<Steps>,
    /// Steps whose checkpoints are kept for good (e.g. rewinding points). Step 0 (the
    /// initialisation) and the final step are always kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub keep_checkpoints: Vec<Steps>,
    /// When a run whose loss stays finite but far above its early value stops.
    #[serde(default, skip_serializing_if = "Divergence::is_default")]
    pub divergence: Divergence,
}

impl TrainConfig {
    pub fn new(recipe: Recipe, init_seed: u64, data_seed: u64) -> Self {
        TrainConfig {
            recipe,
            init_seed,
            data_seed,
            eval: EvalConfig::default(),
            checkpoint_every: Some(Steps::epochs(1)),
            keep_checkpoints: vec![],
            divergence: Divergence::default(),
        }
    }
}

/// The data of a run: both splits and the transform that feeds them to the network.
#[derive(Clone)]
pub struct TrainData {
    pub dataset: DatasetName,
    pub train: ImageSource,
    pub test: ImageSource,
    pub transform: Transform,
    pub num_classes: usize,
}

impl TrainData {
    /// Loads the recipe's dataset from `data_dir` (downloading it if allowed) and builds the
    /// transform the recipe's network needs.
    pub fn load(recipe: &Recipe, data_dir: &Path, allow_download: bool) -> Result<TrainData> {
        let dataset = recipe.data.dataset;
        let train = data::load(dataset, data_dir, Split::Train, allow_download)?;
        let test = data::load(dataset, data_dir, Split::Test, allow_download)?;
        Self::from_sources(recipe, dataset, train, test)
    }

    /// Builds the transform for already-loaded sources.
    pub fn from_sources(
        recipe: &Recipe,
        dataset: DatasetName,
        train: ImageSource,
        test: ImageSource,
    ) -> Result<TrainData> {
        let first = train.get(0)?;
        let native = if dataset == DatasetName::Imagenet {
            224
        } else {
            first.height.max(first.width)
        };
        let (mean, std) = dataset.normalisation();
        if mean.len() != first.channels {
            return Err(Error::Config(format!(
                "{dataset} images have {} channels but its normalisation has {}",
                first.channels,
                mean.len()
            )));
        }
        let transform = Transform {
            size: recipe
                .data
                .image_size
                .unwrap_or_else(|| recipe.model.image_size(native)),
            mean,
            std,
            augmentation: recipe.data.augmentation,
        };
        Ok(TrainData {
            dataset,
            train,
            test,
            transform,
            num_classes: dataset.num_classes(),
        })
    }
}

/// Called by the loop; the `sparsity` crate re-applies masks in `after_step`.
pub trait TrainHooks<M> {
    /// After the optimiser update of step `step` (0-based); returns the model to continue with.
    fn after_step(&mut self, model: M, _step: u64) -> Result<M> {
        Ok(model)
    }
}

/// No hooks: plain training.
pub struct NoHooks;
impl<M> TrainHooks<M> for NoHooks {}

/// The state of a run in memory.
pub struct TrainState<M> {
    pub model: M,
    pub optimizer: ModuleOptimizer,
    /// Number of optimiser steps taken so far.
    pub step: u64,
    pub metrics: Vec<MetricRecord>,
}

/// What a finished run leaves behind.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub dir: PathBuf,
    pub metrics: Metrics,
    /// True when the run was already complete and nothing was trained.
    pub reused: bool,
}

impl RunOutcome {
    pub fn final_record(&self) -> Option<&MetricRecord> {
        self.metrics.last()
    }
}

/// By default, training reads its summed losses from the device every this many steps (and
/// before every evaluation and checkpoint): a NaN stops the run at the next read.
pub const LOSS_READ_EVERY: u64 = 50;

/// Seeds the device's RNG (dropout) per step, apart from the data streams.
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
    pub fn build_model(&self) -> Result<Network> {
        let t = &self.data.transform;
        let model = self.config.recipe.model.build(
            t.channels(),
            t.size,
            self.data.num_classes,
            &self.device,
        )?;
        Ok(nets::initialize(
            model,
            self.config.init_seed,
            self.config.recipe.bn_init,
        ))
    }

    /// The state at step 0.
    pub fn initial_state(&self) -> Result<TrainState<Network>> {
        Ok(TrainState {
            model: self.build_model()?,
            optimizer: self.config.recipe.optimizer.init(),
            step: 0,
            metrics: vec![],
        })
    }

    /// Runs the configuration in `dir`: reuses a finished run, resumes an interrupted one
    /// from its latest checkpoint, or starts from the seeded initialisation.
    pub fn run(&self, dir: &Path, hooks: &mut impl TrainHooks<Network>) -> Result<RunOutcome> {
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
        let store = CheckpointStore::new(dir);
        let metrics_path = dir.join("metrics.json");
        if store.has(until) && (metrics_path.is_file() || until < self.total_steps) {
            return Ok(RunOutcome {
                dir: dir.to_path_buf(),
                metrics: if metrics_path.is_file() {
                    Metrics::load(&metrics_path)?
                } else {
                    Metrics::default()
                },
                reused: true,
            });
        }
        let optimizer = || self.config.recipe.optimizer.init();
        let state = match store.load_latest(&template, optimizer)? {
            Some(ck) => {
                tracing::info!("resuming {} from step {}", dir.display(), ck.step);
                TrainState {
                    model: ck.model,
                    optimizer: ck.optimizer,
                    step: ck.step,
                    metrics: ck.metrics,
                }
            }
            None => {
                let state = start()?;
                store.save(state.step, &state.model, &state.optimizer, &state.metrics)?;
                state
            }
        };
        tracing::debug!("state ready at step {}", state.step);
        let state = self.train(state, until, dir, hooks)?;
        Ok(RunOutcome {
            dir: dir.to_path_buf(),
            metrics: Metrics {
                records: state.metrics,
            },
            reused: false,
        })
    }

    /// Loads the checkpoint of `step` of the run in `dir` (a run of the recipe's network).
    pub fn load_state(&self, dir: &Path, step: u64) -> Result<TrainState<Network>> {
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
    fn claim_dir(&self, dir: &Path) -> Result<()> {
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
        let store = CheckpointStore::new(dir);
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
        let mut state = self.load_state_into(dir, from, template()?)?;
        let loss_fn = self.loss_fn();
        while state.step < step {
            let lr = self.lr_at(state.step);
            let current = state.step;
            state = self.step(state, &loss_fn, lr, false)?.0;
            state.model = hooks.after_step(state.model, current)?;
        }
        store.save(step, &state.model, &state.optimizer, &state.metrics)
    }

    fn is_kept(&self, step: u64) -> bool {
        step == 0
            || step == self.total_steps
            || self
                .config
                .keep_checkpoints
                .iter()
                .any(|s| self.resolve(*s) == step)
    }

    fn is_checkpoint_step(&self, step: u64) -> bool {
        self.is_kept(step)
            || self
                .config
                .checkpoint_every
                .map(|s| self.resolve(s))
                .is_some_and(|e| e > 0 && step.is_multiple_of(e))
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
    /// `metrics.json` in `dir` as configured.
    pub fn train<M: Classifier>(
        &self,
        mut state: TrainState<M>,
        until: u64,
        dir: &Path,
        hooks: &mut impl TrainHooks<M>,
    ) -> Result<TrainState<M>> {
        let store = CheckpointStore::new(dir);
        let metrics_path = dir.join("metrics.json");
        let loss_fn = self.loss_fn();
        let started = Instant::now();
        let elapsed_before = state.metrics.last().map_or(0.0, |m| m.elapsed_seconds);
        let mut last_checkpoint = store
            .latest()
            .filter(|&s| s <= state.step)
            .unwrap_or(state.step);
        let bar = self.progress_bar(state.step, until);
        let mut loss_sum = 0.0f64;
        let mut loss_count = 0u32;
        // The losses since the last read, summed on the device and read every
        // `loss_read_every` steps (and before an evaluation or a checkpoint).
        let mut unread: Option<(Tensor<1>, u32, u64)> = None;
        let mut divergence = DivergenceWatch::new(self.config.divergence, self.data.num_classes);
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
                store.save(next, &state.model, &state.optimizer, &state.metrics)?;
                last_checkpoint = next;
                store.prune(|s| s == next || self.is_kept(s))?;
            }
        }
        bar.finish_and_clear();
        if !store.has(state.step) {
            // A run stopped early (`run_until`) ends on a checkpoint too.
            store.save(state.step, &state.model, &state.optimizer, &state.metrics)?;
        }
        Ok(state)
    }

    /// One optimiser step on the batch of `state.step` at learning rate `lr`; returns the
    /// loss of that batch when `read_loss` (reading it synchronises with the device).
    pub fn step<M: Classifier>(
        &self,
        state: TrainState<M>,
        loss_fn: &CrossEntropyLoss,
        lr: f64,
        read_loss: bool,
    ) -> Result<(TrainState<M>, Option<f32>)> {
        let (state, loss) = self.step_on_device(state, loss_fn, lr)?;
        Ok((state, read_loss.then(|| nets::readback::scalar(loss))))
    }

    /// One optimiser step on the batch of `state.step` at learning rate `lr`, with no read
    /// from the device; returns the loss of that batch as a one-element tensor on the
    /// training device (not tracked by autodiff).
    pub fn step_on_device<M: Classifier>(
        &self,
        mut state: TrainState<M>,
        loss_fn: &CrossEntropyLoss,
        lr: f64,
    ) -> Result<(TrainState<M>, Tensor<1>)> {
        let batch = self.batches.batch_and_prefetch(state.step)?;
        let total = batch.len();
        let micro_batches = self.config.recipe.data.micro_batches.max(1);
        let dropout_seed = |device: usize| {
            mix_seed(&[
                DROPOUT_STREAM,
                self.config.data_seed,
                state.step,
                device as u64,
            ])
        };
        // Micro-batches dealt round-robin to the devices; the first device's share is computed
        // here, the others' on replicas in their own threads.
        let count = self.device_count();
        let mut shares: Vec<Vec<Batch>> = vec![vec![]; count];
        for (i, micro) in batch.split(micro_batches).into_iter().enumerate() {
            shares[i % count].push(micro);
        }
        let own = shares.remove(0);
        let model = &state.model;
        let mut accumulator = GradientsAccumulator::new();
        let (mut loss, replica_results) = std::thread::scope(|scope| {
            let workers: Vec<_> = self
                .replicas
                .iter()
                .zip(shares)
                .enumerate()
                .map(|(i, (device, share))| {
                    // An independent copy: its BN statistics must not mix into the model's.
                    let replica = model.valid().fork(device).train();
                    let seed = dropout_seed(i + 1);
                    scope.spawn(move || {
                        device.seed(seed);
                        let loss_fn = CrossEntropyLossConfig::new().init(device);
                        let mut replica_accumulator = GradientsAccumulator::new();
                        let loss = share_gradients(
                            &replica,
                            share,
                            total,
                            &loss_fn,
                            device,
                            &mut replica_accumulator,
                        );
                        (replica_accumulator.grads(), loss)
                    })
                })
                .collect();
            self.device.seed(dropout_seed(0));
            let loss = share_gradients(model, own, total, loss_fn, &self.device, &mut accumulator);
            (
                loss,
                workers.into_iter().map(|w| w.join()).collect::<Vec<_>>(),
            )
        });
        for joined in replica_results {
            let (grads, replica_loss) = joined
                .map_err(|_| Error::Config("a data-parallel worker thread panicked".into()))?;
            accumulator.accumulate(model, grads.to_device(&self.device, model));
            loss = loss + replica_loss.to_device(&self.device);
        }
        let grads = accumulator.grads();
        state.model = state.optimizer.step(lr, state.model, grads);
        state.step += 1;
        Ok((state, loss))
    }

    /// The loss function of training (cross-entropy), on the training device.
    pub fn loss_fn(&self) -> CrossEntropyLoss {
        CrossEntropyLossConfig::new().init(&self.device)
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

    fn progress_bar(&self, from: u64, until: u64) -> indicatif::ProgressBar {
        if !self.show_progress {
            return indicatif::ProgressBar::hidden();
        }
        let bar = indicatif::ProgressBar::new(until);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:30}] {pos}/{len} steps ({per_sec}, eta {eta}) {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar.set_prefix(self.config.recipe.name.clone());
        bar.set_position(from);
        bar.reset_eta();
        bar
    }
}

/// The training loss of one (micro-)batch: the weighted cross-entropies of the model's
/// training outputs (Inception-v3's auxiliary head included), times `scale`.
fn weighted_loss<M: Classifier>(
    model: &M,
    images: Tensor<4>,
    labels: Tensor<1, burn::tensor::Int>,
    loss_fn: &CrossEntropyLoss,
    scale: f32,
) -> Tensor<1> {
    let mut terms = model
        .forward_train(images.clone())
        .into_iter()
        .map(|(weight, logits)| {
            loss_fn
                .forward(logits, labels.clone())
                .mul_scalar(weight * scale)
        });
    match terms.next() {
        Some(first) => terms.fold(first, |sum, term| sum + term),
        // A model that names no training outputs is trained on its plain logits.
        None => loss_fn
            .forward(model.forward(images), labels)
            .mul_scalar(scale),
    }
}

/// Adds the gradients of `share`'s micro-batches to `accumulator`, each weighted by its share
/// of the `total` examples of the whole batch, so that the sum over all micro-batches is the
/// gradient of the whole batch's mean loss; returns the summed loss, on `device`, unread.
fn share_gradients<M: Classifier>(
    model: &M,
    share: Vec<Batch>,
    total: usize,
    loss_fn: &CrossEntropyLoss,
    device: &Device,
    accumulator: &mut GradientsAccumulator<M>,
) -> Tensor<1> {
    let mut loss_sum = Tensor::<1>::zeros([1], device);
    for micro in share {
        let weight = micro.len() as f32 / total as f32;
        let (images, labels) = micro.into_tensors(device);
        let loss = weighted_loss(model, images, labels, loss_fn, weight);
        loss_sum = loss_sum + loss.clone().detach();
        accumulator.accumulate(model, GradientsParams::from_grads(loss.backward(), model));
    }
    loss_sum
}
