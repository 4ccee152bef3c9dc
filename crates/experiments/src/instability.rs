//! The instability analysis (Algorithm 1, repeated over k, inits and data orders) as a graph
//! of runs: from a parent's state at k, children train to the end with different data
//! orders, and every pair of children is interpolated.
//!
//! The parent of dense analyses is the run from the seeded initialisation with the parent
//! data seed; a sparse analysis starts from an IMP level or baseline run at its rewind step.
//! A child whose data order is its parent's is the parent's own continuation and is not
//! trained twice.

use lmc::BnPolicy;
use results::{Alignment, PairResult, RunId};
pub use results::{InstabilitySummary, KSummary, MeanStd, PairRecord};
use serde::{Deserialize, Serialize};
use train::EvalConfig;

use crate::runs::{MaskSource, OptimizerAtRewind, PairSpec, Plan, WeightSource};
use crate::{Error, Result};
use store::Store;

/// How children are spawned and compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstabilityConfig {
    /// Data seeds of the children; every distinct pair is interpolated.
    pub data_seeds: Vec<u64>,
    /// Points on the interpolation path (30 in the paper).
    pub points: usize,
    pub bn_policy: BnPolicy,
    /// Evaluation subsets of the curves.
    pub eval: EvalConfig,
    /// Also interpolate the children every this many iterations of their training (the
    /// paper's Figure 4, "instability throughout training"; test error only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughout_every: Option<u64>,
    /// Align the second child of each pair to the first before interpolating.
    #[serde(default, skip_serializing_if = "Alignment::is_none")]
    pub align: Alignment,
}

/// A parent run and the steps its children branch at.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParentRun {
    pub init_seed: u64,
    pub run: RunId,
    pub ks: Vec<u64>,
}

/// The interpolation runs of one pair of children.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairRuns {
    pub init_seed: u64,
    pub k: u64,
    pub data_seeds: [u64; 2],
    pub children: [RunId; 2],
    /// At the end of training.
    pub last: RunId,
    pub total_steps: u64,
    /// (step, interpolation) during training, for Figure 4.
    pub throughout: Vec<(u64, RunId)>,
}

impl InstabilityConfig {
    /// Adds the children and interpolations of every parent to `plan`. `total_steps` is the
    /// length of the runs.
    pub fn plan(
        &self,
        plan: &mut Plan,
        parents: &[ParentRun],
        total_steps: u64,
    ) -> Result<Vec<PairRuns>> {
        if self.data_seeds.len() < 2 {
            return Err(Error::Invalid(
                "instability needs at least two data orders".into(),
            ));
        }
        let mut out = Vec::new();
        for parent in parents {
            for &k in &parent.ks {
                if k >= total_steps {
                    return Err(Error::Invalid(format!(
                        "k = {k} is not before the end of training ({total_steps} steps)"
                    )));
                }
                let children = self
                    .data_seeds
                    .iter()
                    .map(|&seed| {
                        plan.branch(
                            &parent.run,
                            k,
                            seed,
                            MaskSource::Parent,
                            WeightSource::Parent,
                            OptimizerAtRewind::Rewound,
                        )
                    })
                    .collect::<Result<Vec<_>>>()?;
                let probe_steps: Vec<u64> = match self.throughout_every {
                    Some(every) if every > 0 => (1..)
                        .map(|i| i * every)
                        .take_while(|&s| s < total_steps)
                        .filter(|&s| s > k)
                        .collect(),
                    _ => vec![],
                };
                for i in 0..children.len() {
                    for j in i + 1..children.len() {
                        let pair = |plan: &mut Plan, step: u64, with_train_error: bool| {
                            plan.pair(PairSpec {
                                a: children[i].clone(),
                                b: children[j].clone(),
                                step,
                                points: self.points,
                                bn_policy: self.bn_policy,
                                eval: self.eval.clone(),
                                with_train_error,
                                align: self.align,
                            })
                        };
                        let last = pair(plan, total_steps, true)?;
                        let throughout = probe_steps
                            .iter()
                            .map(|&s| Ok((s, pair(plan, s, false)?)))
                            .collect::<Result<Vec<_>>>()?;
                        out.push(PairRuns {
                            init_seed: parent.init_seed,
                            k,
                            data_seeds: [self.data_seeds[i], self.data_seeds[j]],
                            children: [children[i].clone(), children[j].clone()],
                            last,
                            total_steps,
                            throughout,
                        });
                    }
                }
            }
        }
        Ok(out)
    }
}

/// Reads the pairs back and aggregates them per k.
pub fn instability_summary(store: &Store, pairs: &[PairRuns]) -> Result<InstabilitySummary> {
    let records = pairs
        .iter()
        .map(|p| {
            let result: PairResult = store.finished(&p.last)?;
            let mut throughout = p
                .throughout
                .iter()
                .map(|(s, id)| Ok((*s, store.finished::<PairResult>(id)?.instability.test)))
                .collect::<Result<Vec<_>>>()?;
            if !p.throughout.is_empty() {
                throughout.push((p.total_steps, result.instability.test));
            }
            Ok(PairRecord {
                init_seed: p.init_seed,
                k: p.k,
                data_seeds: p.data_seeds,
                result,
                throughout,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(InstabilitySummary::of(records))
}
