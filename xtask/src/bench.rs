//! `cargo xtask bench`: ours beside `bench/reference.py` on the same work, as ours / PyTorch
//! ratios in BENCHMARKS.md.

use std::process::Command as Process;

use anyhow::Result;

use crate::shared::{reference_python, replace_section, run_reference};
use crate::{root, run};

/// Markers around the part of BENCHMARKS.md that `cargo xtask bench` rewrites.
const BENCH_START: &str = "<!-- cargo xtask bench: start -->";
const BENCH_END: &str = "<!-- cargo xtask bench: end -->";

/// Options of `cargo xtask bench`.
pub(crate) struct BenchOptions {
    pub threads: usize,
    pub steps: usize,
    pub warmup: usize,
    pub presets: String,
    pub features: Option<String>,
    pub reference: bool,
    pub write: bool,
}

pub(crate) fn bench(o: BenchOptions) -> Result<()> {
    let root = root();
    let ours_json = root.join("target").join("bench-ours.json");
    let mut cmd = Process::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    cmd.current_dir(&root)
        .args(["run", "--release", "--quiet", "-p", "cli"]);
    if let Some(f) = &o.features {
        cmd.args(["--features", f]);
    }
    cmd.args([
        "--",
        "bench",
        "--steps",
        &o.steps.to_string(),
        "--warmup",
        &o.warmup.to_string(),
        "--presets",
        &o.presets,
        "--json",
    ])
    .arg(&ours_json)
    .env("RAYON_NUM_THREADS", o.threads.to_string());
    run(&mut cmd)?;
    let ours: serde_json::Value = serde_json::from_slice(&std::fs::read(&ours_json)?)?;
    let reference = if o.reference {
        let python = reference_python(&root)?;
        Some(run_reference(
            &root,
            &python,
            o.threads,
            &[
                "--steps",
                &o.steps.to_string(),
                "--warmup",
                &o.warmup.to_string(),
                "--presets",
                &o.presets,
            ],
        )?)
    } else {
        None
    };
    let table = comparison_table(&ours, reference.as_ref());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let torch = reference
        .as_ref()
        .and_then(|r| r["torch"].as_str())
        .map_or_else(|| "not run".to_string(), |v| format!("torch {v}"));
    let generated = format!(
        "{BENCH_START}\nWritten by `cargo xtask bench` (release build). Both sides do the same \
         work on random data of the datasets' shapes; ours includes its data pipeline (batch \
         assembly, augmentation) in training steps, the reference feeds ready tensors; both \
         evaluate images already built as tensors, after one untimed pass. Medians of {} timed \
         samples after {} warm-up steps; a sample is one step, or as many steps as take 100 ms \
         (Lenet), divided. Ratio = ours / PyTorch in time (for images/s: PyTorch / \
         ours), so below 1 means faster than PyTorch.\n\nMachine: {cpu}, {} logical cores; \
         threads: {} on both sides; backend: {}; reference: {torch}.\n\n{table}{BENCH_END}\n\n",
        o.steps,
        o.warmup,
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        o.threads,
        ours["backend"].as_str().unwrap_or("?"),
    );
    print!("{generated}");
    if !o.write {
        return Ok(());
    }
    // Replace only the generated section: hand-written sections (GPU runs, ImageNet) stay.
    replace_section(
        &root.join("BENCHMARKS.md"),
        BENCH_START,
        BENCH_END,
        &generated,
        true,
    )?;
    println!("wrote BENCHMARKS.md");
    Ok(())
}

/// The Markdown table of ours beside the reference: one line per measurement.
fn comparison_table(ours: &serde_json::Value, reference: Option<&serde_json::Value>) -> String {
    let row_of = |report: &serde_json::Value, preset: &str| -> Option<serde_json::Value> {
        report["rows"]
            .as_array()?
            .iter()
            .find(|r| r["preset"] == preset)
            .cloned()
    };
    let fmt = |v: Option<f64>, digits: usize| {
        v.map_or_else(|| "-".to_string(), |v| format!("{v:.digits$}"))
    };
    let mut lines = vec![
        "| measurement | ours | PyTorch | ratio | % of peak, ours / PyTorch |".to_string(),
        "|---|---|---|---|---|".to_string(),
    ];
    let peak = ours["peak"]["gflops"].as_f64();
    // The share of the measured peak a step of `gflop` in `ms` reaches.
    let share = |gflop: Option<f64>, ms: Option<f64>| match (gflop, ms, peak) {
        (Some(g), Some(ms), Some(peak)) if ms > 0.0 && peak > 0.0 => {
            format!("{:.0}%", 100.0 * g / (ms / 1e3) / peak)
        }
        _ => "-".to_string(),
    };
    let mut limits = Vec::new();
    // (label, ours, theirs, ratio as time: ours / theirs; as rate: theirs / ours, peak shares)
    let mut push = |label: String,
                    a: Option<f64>,
                    b: Option<f64>,
                    time: bool,
                    digits: usize,
                    shares: Option<(String, String)>| {
        let ratio = match (a, b) {
            (Some(a), Some(b)) if a > 0.0 && b > 0.0 => Some(if time { a / b } else { b / a }),
            _ => None,
        };
        let shares = shares.map_or_else(|| "-".to_string(), |(a, b)| format!("{a} / {b}"));
        lines.push(format!(
            "| {label} | {} | {} | {} | {shares} |",
            fmt(a, digits),
            fmt(b, digits),
            fmt(ratio, 2)
        ));
    };
    let empty = serde_json::Value::Null;
    let reference = reference.unwrap_or(&empty);
    let presets: Vec<String> = ours["rows"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r["preset"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for preset in &presets {
        let (a, b) = (row_of(ours, preset), row_of(reference, preset));
        let get =
            |r: &Option<serde_json::Value>, key: &str| r.as_ref().and_then(|r| r[key].as_f64());
        let batch = get(&a, "batch").unwrap_or(0.0);
        let gflop = get(&a, "conv_gflop_per_step");
        let (ours_ms, theirs_ms) = (get(&a, "ms_per_step"), get(&b, "ms_per_step"));
        let shares = gflop.map(|_| (share(gflop, ours_ms), share(gflop, theirs_ms)));
        if let (Some(g), Some(p), Some(ms)) = (gflop, peak, ours_ms) {
            let limit = g / p * 1e3;
            limits.push(format!(
                "{preset}: {g:.1} GFLOP of convolutions per step, a limit of {limit:.0} ms at \
                 the peak; ours takes {:.1}x it",
                ms / limit
            ));
        }
        push(
            format!("{preset}: ms per training step (batch {batch})"),
            ours_ms,
            theirs_ms,
            true,
            1,
            shares,
        );
        push(
            format!("{preset}: eval images / s"),
            get(&a, "eval_images_per_s"),
            get(&b, "eval_images_per_s"),
            false,
            0,
            None,
        );
    }
    push(
        "interpolation sweep: ms (Lenet, 30 alphas x 10,000 test images)".into(),
        ours["interpolation_ms"].as_f64(),
        reference["interpolation_ms"].as_f64(),
        true,
        0,
        None,
    );
    push(
        "peak resident memory: MiB (whole process)".into(),
        ours["peak_rss_mib"].as_f64(),
        reference["peak_rss_mib"].as_f64(),
        true,
        0,
        None,
    );
    let mut text = lines.join("\n") + "\n";
    if let Some(p) = peak {
        text += &format!(
            "\nPeak: {p:.0} GFLOP/s, measured ({} fused multiply-adds on {} threads at once). \
             A step's FLOPs are its convolutions' (2 per multiply-add; the backward counted as \
             twice the forward).\n",
            ours["peak"]["isa"].as_str().unwrap_or("?"),
            ours["peak"]["threads"].as_u64().unwrap_or(0)
        );
        for l in limits {
            text += &format!("- {l}.\n");
        }
    }
    text
}
