//! `cargo xtask same-results A B`: whether two reproductions' outputs are the same results,
//! for a refactor that must not change them. `results.json` is compared value for value with
//! what depends on the machine's load left out (every `wall_seconds`, and at the top the
//! compute time, the time by kind of run and the commit); every PNG byte for byte. `REPORT.md`
//! is not compared: it prints the times.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::Value;

#[derive(Args)]
pub struct SameResults {
    /// The output directory of one reproduction (`results.json` and the PNGs).
    before: PathBuf,
    /// The output directory of the other.
    after: PathBuf,
}

/// Top-level keys whose values measure the machine or name the build, not the results.
const TOP_LEVEL_TIMINGS: [&str; 4] = ["wall_seconds", "compute_seconds", "time", "git_commit"];
/// Keys at any depth whose values measure the machine (each run's own wall time).
const TIMINGS: [&str; 1] = ["wall_seconds"];

pub fn run(args: SameResults) -> Result<()> {
    let read = |dir: &Path| -> Result<Value> {
        let path = dir.join("results.json");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    };
    let differences = differences(&read(&args.before)?, &read(&args.after)?);
    for d in differences.iter().take(20) {
        println!("results.json differs at {d}");
    }
    let (pngs, differing) = png_differences(&args.before, &args.after)?;
    for name in &differing {
        println!("{name} differs (or is missing from one side)");
    }
    println!(
        "results.json: {} differences (timings left out); PNGs: {} of {} byte-identical",
        differences.len(),
        pngs - differing.len(),
        pngs
    );
    if !differences.is_empty() || !differing.is_empty() {
        bail!("the two reproductions differ");
    }
    Ok(())
}

/// Paths (`$.models[0].imp[1]...`) where `a` and `b` differ, timings left out.
fn differences(a: &Value, b: &Value) -> Vec<String> {
    let strip = |v: &Value| match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| !TOP_LEVEL_TIMINGS.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        other => other.clone(),
    };
    let mut out = Vec::new();
    walk(&strip(a), &strip(b), "$".to_string(), &mut out);
    out
}

fn walk(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys = x.keys().chain(y.keys().filter(|k| !x.contains_key(*k)));
            for key in keys.filter(|k| !TIMINGS.contains(&k.as_str())) {
                match (x.get(key), y.get(key)) {
                    (Some(p), Some(q)) => walk(p, q, format!("{path}.{key}"), out),
                    _ => out.push(format!("{path}.{key} (on one side only)")),
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                walk(p, q, format!("{path}[{i}]"), out);
            }
        }
        _ if a == b => {}
        _ => out.push(format!("{path}: {a} vs {b}")),
    }
}

/// How many PNGs either side has, and the names of those not byte-identical on both.
fn png_differences(a: &Path, b: &Path) -> Result<(usize, Vec<String>)> {
    let names = |dir: &Path| -> Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if name.ends_with(".png") {
                names.push(name);
            }
        }
        Ok(names)
    };
    let mut all = names(a)?;
    all.extend(names(b)?);
    all.sort();
    all.dedup();
    let differing = all
        .iter()
        .filter(
            |name| match (std::fs::read(a.join(name)), std::fs::read(b.join(name))) {
                (Ok(x), Ok(y)) => x != y,
                _ => true,
            },
        )
        .cloned()
        .collect();
    Ok((all.len(), differing))
}

#[cfg(test)]
mod tests {
    use super::differences;
    use serde_json::json;

    #[test]
    fn timings_are_left_out_and_every_other_value_counts() {
        let a = json!({"wall_seconds": 1.0, "models": [{"imp": [{"accuracy": 0.9, "wall_seconds": 2.0}]}]});
        let timed_apart = json!({"wall_seconds": 5.0, "models": [{"imp": [{"accuracy": 0.9, "wall_seconds": 7.0}]}]});
        assert!(differences(&a, &timed_apart).is_empty());
        // The perturbations: one accuracy, one record more, one key on one side only.
        let other = json!({"wall_seconds": 1.0, "models": [{"imp": [{"accuracy": 0.91, "wall_seconds": 2.0}]}]});
        assert_eq!(
            differences(&a, &other),
            ["$.models[0].imp[0].accuracy: 0.9 vs 0.91"]
        );
        let longer = json!({"models": [{"imp": [{"accuracy": 0.9}, {"accuracy": 0.8}]}]});
        assert_eq!(differences(&a, &longer).len(), 1);
        let extra = json!({"models": [{"imp": [{"accuracy": 0.9, "density": 0.5}]}]});
        assert_eq!(
            differences(&a, &extra),
            ["$.models[0].imp[0].density (on one side only)"]
        );
        // Only the top level's `time` (the time by kind of run) is left out.
        let timed = json!({"time": [1], "models": [{"time": 1}]});
        let other_time = json!({"time": [2], "models": [{"time": 2}]});
        assert_eq!(
            differences(&timed, &other_time),
            ["$.models[0].time: 1 vs 2"]
        );
    }
}
