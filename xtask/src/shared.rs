//! What several commands share: the Python of `bench/.venv` and `bench/reference.py` run with
//! it, a release build of `rewind`, and rewriting a marked section of a Markdown file.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{Context, Result, bail};

use crate::{run, target_dir};

/// The Python of `bench/.venv`, created and given torch (`bench/requirements.txt`) on first use.
pub(crate) fn reference_python(root: &Path) -> Result<PathBuf> {
    let venv = root.join("bench").join(".venv");
    let python = venv.join("bin").join("python");
    let has_torch = |python: &Path| {
        Process::new(python)
            .args(["-c", "import torch"])
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if python.is_file() && has_torch(&python) {
        return Ok(python);
    }
    println!(
        "installing the PyTorch reference into {} (pip)",
        venv.display()
    );
    run(Process::new("python3").arg("-m").arg("venv").arg(&venv))
        .context("creating the venv needs python3 with its venv module")?;
    run(Process::new(&python)
        .args(["-m", "pip", "install", "--quiet", "-r"])
        .arg(root.join("bench").join("requirements.txt")))
    .context("installing torch with pip (it needs PyPI; pass --no-reference to skip it)")?;
    Ok(python)
}

/// `bench/reference.py` with `threads` threads and `args`; the JSON it prints.
pub(crate) fn run_reference(
    root: &Path,
    python: &Path,
    threads: usize,
    args: &[&str],
) -> Result<serde_json::Value> {
    let out = Process::new(python)
        .arg(root.join("bench").join("reference.py"))
        .args(["--threads", &threads.to_string()])
        .args(args)
        .env("OMP_NUM_THREADS", threads.to_string())
        .output()
        .context("running bench/reference.py")?;
    if !out.status.success() {
        bail!(
            "bench/reference.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    serde_json::from_slice(&out.stdout).context("bench/reference.py printed no JSON")
}

/// `cargo build --release -p cli` with `features`, and the binary's path.
pub(crate) fn build_release_rewind(root: &Path, features: Option<&str>) -> Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Process::new(cargo);
    cmd.current_dir(root)
        .args(["build", "--release", "-p", "cli"]);
    if let Some(f) = features {
        cmd.args(["--features", f]);
    }
    run(&mut cmd)?;
    Ok(target_dir(root).join("release/rewind"))
}

/// Replaces the text from `start` to `end` (markers included, `generated` holds them) in the
/// Markdown file `path`; where the markers are missing, puts `generated` after the title
/// (`at_top`) or at the end. Hand-written sections stay.
pub(crate) fn replace_section(
    path: &Path,
    start: &str,
    end: &str,
    generated: &str,
    at_top: bool,
) -> Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let doc = match (old.find(start), old.find(end)) {
        (Some(s), Some(e)) if s < e => format!(
            "{}{generated}{}",
            &old[..s],
            old[e + end.len()..].trim_start_matches('\n')
        ),
        _ if at_top => format!(
            "# Benchmarks\n\n{generated}\n{}",
            old.trim_start_matches("# Benchmarks").trim_start()
        ),
        _ => format!("{}\n\n{generated}", old.trim_end()),
    };
    std::fs::write(path, doc).with_context(|| format!("writing {}", path.display()))
}
