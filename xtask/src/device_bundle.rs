//! `cargo xtask device-bundle`: what a GPU machine with no Rust and no internet needs to run
//! `bench/device-check.sh`: `rewind` built here in release once per feature set (e.g.
//! `cuda,vulkan` and `wgpu`: a Vulkan device compiles SPIR-V in a vulkan build and WGSL in a
//! wgpu one, so comparing them takes two binaries), stripped and xz-compressed into
//! `target/device/`, with `manifest.txt` naming each binary's backends for the script.

use std::path::Path;
use std::process::Command as Process;

use anyhow::{Context, Result, bail};

use crate::run;

/// Largest bundle a lent device takes with the repository (the device tool carries 64 MiB).
const MAX_BUNDLE_BYTES: u64 = 60 << 20;

/// The `$REWIND_DEVICE` values that select each GPU backend of a feature set, with the label
/// of its results: cuda first, then wgpu (SPIR-V with `vulkan`, WGSL without).
fn backends(features: &str) -> Vec<(&'static str, &'static str)> {
    let has = |f: &str| features.split(',').any(|x| x.trim() == f);
    let mut out = Vec::new();
    if has("cuda") {
        out.push(("cuda:0", "cuda"));
    }
    if has("vulkan") {
        out.push(("wgpu", "vulkan"));
    } else if has("wgpu") {
        out.push(("wgpu", "wgsl"));
    }
    out
}

pub fn build(root: &Path, feature_sets: &[String]) -> Result<()> {
    let out = root.join("target").join("device");
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    let target = crate::target_dir(root);
    let commit = Process::new("git")
        .current_dir(root)
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let (mut manifest, mut total) = (String::new(), 0);
    for features in feature_sets {
        let selectors = backends(features);
        if selectors.is_empty() {
            bail!("`{features}` holds no GPU backend (cuda, vulkan or wgpu)");
        }
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
        let name = format!("rewind-{}", features.replace(',', "+"));
        let stripped = out.join(&name);
        run(Process::new("strip")
            .arg("-o")
            .arg(&stripped)
            .arg(target.join("release").join("rewind")))
        .context("stripping needs binutils' strip")?;
        run(Process::new("xz")
            .args(["-9", "-T0", "--force"])
            .arg(&stripped))
        .context("compressing needs xz")?;
        let compressed = out.join(format!("{name}.xz"));
        total += size(&compressed);
        let line: Vec<String> = selectors
            .iter()
            .map(|(device, label)| format!("{device}={label}"))
            .collect();
        manifest += &format!("{name}.xz {}\n", line.join(" "));
        println!(
            "{name}.xz: {} MiB (rewind at {commit}, --features {features})",
            size(&compressed) >> 20
        );
    }
    std::fs::write(out.join("manifest.txt"), &manifest).context("writing manifest.txt")?;
    std::fs::write(
        out.join("build.txt"),
        format!("rewind at {commit}, cargo build --release -p cli\n{manifest}"),
    )
    .context("writing build.txt")?;
    if total > MAX_BUNDLE_BYTES {
        bail!(
            "the bundle is {} MiB, more than a device carries with the repository: bundle \
             fewer feature sets and run once per bundle",
            total >> 20
        );
    }
    println!("carry target/device to the GPU machine and run `bash bench/device-check.sh` there");
    Ok(())
}
