//! Bringing a plan to completion in a store: here, with worker threads ([`Local`]), or by
//! handing it to a cluster's scheduler (the Slurm executor in [`crate::slurm`]), behind one
//! trait so that `reproduce` and the commands do not care which.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex};

use results::RunId;
use store::Store;

use crate::models::ModelFactory;
use crate::runs::{Plan, Runner, describe};
use crate::{Error, Result};

/// What an executor did with a plan.
#[derive(Debug)]
pub enum Execution {
    /// Every run of the plan is finished in the store.
    Finished,
    /// The unfinished runs were handed to a scheduler, which runs them later.
    Submitted(Submission),
}

/// Runs handed to a scheduler: the jobs it queued, in submission order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Where the scripts and logs of the submission live.
    pub dir: PathBuf,
    pub jobs: Vec<SubmittedJob>,
    /// The job that renders the report once every other job succeeded.
    pub final_job: Option<String>,
}

/// One queued job (a job array on Slurm).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedJob {
    pub name: String,
    /// The scheduler's id of the job.
    pub id: String,
    /// Runs the job executes.
    pub runs: usize,
    /// Ids of the jobs it waits for.
    pub after: Vec<String>,
}

impl Submission {
    /// Runs handed over.
    pub fn runs(&self) -> usize {
        self.jobs.iter().map(|j| j.runs).sum()
    }
}

/// Brings every run of a plan to completion in `store`, or hands them to something that
/// will.
pub trait Executor {
    fn execute(&self, plan: &Plan, store: &Store) -> Result<Execution>;
}

/// Runs a plan in this process with `workers` runs at a time, dependencies first, with an
/// overall progress bar (runs done / total). Stops at the first error, letting running
/// workers finish their current run; everything finished stays in the store.
pub struct Local<'a, F: ModelFactory> {
    /// Executes single runs (data, devices); its store must be the one executed in.
    pub runner: &'a Runner<F>,
    pub workers: usize,
    pub progress: indicatif::ProgressBar,
}

impl<'a, F: ModelFactory> Local<'a, F> {
    /// `workers` at a time, without a progress bar.
    pub fn new(runner: &'a Runner<F>, workers: usize) -> Local<'a, F> {
        Local {
            runner,
            workers,
            progress: indicatif::ProgressBar::hidden(),
        }
    }
}

/// The scheduler's state, shared by the workers.
struct Board {
    done: BTreeSet<RunId>,
    running: BTreeSet<RunId>,
    failed: Option<Error>,
}

impl Board {
    /// A run that is neither done nor running and whose dependencies are done (or not part
    /// of the plan: finished in the store).
    fn next(&self, plan: &Plan) -> Option<RunId> {
        plan.ids()
            .iter()
            .find(|id| {
                !self.done.contains(*id)
                    && !self.running.contains(*id)
                    && plan.job(id).is_some_and(|j| {
                        j.dependencies()
                            .iter()
                            .all(|d| self.done.contains(d) || plan.job(d).is_none())
                    })
            })
            .cloned()
    }
}

impl<F: ModelFactory> Executor for Local<'_, F> {
    fn execute(&self, plan: &Plan, store: &Store) -> Result<Execution> {
        if store.root() != self.runner.store.root() {
            return Err(Error::Invalid(format!(
                "the local executor runs in {}, not in {}: give it a runner of that store",
                self.runner.store.root().display(),
                store.root().display()
            )));
        }
        plan.register(store)?;
        let done: BTreeSet<RunId> = plan
            .ids()
            .iter()
            .filter(|id| plan.is_complete(store, id))
            .cloned()
            .collect();
        tracing::info!(
            "{} runs in {} ({} already finished)",
            plan.len(),
            store.root().display(),
            done.len()
        );
        self.progress.set_length(plan.len() as u64);
        self.progress.set_position(done.len() as u64);
        self.progress.reset_eta();
        let board = Mutex::new(Board {
            done,
            running: BTreeSet::new(),
            failed: None,
        });
        let wake = Condvar::new();
        // Each worker computes on threads of its own, its share of the machine's.
        let threads = (train::available_threads() / self.workers.max(1)).max(1);
        std::thread::scope(|scope| {
            for _ in 0..self.workers.max(1) {
                scope.spawn(|| {
                    train::compute_here(threads);
                    self.work(plan, &board, &wake)
                });
            }
        });
        self.progress.finish_and_clear();
        let mut board = board
            .lock()
            .map_err(|_| Error::Invalid("a worker panicked".into()))?;
        match board.failed.take() {
            Some(e) => Err(e),
            None => Ok(Execution::Finished),
        }
    }
}

impl<F: ModelFactory> Local<'_, F> {
    /// One worker: takes ready runs until the plan is done or a run failed.
    fn work(&self, plan: &Plan, board: &Mutex<Board>, wake: &Condvar) {
        loop {
            let id = {
                let Ok(mut b) = board.lock() else { return };
                loop {
                    if b.failed.is_some() || b.done.len() == plan.len() {
                        wake.notify_all();
                        return;
                    }
                    if let Some(id) = b.next(plan) {
                        b.running.insert(id.clone());
                        break id;
                    }
                    if b.running.is_empty() {
                        // Nothing runs and nothing is ready: a dependency is missing.
                        b.failed = Some(Error::Invalid("the plan has unreachable runs".into()));
                        wake.notify_all();
                        return;
                    }
                    b = match wake.wait(b) {
                        Ok(b) => b,
                        Err(_) => return,
                    };
                }
            };
            let Some(job) = plan.job(&id) else { return };
            self.progress.set_message(describe(job));
            let outcome = self.runner.execute(&id, job, &plan.kept_steps(&id));
            let Ok(mut b) = board.lock() else { return };
            b.running.remove(&id);
            match outcome {
                Ok(()) => {
                    b.done.insert(id);
                    self.progress.inc(1);
                }
                Err(e) => {
                    if b.failed.is_none() {
                        b.failed = Some(Error::RunFailed {
                            id,
                            source: Box::new(e),
                        });
                    }
                }
            }
            wake.notify_all();
        }
    }
}
