//! `cargo xtask gpu-check`: builds `rewind` with a GPU backend, runs `rewind gpu-check` and the
//! PyTorch reference on the same GPU, and writes the GPU section of BENCHMARKS.md.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::GpuCheck;
use crate::shared::replace_section;

const GPU_START: &str = "<!-- cargo xtask gpu-check: start -->";
const GPU_END: &str = "<!-- cargo xtask gpu-check: end -->";

/// Timed steps of the reference: what `rewind gpu-check` times by default.
const REFERENCE_STEPS: &str = "30";
const REFERENCE_WARMUP: &str = "5";

pub fn run(root: &Path, g: GpuCheck) -> Result<()> {
    let dir = match &g.from {
        Some(dir) => dir.clone(),
        None => measure(root, &g)?,
    };
    let ours: Value = read_json(&dir.join("rewind.json"))?;
    let torch_path = dir.join("torch.json");
    let torch = if torch_path.is_file() {
        Some(read_json(&torch_path)?)
    } else {
        None
    };
    let section = render(&ours, torch.as_ref());
    print!("{section}");
    if !g.no_write {
        replace_section(
            &root.join("BENCHMARKS.md"),
            GPU_START,
            GPU_END,
            &section,
            false,
        )?;
        println!("wrote the GPU section of BENCHMARKS.md");
    }
    if ours["passed"] != Value::Bool(true) {
        bail!("the GPU check failed: see the table above");
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{} is not JSON", path.display()))
}

/// Builds and runs both sides; the directory holding `rewind.json` and maybe `torch.json`.
fn measure(root: &Path, g: &GpuCheck) -> Result<PathBuf> {
    let dir = root.join("target").join("gpu-check");
    std::fs::create_dir_all(&dir)?;
    let _ = std::fs::remove_file(dir.join("torch.json"));
    println!(
        "building rewind with --features {} (release; the first build of a GPU backend takes \
         a while)",
        g.features
    );
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // The check fails with its own message after writing the JSON: render it either way.
    let status = Process::new(cargo)
        .current_dir(root)
        .args(["run", "--release", "-p", "cli", "--features", &g.features])
        .args(["--", "gpu-check", "--json"])
        .arg(dir.join("rewind.json"))
        .args(&g.rewind_args)
        .status()
        .context("cannot start cargo")?;
    if !dir.join("rewind.json").is_file() {
        bail!("rewind gpu-check failed ({status}) before writing its results");
    }
    if g.no_reference {
        return Ok(dir);
    }
    let has_cuda = Process::new(&g.python)
        .args([
            "-c",
            "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !has_cuda {
        println!(
            "{} has no torch that sees a CUDA GPU: the PyTorch reference is skipped (pass \
             --python)",
            g.python.display()
        );
        return Ok(dir);
    }
    let out = Process::new(&g.python)
        .arg(root.join("bench").join("reference.py"))
        .args(["--device", "cuda", "--steps", REFERENCE_STEPS])
        .args(["--warmup", REFERENCE_WARMUP])
        .output()
        .context("running bench/reference.py")?;
    if !out.status.success() {
        bail!(
            "bench/reference.py --device cuda failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::write(dir.join("torch.json"), &out.stdout)?;
    Ok(dir)
}

fn f(v: &Value, digits: usize) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |x| format!("{x:.digits$}"))
}

fn e(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".into(), |x| format!("{x:.1e}"))
}

fn verdict(passed: &Value) -> &'static str {
    if passed == &Value::Bool(true) {
        "pass"
    } else {
        "FAIL"
    }
}

fn render(ours: &Value, torch: Option<&Value>) -> String {
    let null = Value::Null;
    let torch = torch.unwrap_or(&null);
    let mut s = format!(
        "{GPU_START}\n## GPU check\n\nWritten by `cargo xtask gpu-check`. Backend {}, device \
         `{}`; reference: {}. The same initial weights (seeded on the host) and the same batches \
         of seeded noise on the GPU and on the CPU backend (flex). Every step is taken on both \
         from the same state (the CPU's, moved to the GPU as a checkpoint) and the losses \
         (tolerance {}) and updates (L2, tolerance {}) compared; free-running, two float32 \
         trainings drift apart from rounding alone, fastest in networks unstable to SGD noise \
         early on (Resnet-20 at initialisation: the paper's own finding), so that column is \
         information, not a test. Masked: pruned to 20% by magnitude, trained on the GPU with \
         the mask applied after each step.\n\n",
        ours["backend"].as_str().unwrap_or("?"),
        ours["device"].as_str().unwrap_or("?"),
        match (torch["torch"].as_str(), torch["device"].as_str()) {
            (Some(v), Some(d)) => format!("PyTorch {v} on {d}"),
            _ => "not run".into(),
        },
        e(&ours["loss_tolerance"]),
        e(&ours["update_tolerance"]),
    );
    s += "| network | steps | loss, same state (max rel.) | update, same state (max rel.) | checkpoints across devices | GPU checkpoint resumed on the CPU (next loss) | free-running losses (max rel.) | masked weights non-zero | same seeds twice on the GPU: weights differing | result |\n|---|---|---|---|---|---|---|---|---|---|\n";
    for a in ours["agreements"].as_array().into_iter().flatten() {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} of {} | {} of {} | {} |\n",
            a["preset"].as_str().unwrap_or("?"),
            a["steps"],
            e(&a["step_loss_difference"]),
            e(&a["step_update_difference"]),
            if a["checkpoints_exact"] == Value::Bool(true) {
                "bit-identical"
            } else {
                "DIFFER"
            },
            e(&a["gpu_checkpoint_on_cpu"]),
            e(&a["free_running_difference"]),
            a["masked_nonzero"],
            a["masked"],
            a["gpu_rerun_differing_weights"],
            a["weights"],
            verdict(&a["passed"])
        );
    }
    let c = &ours["curve"];
    s += &format!(
        "\nInterpolation between two Lenets ({} alphas, {} test images): the error at each alpha \
         differs by at most {} examples between the devices ({}).\n\n",
        c["alphas"],
        c["images"],
        c["max_example_difference"],
        verdict(&c["passed"])
    );
    let deterministic = ours["agreements"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|a| a["gpu_rerun_differing_weights"].as_u64() == Some(0));
    s += if deterministic {
        "The same seeds gave bit-identical weights on this GPU.\n\n"
    } else {
        "The same seeds did **not** give bit-identical weights on this GPU (kernels whose \
         reductions are scheduled differently from run to run): repeated runs agree to rounding, \
         not bit for bit; instability measured on this GPU includes that noise.\n\n"
    };
    for (preset, a) in ours["reads"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|pair| Some((pair.get(0)?.as_str()?, pair.get(1)?)))
    {
        let reads: u64 = a["reads_by_step"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_u64)
            .sum();
        s += &format!(
            "Device-to-host reads, {preset}: {} masked training steps read {reads} times (losses \
             every {} steps), unscheduled reads after steps {}; an evaluation pass of {} batches \
             read {} time(s) ({}).\n\n",
            a["steps"],
            a["read_every"],
            a["unscheduled"],
            a["eval_batches"],
            a["reads_per_evaluation"],
            if a["unscheduled"].as_array().is_some_and(Vec::is_empty)
                && a["reads_per_evaluation"].as_u64() == Some(1)
            {
                "pass"
            } else {
                "FAIL"
            }
        );
    }
    s += "| network | batch | ms / step, ours | ms / step, PyTorch | ratio (ours / PyTorch) | eval images / s, ours | eval images / s at the training batch, ours | eval images / s, PyTorch | a paper-length run, ours | PyTorch |\n|---|---|---|---|---|---|---|---|---|---|\n";
    for r in ours["speed"].as_array().into_iter().flatten() {
        let preset = r["preset"].as_str().unwrap_or("?");
        let theirs = torch["rows"]
            .as_array()
            .and_then(|rows| rows.iter().find(|t| t["preset"] == preset))
            .unwrap_or(&null);
        let ratio = match (r["ms_per_step"].as_f64(), theirs["ms_per_step"].as_f64()) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "-".into(),
        };
        let length = |ms: &Value| match (ms.as_f64(), r["paper_steps"].as_u64()) {
            (Some(ms), Some(steps)) => {
                format!("{steps} steps: {:.1} min", ms * steps as f64 / 60e3)
            }
            _ => "-".into(),
        };
        let (paper, paper_torch) = (length(&r["ms_per_step"]), length(&theirs["ms_per_step"]));
        s += &format!(
            "| {preset} | {} | {} | {} | {ratio} | {} | {} | {} | {paper} | {paper_torch} |\n",
            r["batch"],
            f(&r["ms_per_step"], 2),
            f(&theirs["ms_per_step"], 2),
            f(&r["eval_images_per_s"], 0),
            f(&r["eval_images_per_s_train_batch"], 0),
            f(&theirs["eval_images_per_s"], 0),
        );
    }
    let concurrency: Vec<&Value> = ours["concurrency"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    if !concurrency.is_empty() {
        s += "\n| network | runs at once | training steps / s, all runs | x one run |\n|---|---|---|---|\n";
        for c in &concurrency {
            let one = concurrency
                .iter()
                .find(|o| o["preset"] == c["preset"] && o["runs"].as_u64() == Some(1))
                .and_then(|o| o["steps_per_s"].as_f64());
            let times = match (c["steps_per_s"].as_f64(), one) {
                (Some(all), Some(one)) if one > 0.0 => format!("{:.2}", all / one),
                _ => "-".into(),
            };
            s += &format!(
                "| {} | {} | {} | {times} |\n",
                c["preset"].as_str().unwrap_or("?"),
                c["runs"],
                f(&c["steps_per_s"], 1)
            );
        }
    }
    s += &format!(
        "\nOverall: {}.\n{GPU_END}\n",
        if ours["passed"] == Value::Bool(true) {
            "the GPU computes what the CPU computes"
        } else {
            "**the GPU disagrees with the CPU**"
        }
    );
    s
}
