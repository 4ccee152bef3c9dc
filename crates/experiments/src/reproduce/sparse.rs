//! The paper's sparse instability analysis (Figure 7), as one unit: the subnetworks IMP and
//! its baselines found at the last level, each trained twice more from its rewind k with other
//! data orders and interpolated; with alignment, the IMP subnetworks' pairs again ("Beyond the
//! paper"). Planning and collection here; the panels and findings in `figures`.

use results::{Branch, ImpSeries, SparseAnalysis};
use store::Store;

use super::{AlignedRuns, ImpAt, ModelSetup, SparseRuns, beyond};
use crate::instability::{InstabilityConfig, ParentRun, instability_summary};
use crate::runs::Plan;
use crate::{Error, Result};

/// The pairs of every branch trained at each sparse k (k outer, branches in
/// [`Branch::ALL`]'s order), from the last level of `imp`'s series; the IMP branch's pairs are
/// added to every analysis of `aligned` too.
pub fn plan(
    setup: &ModelSetup,
    instability: &InstabilityConfig,
    imp: &[ImpAt],
    aligned: &mut [AlignedRuns],
    plan: &mut Plan,
) -> Result<Vec<SparseRuns>> {
    let sparse_instability = InstabilityConfig {
        throughout_every: None,
        ..instability.clone()
    };
    let mut analyses = Vec::new();
    for &k in &setup.design.sparse_ks {
        for branch in Branch::ALL {
            let parents: Vec<ParentRun> = imp
                .iter()
                .filter(|at| at.k == k)
                .filter_map(|at| {
                    let run = at.runs.run(setup.design.levels, branch)?;
                    Some(ParentRun {
                        init_seed: at.init_seed,
                        run: run.clone(),
                        ks: vec![k],
                    })
                })
                .collect();
            // A branch without parents at this k (baselines only at other k) has nothing to
            // analyse: no empty analysis, whose mean density would be NaN.
            if parents.is_empty() {
                continue;
            }
            let pairs = sparse_instability.plan(plan, &parents, setup.design.total_steps)?;
            analyses.push(SparseRuns { k, branch, pairs });
            if branch == Branch::Imp {
                beyond::plan_sparse(aligned, setup, instability, &parents, plan)?;
            }
        }
    }
    Ok(analyses)
}

/// Every analysis summarised, each with the density of its branch's last level in `imp`.
pub fn collect(
    store: &Store,
    setup: &ModelSetup,
    runs: &[SparseRuns],
    imp: &[ImpSeries],
) -> Result<Vec<SparseAnalysis>> {
    runs.iter()
        .map(|SparseRuns { k, branch, pairs }| {
            let density = imp
                .iter()
                .find(|s| s.k == *k)
                .and_then(|s| s.level(setup.design.levels, *branch))
                .map(|l| l.density)
                .ok_or_else(|| {
                    Error::Invalid(format!(
                        "{}: a sparse analysis of {branch} at k = {k} has no IMP run of that \
                         branch to take its density from",
                        setup.preset
                    ))
                })?;
            Ok(SparseAnalysis {
                k: *k,
                branch: *branch,
                density,
                summary: instability_summary(store, pairs)?,
            })
        })
        .collect()
}
