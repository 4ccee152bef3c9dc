//! `cargo xtask device-bundle`: what a GPU machine with no Rust and no internet needs to run
//! `bench/device-check.sh`: `rewind` built here in release with every GPU backend it can hold,
//! stripped and xz-compressed into `target/device/`, with a note of how it was built.

use std::path::Path;
use std::process::Command as Process;

use anyhow::{Context, Result, bail};

use crate::run;

/// Largest bundle a lent device takes with the repository (the device tool carries 64 MiB).
const MAX_BUNDLE_BYTES: u64 = 60 << 20;

pub fn build(root: &Path, features: &str) -> Result<()> {
    if features.split(',').any(|f| f.trim() == "cuda") {
        crate::cuda_llvm::install(root, &crate::cuda_llvm::default_venv()?)?;
    }
    run(Process::new("cargo").current_dir(root).args([
        "build",
        "--release",
        "-p",
        "cli",
        "--features",
        features,
    ]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    let built = target.join("release").join("rewind");
    let out = root.join("target").join("device");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let stripped = out.join("rewind");
    run(Process::new("strip").arg("-o").arg(&stripped).arg(&built))
        .context("stripping needs binutils' strip")?;
    let compressed = out.join("rewind.xz");
    let _ = std::fs::remove_file(&compressed);
    run(Process::new("xz")
        .args(["-9", "-T0", "--keep", "--force"])
        .arg(&stripped))
    .context("compressing needs xz")?;
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let commit = Process::new("git")
        .current_dir(root)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let note = format!(
        "rewind at {commit}, cargo build --release -p cli --features {features}\n\
         stripped {} bytes, xz {} bytes\n",
        size(&stripped),
        size(&compressed)
    );
    std::fs::write(out.join("build.txt"), &note).context("writing build.txt")?;
    // Only the compressed binary travels.
    std::fs::remove_file(&stripped).context("removing the uncompressed copy")?;
    print!("{note}");
    if size(&compressed) > MAX_BUNDLE_BYTES {
        bail!(
            "{} is {} MiB, more than a device carries with the repository: build fewer \
             backends (e.g. --features cuda or --features vulkan) and run once per binary",
            compressed.display(),
            size(&compressed) >> 20
        );
    }
    println!("carry target/device to the GPU machine and run `bash bench/device-check.sh` there");
    Ok(())
}
