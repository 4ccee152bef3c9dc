//! Runs as data: what a training run or an interpolation is, the graph of runs an experiment
//! needs, and the executor that brings every run of a graph to completion in the store.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Instant;

use burn::tensor::Device;
use data::{DatasetName, ImageSource, SeededBatches, Split};
use lmc::{BnPolicy, CurveData, ErrorCurve, Instability, L2Distance, error_curve, l2_distance};
use nets::Network;
use serde::{Deserialize, Serialize};
use sparsity::{LayerDensity, MaskHook, PruneRule, Sparse};
use train::{
    EvalConfig, MetricRecord, NoHooks, Recipe, Steps, TrainConfig, TrainData, TrainState, Trainer,
};

use crate::store::{RunId, Store};
use crate::{Error, Result};

/// What the optimiser state of a branch is at its first step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerAtRewind {
    /// A fresh optimiser (empty momentum / Adam moments), as the paper's public code does
    /// after rewinding.
    #[default]
    Fresh,
    /// The parent's optimiser state at the branch step.
    Rewound,
}

/// Which mask a branch trains with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "mask")]
pub enum MaskSource {
    /// The parent's own mask (all ones for a dense parent).
    Parent,
    /// Global magnitude pruning of `fraction` of the surviving weights of `run`'s final state.
    Prune { run: RunId, fraction: f64 },
    /// A random mask with the per-layer densities of `Prune { run, fraction }`.
    RandomLike {
        run: RunId,
        fraction: f64,
        seed: u64,
    },
}

/// Which weights a branch starts from (before its mask is applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "weights")]
pub enum WeightSource {
    /// The parent's weights and BN buffers at the branch step.
    Parent,
    /// Freshly initialised weights from `seed` (the random reinitialisation baseline).
    Reinit { seed: u64 },
}

/// Where a training run's first state comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "from")]
pub enum Start {
    /// The seeded initialisation at step 0.
    Init,
    /// The state of run `parent` at step `step`, changed as described.
    Branch {
        parent: RunId,
        step: u64,
        #[serde(flatten)]
        mask: MaskSource,
        #[serde(flatten)]
        weights: WeightSource,
        optimizer: OptimizerAtRewind,
    },
}

/// Everything that determines a training run: its identity in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainSpec {
    pub recipe: Recipe,
    pub init_seed: u64,
    pub data_seed: u64,
    pub eval: EvalConfig,
    pub rule: PruneRule,
    pub start: Start,
}

/// The interpolation of two runs' states at one step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairSpec {
    pub a: RunId,
    pub b: RunId,
    pub step: u64,
    pub points: usize,
    pub bn_policy: BnPolicy,
    /// Evaluation subsets and batch size of the curve.
    pub eval: EvalConfig,
    /// Measure the train error too (off for the many curves of "throughout training").
    pub with_train_error: bool,
}

/// One unit of work in the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "job")]
#[allow(clippy::large_enum_variant)] // a plan holds a few hundred jobs: size does not matter
pub enum Job {
    Train(TrainSpec),
    Pair(PairSpec),
}

impl Job {
    pub fn kind(&self) -> &'static str {
        match self {
            Job::Train(_) => "train",
            Job::Pair(_) => "pair",
        }
    }

    /// Runs that must be finished before this one starts.
    pub fn dependencies(&self) -> Vec<RunId> {
        match self {
            Job::Train(spec) => match &spec.start {
                Start::Init => vec![],
                Start::Branch { parent, mask, .. } => {
                    let mut deps = vec![parent.clone()];
                    match mask {
                        MaskSource::Parent => {}
                        MaskSource::Prune { run, .. } | MaskSource::RandomLike { run, .. } => {
                            deps.push(run.clone())
                        }
                    }
                    deps
                }
            },
            Job::Pair(p) => vec![p.a.clone(), p.b.clone()],
        }
    }
}

/// What a finished training run records in `result.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainResult {
    pub total_steps: u64,
    pub start_step: u64,
    /// The final evaluation.
    pub last: MetricRecord,
    /// Fraction of prunable weights kept.
    pub density: f64,
    pub layers: Vec<LayerDensity>,
    pub wall_seconds: f64,
    pub backend: String,
}

/// What a finished interpolation records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairResult {
    pub curve: ErrorCurve,
    pub instability: Instability,
    pub l2: L2Distance,
    /// Test error (%) of `a` and `b`.
    pub endpoint_test_errors: [f32; 2],
    /// Time the interpolation took (absent in results of older versions).
    #[serde(default)]
    pub wall_seconds: f64,
}

/// A graph of runs, deduplicated by id, with the checkpoints other runs need from each.
#[derive(Debug, Default, Clone)]
pub struct Plan {
    jobs: BTreeMap<RunId, Job>,
    /// In insertion order (dependencies before dependents).
    order: Vec<RunId>,
    keep: HashMap<RunId, BTreeSet<u64>>,
}

impl Plan {
    pub fn new() -> Plan {
        Plan::default()
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    pub fn ids(&self) -> &[RunId] {
        &self.order
    }

    pub fn job(&self, id: &str) -> Option<&Job> {
        self.jobs.get(id)
    }

    pub fn train_spec(&self, id: &str) -> Result<&TrainSpec> {
        match self.jobs.get(id) {
            Some(Job::Train(spec)) => Ok(spec),
            _ => Err(Error::Invalid(format!(
                "{id} is not a training run of the plan"
            ))),
        }
    }

    /// Checkpoints that later runs branch from (besides 0 and the end, always kept).
    pub fn kept_steps(&self, id: &str) -> Vec<u64> {
        self.keep
            .get(id)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Asks run `id` to keep its checkpoint at `step`.
    pub fn keep(&mut self, id: &str, step: u64) {
        self.keep.entry(id.to_string()).or_default().insert(step);
    }

    fn add(&mut self, job: Job) -> Result<RunId> {
        let id = crate::store::run_id(job.kind(), &job)?;
        for dep in job.dependencies() {
            if !self.jobs.contains_key(&dep) {
                return Err(Error::Invalid(format!(
                    "{id} depends on {dep}, not in the plan"
                )));
            }
        }
        if !self.jobs.contains_key(&id) {
            self.jobs.insert(id.clone(), job);
            self.order.push(id.clone());
        }
        Ok(id)
    }

    /// A run trained from the seeded initialisation.
    pub fn train_from_init(
        &mut self,
        recipe: &Recipe,
        init_seed: u64,
        data_seed: u64,
        eval: &EvalConfig,
        rule: &PruneRule,
    ) -> Result<RunId> {
        self.add(Job::Train(TrainSpec {
            recipe: recipe.clone(),
            init_seed,
            data_seed,
            eval: eval.clone(),
            rule: rule.clone(),
            start: Start::Init,
        }))
    }

    /// A branch of `parent` at `step` trained with `data_seed`. A plain copy of the parent's
    /// full state continued with the parent's own data order *is* the parent, so that case
    /// returns the parent's id (and no run is added); a plain copy of a run's initial state
    /// is the run from the same init with the new data order.
    pub fn branch(
        &mut self,
        parent: &str,
        step: u64,
        data_seed: u64,
        mask: MaskSource,
        weights: WeightSource,
        optimizer: OptimizerAtRewind,
    ) -> Result<RunId> {
        let spec = self.train_spec(parent)?.clone();
        let start_step = match &spec.start {
            Start::Init => 0,
            Start::Branch { step, .. } => *step,
        };
        if step < start_step {
            return Err(Error::Invalid(format!(
                "cannot branch {parent} at step {step}: it starts at step {start_step}"
            )));
        }
        let continuation = data_seed == spec.data_seed
            && mask == MaskSource::Parent
            && weights == WeightSource::Parent
            && (optimizer == OptimizerAtRewind::Rewound
                || (step == start_step && matches!(spec.start, Start::Init)));
        self.keep(parent, step);
        if continuation {
            return Ok(parent.to_string());
        }
        if step == 0
            && matches!(spec.start, Start::Init)
            && mask == MaskSource::Parent
            && weights == WeightSource::Parent
        {
            // The state at step 0 is the seeded init with a fresh optimiser: this branch is
            // the run from the init with the new data order.
            return self.train_from_init(
                &spec.recipe,
                spec.init_seed,
                data_seed,
                &spec.eval,
                &spec.rule,
            );
        }
        let id = self.add(Job::Train(TrainSpec {
            data_seed,
            start: Start::Branch {
                parent: parent.to_string(),
                step,
                mask,
                weights,
                optimizer,
            },
            ..spec
        }))?;
        self.keep(&id, step);
        Ok(id)
    }

    /// The interpolation of `a` and `b` at `step`.
    pub fn pair(&mut self, spec: PairSpec) -> Result<RunId> {
        self.keep(&spec.a, spec.step);
        self.keep(&spec.b, spec.step);
        self.add(Job::Pair(spec))
    }

    /// Adds a run that is already in the store (e.g. named on the command line) without its
    /// ancestors: those are finished, or the run could not have been made.
    pub fn adopt(&mut self, id: &str, job: Job) -> Result<()> {
        let expected = crate::store::run_id(job.kind(), &job)?;
        if expected != id {
            return Err(Error::Invalid(format!(
                "{id} does not hold the job its name says"
            )));
        }
        if !self.jobs.contains_key(id) {
            self.jobs.insert(id.to_string(), job);
            self.order.push(id.to_string());
        }
        Ok(())
    }

    /// Adds every job of `other` (a plan built elsewhere) to this one.
    pub fn merge(&mut self, other: Plan) {
        for id in other.order {
            if let Some(job) = other.jobs.get(&id)
                && !self.jobs.contains_key(&id)
            {
                self.jobs.insert(id.clone(), job.clone());
                self.order.push(id.clone());
            }
        }
        for (id, steps) in other.keep {
            self.keep.entry(id).or_default().extend(steps);
        }
    }
}

/// Loads datasets once and hands out [`TrainData`] per recipe.
pub struct DataCache {
    data_dir: std::path::PathBuf,
    allow_download: bool,
    loaded: Mutex<HashMap<DatasetName, (ImageSource, ImageSource)>>,
}

impl DataCache {
    pub fn new(data_dir: &std::path::Path, allow_download: bool) -> DataCache {
        DataCache {
            data_dir: data_dir.to_path_buf(),
            allow_download,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// Already-loaded sources (tests, synthetic data).
    pub fn with_sources(sources: Vec<(DatasetName, ImageSource, ImageSource)>) -> DataCache {
        DataCache {
            data_dir: std::path::PathBuf::new(),
            allow_download: false,
            loaded: Mutex::new(sources.into_iter().map(|(n, a, b)| (n, (a, b))).collect()),
        }
    }

    pub fn for_recipe(&self, recipe: &Recipe) -> Result<TrainData> {
        let name = recipe.data.dataset;
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| Error::Invalid("data cache poisoned".into()))?;
        if let std::collections::hash_map::Entry::Vacant(slot) = loaded.entry(name) {
            let train = data::load(name, &self.data_dir, Split::Train, self.allow_download)?;
            let test = data::load(name, &self.data_dir, Split::Test, self.allow_download)?;
            slot.insert((train, test));
        }
        let (train, test) = loaded[&name].clone();
        Ok(TrainData::from_sources(recipe, name, train, test)?)
    }

    /// Iterations per epoch of `recipe` on its dataset.
    pub fn iterations_per_epoch(&self, recipe: &Recipe) -> Result<u64> {
        let data = self.for_recipe(recipe)?;
        Ok((data.train.len() as u64).div_ceil(recipe.data.batch_size as u64))
    }
}

type SparseNet = Sparse<Network>;

/// Executes the jobs of a plan in a store.
pub struct Runner {
    pub store: Store,
    pub data: DataCache,
    pub device: Device,
    /// Devices every training run uses data-parallel (empty or one: `device` alone).
    pub devices: Vec<Device>,
    /// Progress bars of the individual training runs.
    pub show_run_progress: bool,
}

impl Runner {
    pub fn new(store: Store, data: DataCache, device: &Device) -> Runner {
        Runner {
            store,
            data,
            device: device.clone(),
            devices: vec![],
            show_run_progress: true,
        }
    }

    /// Trains every run data-parallel on `devices` (see [`Trainer::with_devices`]); the first
    /// also evaluates and interpolates.
    pub fn with_devices(mut self, devices: Vec<Device>) -> Runner {
        if let Some(first) = devices.first() {
            self.device = first.clone();
        }
        self.devices = devices;
        self
    }

    fn spec(&self, id: &str) -> Result<TrainSpec> {
        match self.store.identity::<Job>(id)? {
            Job::Train(spec) => Ok(spec),
            Job::Pair(_) => Err(Error::Invalid(format!(
                "{id} is an interpolation, not a training run"
            ))),
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

    fn template(&self, trainer: &Trainer, rule: &PruneRule) -> train::Result<SparseNet> {
        Ok(Sparse::dense(trainer.build_model()?, rule))
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
    pub fn state_at(&self, id: &str, step: u64) -> Result<TrainState<SparseNet>> {
        let spec = self.spec(id)?;
        let trainer = self.trainer(&spec, &[])?;
        let template = self.template(&trainer, &spec.rule)?;
        let mut state = trainer.load_state_into(&self.store.dir(id), step, template)?;
        state.model = state.model.apply();
        Ok(state)
    }

    /// Brings one job to completion (or reuses it), holding its lock meanwhile.
    pub fn execute(&self, id: &str, job: &Job, keep: &[u64]) -> Result<()> {
        let created = self.store.create(job.kind(), job)?;
        if created != id {
            return Err(Error::Invalid(format!(
                "{id}: the plan and the store disagree ({created})"
            )));
        }
        let lock = self.store.lock(id)?;
        match job {
            Job::Train(spec) => match self.train(id, spec, keep)? {
                Some(result) => self.store.finish_locked(&lock, id, &result),
                None => Ok(()),
            },
            Job::Pair(spec) => {
                if self.store.is_done(id) {
                    return Ok(());
                }
                self.store
                    .finish_locked(&lock, id, &self.interpolate(spec)?)
            }
        }
    }

    /// Trains run `id`; its result, or `None` when it had finished before.
    fn train(&self, id: &str, spec: &TrainSpec, keep: &[u64]) -> Result<Option<TrainResult>> {
        let dir = self.store.dir(id);
        let trainer = self.trainer(spec, keep)?;
        let sparse = self.is_sparse(spec)?;
        if let Some(result) = self.store.result::<TrainResult>(id)? {
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
            trainer.run_from(&dir, None, start, template, &mut MaskHook)?
        } else {
            trainer.run_from(&dir, None, start, template, &mut NoHooks)?
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
            backend: train::backend_name().to_string(),
        }))
    }

    fn start_state(
        &self,
        spec: &TrainSpec,
        trainer: &Trainer,
    ) -> train::Result<TrainState<SparseNet>> {
        let to_train = |e: Error| train::Error::Config(e.to_string());
        match &spec.start {
            Start::Init => {
                let s = trainer.initial_state()?;
                Ok(TrainState {
                    model: Sparse::dense(s.model, &spec.rule),
                    optimizer: s.optimizer,
                    step: 0,
                    metrics: vec![],
                })
            }
            Start::Branch {
                parent,
                step,
                mask,
                weights,
                optimizer,
            } => {
                let parent_spec = self.spec(parent).map_err(to_train)?;
                if parent_spec.recipe.model != spec.recipe.model {
                    return Err(train::Error::Config(format!(
                        "{parent} trains another network than its branch"
                    )));
                }
                let state = self.state_at(parent, *step).map_err(to_train)?;
                let base = match weights {
                    WeightSource::Parent => state.model.model.clone(),
                    WeightSource::Reinit { seed } => {
                        nets::initialize(trainer.build_model()?, *seed, spec.recipe.bn_init)
                    }
                };
                let pruned = |run: &str, fraction: f64| -> train::Result<SparseNet> {
                    let final_step = self
                        .store
                        .finished::<TrainResult>(run)
                        .map_err(to_train)?
                        .total_steps;
                    self.state_at(run, final_step)
                        .map_err(to_train)?
                        .model
                        .prune_magnitude(fraction)
                        .map_err(|e| train::Error::Config(e.to_string()))
                };
                let sparse_err = |e: sparsity::Error| train::Error::Config(e.to_string());
                let model = match mask {
                    MaskSource::Parent => state.model.transplant(base).map_err(sparse_err)?,
                    MaskSource::Prune { run, fraction } => pruned(run, *fraction)?
                        .transplant(base)
                        .map_err(sparse_err)?,
                    MaskSource::RandomLike {
                        run,
                        fraction,
                        seed,
                    } => pruned(run, *fraction)?
                        .random_mask_like(base, *seed)
                        .map_err(sparse_err)?,
                };
                let optimizer = match optimizer {
                    OptimizerAtRewind::Fresh => spec.recipe.optimizer.init(),
                    OptimizerAtRewind::Rewound => state.optimizer,
                };
                Ok(TrainState {
                    model: model.apply(),
                    optimizer,
                    step: *step,
                    metrics: vec![],
                })
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
        let curve = error_curve(
            &a,
            &b,
            spec.points,
            spec.bn_policy,
            &curve_data,
            &self.device,
            |m: SparseNet| m.apply(),
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
        })
    }

    /// Runs every job of `plan` with `workers` threads, dependencies first. Progress goes to
    /// `progress` (runs done / total). Stops at the first error, letting running jobs finish
    /// their current run; everything finished stays in the store.
    pub fn execute_plan(
        &self,
        plan: &Plan,
        workers: usize,
        progress: &indicatif::ProgressBar,
    ) -> Result<()> {
        self.register(plan)?;
        let done: BTreeSet<RunId> = plan
            .ids()
            .iter()
            .filter(|id| self.is_complete(plan, id))
            .cloned()
            .collect();
        progress.set_length(plan.len() as u64);
        progress.set_position(done.len() as u64);
        progress.reset_eta();
        struct Shared {
            done: BTreeSet<RunId>,
            running: BTreeSet<RunId>,
            failed: Option<Error>,
        }
        let shared = Arc::new((
            Mutex::new(Shared {
                done,
                running: BTreeSet::new(),
                failed: None,
            }),
            Condvar::new(),
        ));
        let next = |s: &Shared| -> Option<RunId> {
            plan.ids()
                .iter()
                .find(|id| {
                    !s.done.contains(*id)
                        && !s.running.contains(*id)
                        && plan.job(id).is_some_and(|j| {
                            j.dependencies()
                                .iter()
                                .all(|d| s.done.contains(d) || plan.job(d).is_none())
                        })
                })
                .cloned()
        };
        std::thread::scope(|scope| {
            for _ in 0..workers.max(1) {
                let shared = shared.clone();
                scope.spawn(move || {
                    let (lock, cvar) = &*shared;
                    loop {
                        let id = {
                            let Ok(mut s) = lock.lock() else { return };
                            loop {
                                if s.failed.is_some() || s.done.len() == plan.len() {
                                    cvar.notify_all();
                                    return;
                                }
                                if let Some(id) = next(&s) {
                                    s.running.insert(id.clone());
                                    break id;
                                }
                                if s.running.is_empty() {
                                    // Nothing runs and nothing is ready: a dependency is missing.
                                    s.failed = Some(Error::Invalid(
                                        "the plan has unreachable runs".into(),
                                    ));
                                    cvar.notify_all();
                                    return;
                                }
                                s = match cvar.wait(s) {
                                    Ok(s) => s,
                                    Err(_) => return,
                                };
                            }
                        };
                        let Some(job) = plan.job(&id) else { return };
                        progress.set_message(describe(job));
                        let outcome = self.execute(&id, job, &plan.kept_steps(&id));
                        let Ok(mut s) = lock.lock() else { return };
                        s.running.remove(&id);
                        match outcome {
                            Ok(()) => {
                                s.done.insert(id);
                                progress.inc(1);
                            }
                            Err(e) => {
                                if s.failed.is_none() {
                                    s.failed =
                                        Some(Error::Invalid(format!("run {id} failed: {e}")));
                                }
                            }
                        }
                        cvar.notify_all();
                    }
                });
            }
        });
        let (lock, _) = &*shared;
        let mut s = lock
            .lock()
            .map_err(|_| Error::Invalid("a worker panicked".into()))?;
        match s.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Writes the identity of every run of `plan` into the store (`rewind runs list` shows
    /// them as planned), so that any process can execute them from the store alone.
    pub fn register(&self, plan: &Plan) -> Result<()> {
        for id in plan.ids() {
            if let Some(job) = plan.job(id) {
                self.store.create(job.kind(), job)?;
            }
        }
        Ok(())
    }

    /// Whether run `id` is finished with every checkpoint `plan` needs from it.
    pub fn is_complete(&self, plan: &Plan, id: &str) -> bool {
        self.store.is_done(id)
            && plan
                .kept_steps(id)
                .iter()
                .all(|&s| self.has_checkpoint(id, s))
    }

    fn has_checkpoint(&self, id: &str, step: u64) -> bool {
        if !id.starts_with("train-") {
            return true;
        }
        match self.store.result::<TrainResult>(id) {
            Ok(Some(r)) if step < r.start_step => true,
            _ => train::CheckpointStore::new(&self.store.dir(id)).has(step),
        }
    }
}

/// What kind of run a job is, for time accounting: `dense`, `child` (a branch keeping its
/// parent's mask and weights), `imp` (a pruned level), `random-prune`, `reinit` or
/// `interpolation`.
pub fn run_kind(job: &Job) -> &'static str {
    match job {
        Job::Pair(_) => "interpolation",
        Job::Train(s) => match &s.start {
            Start::Init => "dense",
            Start::Branch {
                weights: WeightSource::Reinit { .. },
                ..
            } => "reinit",
            Start::Branch { mask, .. } => match mask {
                MaskSource::Parent => "child",
                MaskSource::Prune { .. } => "imp",
                MaskSource::RandomLike { .. } => "random-prune",
            },
        },
    }
}

/// A short label of a job for progress output.
pub fn describe(job: &Job) -> String {
    match job {
        Job::Train(s) => {
            let what = match &s.start {
                Start::Init => "dense".to_string(),
                Start::Branch { step, .. } => format!("{} from step {step}", run_kind(job)),
            };
            format!(
                "{} {what} (init {}, data {})",
                s.recipe.name, s.init_seed, s.data_seed
            )
        }
        Job::Pair(p) => format!("interpolation at step {}", p.step),
    }
}
