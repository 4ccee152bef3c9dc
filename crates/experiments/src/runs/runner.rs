//! The executor of single runs: trains a run from its start (or resumes it) and interpolates
//! a pair. Whole plans are brought to completion by an [`crate::executor::Executor`].

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use data::SeededBatches;
use lmc::{CurveData, error_curve, l2_distance};
use nets::params::tensor_values;
use results::{Alignment, AlignmentRecord, PairResult, RunId};
use sparsity::{MaskHook, PruneRule, Sparse};
use train::{NoHooks, Steps, TrainConfig, TrainState, Trainer};

use super::{DataCache, Job, MaskSource, PairSpec, Start, TrainResult, TrainSpec, WeightSource};
use crate::models::{InputShape, ModelFactory, match_activations};
use crate::{Error, Result};
use store::Store;

/// The networks of `F`, with their pruning masks.
type SparseNet<F> = Sparse<<F as ModelFactory>::Model>;

/// A branch's first state could not be made (its parent's state, mask or weights).
fn start_failed(e: impl std::error::Error + Send + Sync + 'static) -> train::Error {
    train::Error::Start(Box::new(e))
}

/// Training images whose activations activation matching correlates.
const ACTIVATION_MATCHING_EXAMPLES: usize = 5_000;

/// Executes the jobs of a plan in a store, building networks with `F` (the paper's:
/// `paper::runner`).
pub struct Runner<F: ModelFactory> {
    pub store: Store,
    pub data: DataCache,
    pub device: Device,
    /// Devices every training run uses data-parallel (empty or one: `device` alone).
    pub devices: Vec<Device>,
    /// Progress bars of the individual training runs.
    pub show_run_progress: bool,
    pub models: F,
}

impl<F: ModelFactory> Runner<F> {
    /// A runner whose networks `models` builds.
    pub fn with_models(store: Store, data: DataCache, device: &Device, models: F) -> Runner<F> {
        Runner {
            store,
            data,
            device: device.clone(),
            devices: vec![],
            show_run_progress: true,
            models,
        }
    }

    /// Trains every run data-parallel on `devices` (see [`Trainer::with_devices`]); the first
    /// also evaluates and interpolates.
    pub fn with_devices(mut self, devices: Vec<Device>) -> Runner<F> {
        if let Some(first) = devices.first() {
            self.device = first.clone();
        }
        self.devices = devices;
        self
    }

    fn spec(&self, id: &RunId) -> Result<TrainSpec> {
        match self.store.identity::<Job>(id)? {
            Job::Train(spec) => Ok(spec),
            Job::Pair(_) => Err(Error::NotATrainingRun(id.clone())),
        }
    }

    fn trainer(&self, spec: &TrainSpec, keep: &[u64]) -> Result<Trainer> {
        let config = TrainConfig {
            recipe: spec.recipe.clone(),
            init_seed: spec.init_seed,
            data_seed: spec.data_seed,
            eval: spec.eval.clone(),
            checkpoint_every: Some(Steps::epochs(1)),
            keep_checkpoints: keep.iter().map(|&s| Steps::iterations(s)).collect(),
            divergence: train::Divergence::default(),
        };
        let data = self.data.for_recipe(&spec.recipe)?;
        let trainer = Trainer::new(config, data, &self.device)?;
        let trainer = if self.devices.len() > 1 {
            trainer.with_devices(&self.devices)?
        } else {
            trainer
        };
        Ok(trainer.with_progress(self.show_run_progress))
    }

    /// The recipe's network for the trainer's data, initialised from `seed`.
    fn build(&self, trainer: &Trainer, seed: u64) -> train::Result<F::Model> {
        let (data, recipe) = (&trainer.data, &trainer.config.recipe);
        let input = InputShape {
            channels: data.transform.channels(),
            size: data.transform.size,
            num_classes: data.num_classes,
        };
        // Building draws from burn's process-wide RNG: never between another run's dropout
        // seed and its draws.
        let model =
            train::with_device_rng(|| self.models.build(&recipe.model, input, &trainer.device))?;
        Ok(nets::initialize(model, seed, recipe.bn_init))
    }

    fn template(&self, trainer: &Trainer, rule: &PruneRule) -> train::Result<SparseNet<F>> {
        Ok(Sparse::dense(
            self.build(trainer, trainer.config.init_seed)?,
            rule,
        ))
    }

    /// True when the run (or an ancestor) has pruned weights.
    fn is_sparse(&self, spec: &TrainSpec) -> Result<bool> {
        match &spec.start {
            Start::Init => Ok(false),
            Start::Branch {
                mask: MaskSource::Parent,
                parent,
                ..
            } => self.is_sparse(&self.spec(parent)?),
            Start::Branch { .. } => Ok(true),
        }
    }

    /// The state of finished training run `id` at `step` (a kept checkpoint), mask applied.
    pub fn state_at(&self, id: &RunId, step: u64) -> Result<TrainState<SparseNet<F>>> {
        let spec = self.spec(id)?;
        let trainer = self.trainer(&spec, &[])?;
        let template = self.template(&trainer, &spec.rule)?;
        let mut state = trainer.load_state_into(&self.store.dir(id), step, template)?;
        state.model = state.model.apply();
        Ok(state)
    }

    /// Brings one job to completion (or reuses it), holding its lock meanwhile.
    pub fn execute(&self, id: &RunId, job: &Job, keep: &[u64]) -> Result<()> {
        let created = self.store.create(job.kind(), job)?;
        if created != *id {
            return Err(Error::Invalid(format!(
                "{id}: the plan and the store disagree ({created})"
            )));
        }
        let lock = self.store.lock(id)?;
        self.store.discard_broken_result(id)?;
        match job {
            Job::Train(spec) => match self.train(id, spec, keep)? {
                Some(result) => Ok(self.store.finish_locked(&lock, id, &result)?),
                None => Ok(()),
            },
            Job::Pair(spec) => {
                if self.store.is_done(id) {
                    return Ok(());
                }
                let result = self.interpolate(spec)?;
                Ok(self.store.finish_locked(&lock, id, &result)?)
            }
        }
    }

    /// Trains run `id`; its result, or `None` when it had finished before.
    fn train(&self, id: &RunId, spec: &TrainSpec, keep: &[u64]) -> Result<Option<TrainResult>> {
        let dir = self.store.dir(id);
        let trainer = self.trainer(spec, keep)?;
        let sparse = self.is_sparse(spec)?;
        if let Some(result) = self.store.result::<TrainResult>(id)? {
            let numerics = train::numerics(&self.device);
            if result.backend != numerics {
                static ONCE: std::sync::Once = std::sync::Once::new();
                ONCE.call_once(|| {
                    tracing::warn!(
                        "{id} was finished with other numerics ({}; here: {numerics}): runs \
                         trained now from its checkpoints differ in their last bits from what \
                         one build would have given them; keep one build per store for \
                         bit-identical results",
                        result.backend
                    )
                });
            }
            // Finished: only checkpoints asked for since then may be missing.
            for &step in keep {
                if step >= result.start_step && !train::CheckpointStore::new(&dir).has(step) {
                    tracing::info!("{id}: recomputing its checkpoint at step {step}");
                    let template = || self.template(&trainer, &spec.rule);
                    if sparse {
                        trainer.recompute_checkpoint(&dir, step, template, &mut MaskHook)?;
                    } else {
                        trainer.recompute_checkpoint(&dir, step, template, &mut NoHooks)?;
                    }
                }
            }
            return Ok(None);
        }
        let started = Instant::now();
        let template = || self.template(&trainer, &spec.rule);
        let start = || self.start_state(spec, &trainer);
        let outcome = if sparse {
            trainer.run_from(&dir, start, template, &mut MaskHook)?
        } else {
            trainer.run_from(&dir, start, template, &mut NoHooks)?
        };
        let last = outcome
            .final_record()
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("{id} finished without an evaluation")))?;
        let model = trainer
            .load_state_into(&dir, trainer.total_steps(), template()?)?
            .model;
        let density = model.density();
        let start_step = match &spec.start {
            Start::Init => 0,
            Start::Branch { step, .. } => *step,
        };
        Ok(Some(TrainResult {
            total_steps: trainer.total_steps(),
            start_step,
            last,
            density: density.fraction(),
            layers: density.layers,
            wall_seconds: started.elapsed().as_secs_f64(),
            backend: train::numerics(&self.device),
            weights_sha256: Some(nets::params::values_sha256(&model)),
        }))
    }

    fn start_state(
        &self,
        spec: &TrainSpec,
        trainer: &Trainer,
    ) -> train::Result<TrainState<SparseNet<F>>> {
        match &spec.start {
            Start::Init => Ok(TrainState {
                model: self.template(trainer, &spec.rule)?,
                optimizer: spec.recipe.optimizer.init(),
                step: 0,
                metrics: vec![],
            }),
            Start::Branch {
                parent,
                step,
                mask,
                weights,
                optimizer,
            } => {
                let parent_spec = self.spec(parent).map_err(start_failed)?;
                if parent_spec.recipe.model != spec.recipe.model {
                    return Err(train::Error::Config(format!(
                        "{parent} trains another network than its branch"
                    )));
                }
                let state = self.state_at(parent, *step).map_err(start_failed)?;
                let base = match weights {
                    WeightSource::Parent => state.model.model.clone(),
                    WeightSource::Reinit { seed } => nets::initialize(
                        self.build(trainer, spec.init_seed)?,
                        *seed,
                        spec.recipe.bn_init,
                    ),
                };
                let pruned = |run: &RunId, fraction: f64| -> train::Result<SparseNet<F>> {
                    let final_step = self
                        .store
                        .finished::<TrainResult>(run)
                        .map_err(start_failed)?
                        .total_steps;
                    self.state_at(run, final_step)
                        .map_err(start_failed)?
                        .model
                        .prune_by_rule(fraction, &spec.rule)
                        .map_err(start_failed)
                };
                let model = match mask {
                    MaskSource::Parent => state.model.transplant(base).map_err(start_failed)?,
                    MaskSource::Prune { run, fraction } => pruned(run, *fraction)?
                        .transplant(base)
                        .map_err(start_failed)?,
                    MaskSource::RandomLike {
                        run,
                        fraction,
                        seed,
                    } => pruned(run, *fraction)?
                        .random_mask_like(base, *seed)
                        .map_err(start_failed)?,
                };
                if state.step != *step {
                    return Err(train::Error::Config(format!(
                        "{parent} has no state at step {step} (found {})",
                        state.step
                    )));
                }
                Ok(optimizer.branch_start(model, state, &spec.recipe))
            }
        }
    }

    fn interpolate(&self, spec: &PairSpec) -> Result<PairResult> {
        let started = Instant::now();
        let (sa, sb) = (self.spec(&spec.a)?, self.spec(&spec.b)?);
        if sa.recipe.model != sb.recipe.model || sa.rule != sb.rule {
            return Err(Error::Invalid(format!(
                "{} and {} are different networks and cannot be interpolated",
                spec.a, spec.b
            )));
        }
        let a = self.state_at(&spec.a, spec.step)?.model;
        let b = self.state_at(&spec.b, spec.step)?.model;
        let data = self.data.for_recipe(&sa.recipe)?;
        let (b, alignment) = match spec.align {
            Alignment::None => (b, None),
            align => {
                let permutations = self.models.permutation_spec(&sb.recipe.model, &b.model)?;
                permutations.check(&nets::params::tensor_infos(&b.model))?;
                let matching = if align == Alignment::Weights {
                    align::weight_matching(
                        &permutations,
                        &tensor_values(&a.model),
                        &tensor_values(&b.model),
                        align::MatchingConfig::default(),
                    )?
                } else {
                    // Units correlated on the first training images, as evaluation sees them.
                    let (va, vb) = (a.model.valid(), b.model.valid());
                    let device = self.device.clone();
                    let batches = ::data::eval_batches(
                        &data.train,
                        &data.transform,
                        spec.eval.batch_size,
                        Some(ACTIVATION_MATCHING_EXAMPLES),
                    )
                    .map(|batch| batch.map(|b| b.into_tensors(&device).0))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                    match_activations(&self.models, &permutations, &va, &vb, batches)?
                };
                tracing::debug!(
                    "{} aligned to {} by {} matching",
                    spec.b,
                    spec.a,
                    align.as_str()
                );
                let record = AlignmentRecord {
                    rounds: matching.rounds,
                    units: permutations.groups.iter().map(|g| g.size).sum(),
                    moved: matching
                        .permutation
                        .groups
                        .iter()
                        .flat_map(|g| g.iter().enumerate())
                        .filter(|(i, j)| i != *j)
                        .count(),
                };
                (
                    align::permute_sparse(b, &permutations, &matching.permutation)?,
                    Some(record),
                )
            }
        };
        let bn_batches = SeededBatches::new(
            data.train.clone(),
            data.transform.clone(),
            sa.recipe.data.batch_size,
            sa.data_seed,
        )?;
        let curve_data = CurveData {
            test: &data.test,
            train: &data.train,
            transform: &data.transform,
            train_subset: if spec.with_train_error {
                spec.eval.train_subset
            } else {
                Some(0)
            },
            test_subset: spec.eval.test_subset,
            batch_size: spec.eval.batch_size,
            bn_batches: Some(&bn_batches),
        };
        let same_mask = a.mask.to_host() == b.mask.to_host();
        let curve = error_curve(
            &a,
            &b,
            spec.points,
            spec.bn_policy,
            &curve_data,
            &self.device,
            // One mask at both ends (the paper's pairs): re-applying it is exact. Masks that
            // differ (aligned children, consecutive IMP levels) interpolate to fractions, and
            // re-applying them would shrink a weight only one end keeps by alpha again; the
            // interpolated weights already vanish outside the union of both masks.
            |m: SparseNet<F>| if same_mask { m.apply() } else { m },
        )?;
        let l2 = l2_distance(&a.model, &b.model, |i| sa.rule.is_prunable(i))?;
        Ok(PairResult {
            instability: curve.instability(),
            endpoint_test_errors: [
                curve.points.last().map_or(f32::NAN, |p| p.test_error),
                curve.points.first().map_or(f32::NAN, |p| p.test_error),
            ],
            curve,
            l2,
            wall_seconds: started.elapsed().as_secs_f64(),
            alignment,
        })
    }
}
