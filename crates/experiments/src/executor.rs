//! Bringing a plan to completion: here, with worker threads ([`Local`]), or on a Slurm
//! cluster ([`crate::slurm::Slurm`]), behind one trait so that `reproduce` and the commands
//! do not care which.

use crate::Result;
use crate::runs::{Plan, Runner};
use crate::slurm::Submission;

/// What an executor did with a plan.
#[derive(Debug)]
pub enum Execution {
    /// Every run of the plan is finished in the store.
    Finished,
    /// The unfinished runs were handed to a scheduler, which runs them later.
    Submitted(Submission),
}

/// Brings every run of a plan to completion in the store, or hands them to something that
/// will.
pub trait Executor {
    fn execute(&self, plan: &Plan) -> Result<Execution>;
}

/// Runs a plan in this process with `workers` runs at a time, dependencies first, with an
/// overall progress bar (runs done / total).
pub struct Local<'a> {
    pub runner: &'a Runner,
    pub workers: usize,
    pub progress: indicatif::ProgressBar,
}

impl Executor for Local<'_> {
    fn execute(&self, plan: &Plan) -> Result<Execution> {
        tracing::info!(
            "{} runs in {} ({} already finished)",
            plan.len(),
            self.runner.store.root().display(),
            plan.ids()
                .iter()
                .filter(|id| self.runner.store.is_done(id))
                .count()
        );
        let outcome = self.runner.execute_plan(plan, self.workers, &self.progress);
        self.progress.finish_and_clear();
        outcome.map(|()| Execution::Finished)
    }
}
