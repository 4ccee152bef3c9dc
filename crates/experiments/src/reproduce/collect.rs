//! Reading a finished plan back from the store into [`Results`].

use std::collections::BTreeMap;
use std::time::Instant;

use results::{DatasetName, ModelResults, ReproduceConfig, Results, TimeShare};

use super::ModelRuns;
use crate::instability::instability_summary;
use crate::registry::Entry;
use crate::runs::{Job, PairResult, Plan, TrainResult, run_kind};
use crate::{Error, Result};
use store::Store;

/// Reads every planned run of `networks` back from the store (all must be finished).
pub fn collect(
    config: &ReproduceConfig,
    networks: &[&Entry],
    models: &[ModelRuns],
    plan: &Plan,
    store: &Store,
    started: Instant,
) -> Result<Results> {
    let models = models
        .iter()
        .map(|m| {
            let entry = networks
                .iter()
                .find(|e| e.name == m.setup.preset)
                .ok_or_else(|| Error::UnknownNetwork {
                    name: m.setup.preset.clone(),
                    known: networks
                        .iter()
                        .map(|e| e.name)
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
            model_results(entry, m, store)
        })
        .collect::<Result<Vec<_>>>()?;
    let time = time_by_kind(plan, store)?;
    let compute_seconds = time.iter().map(|t| t.seconds).sum();
    let own_datasets = own_datasets(config, &models);
    Ok(Results {
        config: config.clone(),
        models,
        backend: train::numerics(&train::default_device()),
        git_commit: git_commit(),
        wall_seconds: started.elapsed().as_secs_f64(),
        compute_seconds,
        time,
        runs: plan.len(),
        own_datasets,
    })
}

/// The datasets of one's own that `results.json` names (trained on, or in a substitution),
/// once each.
fn own_datasets(config: &ReproduceConfig, models: &[ModelResults]) -> Vec<results::DatasetRecord> {
    let mut names: Vec<DatasetName> = Vec::new();
    let named = models.iter().map(|m| m.setup.network.dataset).chain(
        config
            .substitutes
            .iter()
            .flat_map(|&(paper, used)| [paper, used]),
    );
    for name in named {
        if name.is_own() && !names.contains(&name) {
            names.push(name);
        }
    }
    names.into_iter().map(results::DatasetRecord::of).collect()
}

fn model_results(entry: &Entry, m: &ModelRuns, store: &Store) -> Result<ModelResults> {
    let dense = if m.dense_pairs.is_empty() {
        None
    } else {
        Some(instability_summary(store, &m.dense_pairs)?)
    };
    let imp = super::imp::collect(store, &m.imp)?;
    let sparse = super::sparse::collect(store, &m.setup, &m.sparse_pairs, &imp)?;
    let length_check = super::length::collect(store, &m.length_check)?;
    let aligned = super::beyond::collect_aligned(store, &m.aligned)?;
    let across_inits = super::beyond::collect_across_inits(store, &m.across_inits)?;
    let level_links = super::levels::collect(store, &m.level_links, &m.imp, &imp)?;
    let layerwise = super::layerwise::collect(store, &m.layerwise)?;
    let mut results = ModelResults {
        setup: m.setup.record(entry)?,
        dense_accuracy: None,
        dense,
        imp,
        sparse,
        length_check,
        aligned,
        across_inits,
        level_links,
        layerwise,
    };
    results.dense_accuracy = results.dense_reference().map(|a| a.value);
    Ok(results)
}

/// Recorded compute time of the plan's runs, by network and kind of run.
fn time_by_kind(plan: &Plan, store: &Store) -> Result<Vec<TimeShare>> {
    // By network, then kind in alphabetical order.
    let mut shares: BTreeMap<(String, &'static str), TimeShare> = BTreeMap::new();
    for id in plan.ids() {
        let Some(job) = plan.job(id) else { continue };
        let (network, seconds) = match job {
            Job::Train(spec) => (
                spec.recipe.name.clone(),
                store.finished::<TrainResult>(id)?.wall_seconds,
            ),
            Job::Pair(pair) => (
                plan.train_spec(&pair.a)
                    .map_or_else(|_| "?".to_string(), |s| s.recipe.name.clone()),
                store.finished::<PairResult>(id)?.wall_seconds,
            ),
        };
        let kind = run_kind(job);
        let share = shares
            .entry((network.clone(), kind.as_str()))
            .or_insert_with(|| TimeShare {
                network,
                kind,
                runs: 0,
                seconds: 0.0,
            });
        share.runs += 1;
        share.seconds += seconds;
    }
    Ok(shares.into_values().collect())
}

/// The commit the report names: `REWIND_GIT_COMMIT` (set by the xtask), else `git`'s.
fn git_commit() -> String {
    if let Ok(commit) = std::env::var("REWIND_GIT_COMMIT") {
        return commit;
    }
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}
