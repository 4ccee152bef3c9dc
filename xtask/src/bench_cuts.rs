//! `cargo xtask bench-cuts`: the narrow networks of the CPU scales (Resnet-20 at base width 4
//! and 8, VGG-16 at 1/8 width), one thread and two runs at once, ours beside PyTorch, over
//! several process runs so that the noise shows; a table in BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde_json::Value;

const START: &str = "<!-- cargo xtask bench-cuts: start -->";
const END: &str = "<!-- cargo xtask bench-cuts: end -->";

#[derive(Args)]
pub struct BenchCuts {
    /// The networks (`rewind bench --presets` syntax).
    #[arg(long, default_value = "resnet20@w4,resnet20@w8,vgg16@d8")]
    cuts: String,
    /// Process runs of each side; the table gives the median and the range over them.
    #[arg(long, default_value_t = 3)]
    processes: usize,
    /// Timed steps per network and process (each side reports its median).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Untimed warm-up steps.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Use this `rewind` instead of building the release one.
    #[arg(long)]
    rewind: Option<PathBuf>,
    /// Measure ours only.
    #[arg(long)]
    no_reference: bool,
    /// Print the table without rewriting BENCHMARKS.md.
    #[arg(long)]
    no_write: bool,
}

/// Per cut: ms per step of each process run, GFLOP per step, and steps/s with two at once.
#[derive(Default)]
struct Measured {
    ours_ms: Vec<f64>,
    theirs_ms: Vec<f64>,
    gflop: Option<f64>,
    ours_pair: Vec<f64>,
    theirs_pair: Vec<f64>,
}

pub fn run(root: &Path, o: BenchCuts) -> Result<()> {
    let rewind = match o.rewind.clone() {
        Some(p) => p,
        None => crate::shared::build_release_rewind(root, None)?,
    };
    let python = if o.no_reference {
        None
    } else {
        Some(crate::shared::reference_python(root)?)
    };
    let cuts: Vec<String> = o.cuts.split(',').map(str::to_string).collect();
    let mut measured: Vec<Measured> = cuts.iter().map(|_| Measured::default()).collect();
    let mut peak = None;
    let json = crate::target_dir(root).join("bench-cuts.json");
    for p in 0..o.processes.max(1) {
        eprintln!("process run {} of {}", p + 1, o.processes);
        // One thread: every cut's steps.
        let single = ours(&rewind, &o, &json, &["--presets", &o.cuts], 1)?;
        peak = single["peak"]["gflops"].as_f64().or(peak);
        for (cut, m) in cuts.iter().zip(&mut measured) {
            let row = find(&single["rows"], cut)?;
            m.ours_ms
                .push(row["ms_per_step"].as_f64().unwrap_or(f64::NAN));
            m.gflop = row["conv_gflop_per_step"].as_f64();
        }
        // Two runs at once, one thread each (as `reproduce --jobs 2` on 2 cores).
        let pair = ours(
            &rewind,
            &o,
            &json,
            &[
                "--presets",
                "",
                "--concurrent",
                "2",
                "--concurrent-presets",
                &o.cuts,
            ],
            2,
        )?;
        for (cut, m) in cuts.iter().zip(&mut measured) {
            let row = find(&pair["concurrency"], cut)?;
            m.ours_pair
                .push(row["steps_per_s"].as_f64().unwrap_or(f64::NAN));
        }
        if let Some(python) = &python {
            let theirs = reference(root, python, &o, &o.cuts)?;
            for (cut, m) in cuts.iter().zip(&mut measured) {
                let row = find(&theirs["rows"], cut)?;
                m.theirs_ms
                    .push(row["ms_per_step"].as_f64().unwrap_or(f64::NAN));
            }
            for (cut, m) in cuts.iter().zip(&mut measured) {
                // Two processes of one thread each, at once.
                let (a, b) = std::thread::scope(|s| {
                    let a = s.spawn(|| reference(root, python, &o, cut));
                    let b = s.spawn(|| reference(root, python, &o, cut));
                    (a.join(), b.join())
                });
                let mut rate = 0.0;
                for r in [a, b] {
                    let r = r.map_err(|_| anyhow::anyhow!("a reference thread panicked"))??;
                    rate += 1e3
                        / find(&r["rows"], cut)?["ms_per_step"]
                            .as_f64()
                            .unwrap_or(f64::NAN);
                }
                m.theirs_pair.push(rate);
            }
        }
    }
    let text = section(&cuts, &measured, peak, &o);
    print!("{text}");
    if !o.no_write {
        crate::shared::replace_section(&root.join("BENCHMARKS.md"), START, END, &text, false)?;
        println!("wrote BENCHMARKS.md");
    }
    Ok(())
}

fn ours(rewind: &Path, o: &BenchCuts, json: &Path, what: &[&str], threads: usize) -> Result<Value> {
    let status = Process::new(rewind)
        .arg("bench")
        .args(what)
        .args([
            "--steps",
            &o.steps.to_string(),
            "--warmup",
            &o.warmup.to_string(),
        ])
        .args(["--sweep-points", "0", "--eval-images", "500", "--json"])
        .arg(json)
        .env("RAYON_NUM_THREADS", threads.to_string())
        .status()
        .with_context(|| format!("running {}", rewind.display()))?;
    if !status.success() {
        bail!("rewind bench failed with {status}");
    }
    Ok(serde_json::from_slice(&std::fs::read(json)?)?)
}

fn reference(root: &Path, python: &Path, o: &BenchCuts, presets: &str) -> Result<Value> {
    crate::shared::run_reference(
        root,
        python,
        1,
        &[
            "--presets",
            presets,
            "--no-sweep",
            "--steps",
            &o.steps.to_string(),
            "--warmup",
            &o.warmup.to_string(),
        ],
    )
}

fn find<'a>(rows: &'a Value, preset: &str) -> Result<&'a Value> {
    rows.as_array()
        .and_then(|rows| rows.iter().find(|r| r["preset"] == preset))
        .with_context(|| format!("no row for {preset}"))
}

/// Median and range of `v`, as `median (min-max)`.
fn spread(v: &[f64], digits: usize) -> String {
    if v.is_empty() {
        return "-".into();
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    format!(
        "{:.digits$} ({:.digits$}-{:.digits$})",
        s[s.len() / 2],
        s[0],
        s[s.len() - 1]
    )
}

fn median(v: &[f64]) -> Option<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s.get(s.len() / 2).copied()
}

fn section(cuts: &[String], measured: &[Measured], peak: Option<f64>, o: &BenchCuts) -> String {
    let mut text = format!(
        "{START}\n## The CPU scales' networks (`cargo xtask bench-cuts`)\n\n\
         Resnet-20 at base width 4 (the medium scale's) and 8 (the quick scale's), VGG-16 with \
         every layer's channels divided by 8 (the quick scale's), batch 128 of random \
         CIFAR-shaped data, SGD. Each side ran {n} times as its own process; each process \
         reports the median of {steps} steps after {warmup} warm-up steps; the table gives the \
         median over processes and their range. One thread on both sides; \"two at once\" is \
         two runs of one thread each (ours: two training threads in one process, as \
         `reproduce --jobs 2`; PyTorch: two processes), all their steps per second together. \
         The limit is the convolutions' FLOPs (the backward as twice the forward) at one \
         thread's measured fused multiply-add peak{peak}.\n\n\
         | network | ours, ms / step | PyTorch, ms / step | ours / PyTorch | conv GFLOP / step | limit, ms | ours / limit | two at once, steps / s: ours | PyTorch |\n\
         |---|---|---|---|---|---|---|---|---|\n",
        n = o.processes,
        steps = o.steps,
        warmup = o.warmup,
        peak = peak.map_or_else(String::new, |p| format!(" ({p:.0} GFLOP/s)")),
    );
    for (cut, m) in cuts.iter().zip(measured) {
        let ratio = match (median(&m.ours_ms), median(&m.theirs_ms)) {
            (Some(a), Some(b)) => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        let limit = m.gflop.zip(peak).map(|(g, p)| g / p * 1e3);
        let over = limit
            .zip(median(&m.ours_ms))
            .map_or_else(|| "-".into(), |(l, ms)| format!("{:.1}x", ms / l));
        text += &format!(
            "| {cut} | {} | {} | {ratio} | {} | {} | {over} | {} | {} |\n",
            spread(&m.ours_ms, 1),
            spread(&m.theirs_ms, 1),
            m.gflop.map_or_else(|| "-".into(), |g| format!("{g:.2}")),
            limit.map_or_else(|| "-".into(), |l| format!("{l:.1}")),
            spread(&m.ours_pair, 2),
            spread(&m.theirs_pair, 2),
        );
    }
    text + END + "\n"
}
