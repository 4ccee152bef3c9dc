//! The crates that must build without burn stay so: `results` (the vocabulary), `store` (the
//! experiment store, for login nodes and other projects) and `figures` (reports re-rendered
//! from `results.json`). Read from `Cargo.lock`, the dependency graph cargo builds.

use std::collections::{BTreeMap, BTreeSet};

/// Package name to the names of its dependencies, from the workspace's `Cargo.lock`.
fn lock_graph() -> BTreeMap<String, Vec<String>> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.lock");
    let text = std::fs::read_to_string(path).expect("Cargo.lock");
    let lock: toml::Value = toml::from_str(&text).expect("Cargo.lock is TOML");
    let packages = lock["package"].as_array().expect("packages");
    let mut graph: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in packages {
        let name = p["name"].as_str().expect("name").to_string();
        // A dependency is "name" or "name version" when several versions are locked.
        let deps = p
            .get("dependencies")
            .and_then(|d| d.as_array())
            .map(|d| {
                d.iter()
                    .filter_map(|d| d.as_str()?.split(' ').next().map(str::to_string))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        graph.entry(name).or_default().extend(deps);
    }
    graph
}

/// Every package `root` depends on, directly or not (all features and targets, as locked).
fn closure(graph: &BTreeMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(name) = todo.pop() {
        for dep in graph.get(&name).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

fn burn_in(deps: &BTreeSet<String>) -> Vec<&String> {
    deps.iter()
        .filter(|d| d.starts_with("burn") || d.starts_with("cubecl"))
        .collect()
}

#[test]
fn results_store_and_figures_build_without_burn() {
    let graph = lock_graph();
    for krate in ["results", "store", "figures"] {
        assert!(graph.contains_key(krate), "{krate} is not in Cargo.lock");
        let deps = closure(&graph, krate);
        assert!(
            burn_in(&deps).is_empty(),
            "{krate} depends on {:?}",
            burn_in(&deps)
        );
    }
    // The check sees burn where it is: the pipeline's crate has it.
    let experiments = closure(&graph, "experiments");
    assert!(experiments.contains("store"));
    assert!(burn_in(&experiments).contains(&&"burn".to_string()));
}
