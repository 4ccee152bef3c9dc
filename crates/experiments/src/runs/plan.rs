//! A graph of runs, deduplicated by id, with the checkpoints each run must keep.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use results::RunId;
use sparsity::PruneRule;
use train::{EvalConfig, Recipe};

use super::{
    Job, MaskSource, OptimizerAtRewind, PairSpec, Start, TrainResult, TrainSpec, WeightSource,
};
use crate::{Error, Result};
use store::Store;

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

    pub fn job(&self, id: &RunId) -> Option<&Job> {
        self.jobs.get(id)
    }

    pub fn train_spec(&self, id: &RunId) -> Result<&TrainSpec> {
        match self.jobs.get(id) {
            Some(Job::Train(spec)) => Ok(spec),
            _ => Err(Error::NotATrainingRun(id.clone())),
        }
    }

    /// Checkpoints that later runs branch from (besides 0 and the end, always kept).
    pub fn kept_steps(&self, id: &RunId) -> Vec<u64> {
        self.keep
            .get(id)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Writes the identity of every run into `store` (`rewind runs list` shows them as
    /// planned), so that any process can execute them from the store alone.
    pub fn register(&self, store: &Store) -> Result<()> {
        for id in &self.order {
            if let Some(job) = self.jobs.get(id) {
                store.create(job.kind(), job)?;
            }
        }
        Ok(())
    }

    /// Whether run `id` is finished in `store` with every checkpoint this plan needs from it.
    pub fn is_complete(&self, store: &Store, id: &RunId) -> bool {
        if !store.is_done(id) {
            return false;
        }
        let kept = self.kept_steps(id);
        if kept.is_empty() || !id.is_training() {
            return true;
        }
        // A branch has no checkpoints before its start; its result says where that is.
        let start = match store.result::<TrainResult>(id) {
            Ok(Some(r)) => Some(r.start_step),
            _ => None,
        };
        let checkpoints = train::CheckpointStore::new(&store.dir(id));
        kept.into_iter()
            .all(|step| start.is_some_and(|s| step < s) || checkpoints.has(step))
    }

    /// Asks run `id` to keep its checkpoint at `step`.
    pub fn keep(&mut self, id: &RunId, step: u64) {
        self.keep.entry(id.clone()).or_default().insert(step);
    }

    fn add(&mut self, job: Job) -> Result<RunId> {
        let id = store::run_id(job.kind(), &job)?;
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
        parent: &RunId,
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
            return Ok(parent.clone());
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
                parent: parent.clone(),
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
    pub fn adopt(&mut self, id: &RunId, job: Job) -> Result<()> {
        let expected = store::run_id(job.kind(), &job)?;
        if expected != *id {
            return Err(Error::Invalid(format!(
                "{id} does not hold the job its name says"
            )));
        }
        if !self.jobs.contains_key(id) {
            self.jobs.insert(id.clone(), job);
            self.order.push(id.clone());
        }
        Ok(())
    }
}
