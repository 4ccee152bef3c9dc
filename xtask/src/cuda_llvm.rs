//! `cargo xtask cuda-llvm`: the LLVM that `--features cuda` links, from PyPI instead of GitHub.
//!
//! burn's `cuda` backend compiles kernels through cubecl-llvm, whose build script
//! (tracel-llvm-bundler) downloads a prebuilt LLVM from GitHub unless it finds its sentinel file
//! in `${XDG_DATA_HOME:-~/.local/share}/tracel/tracel-llvm-<version>/`. PyPI's
//! `mlc-llvm-static` (static libraries, headers, an `llvm-config`) plus
//! `mlc-llvm-static-extra-targets` (NVPTX) are the same LLVM release: installed into a venv and
//! laid out there with the sentinel, the cuda build needs only the package registries.
//! Their `llvm-config` is a Python script, so `python3` must be on PATH while cargo builds, and
//! the build script pins the library path: keep the venv where it is between builds.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use anyhow::{Context, Result, bail};

use crate::run;

/// The bundler version this workspace locks, and the PyPI release of the same LLVM.
const BUNDLER_VERSION: &str = "23.1.0-4";
const LLVM_WHEELS: [&str; 2] = [
    "mlc-llvm-static==23.1.1.post0",
    "mlc-llvm-static-extra-targets==23.1.1.post0",
];
const SENTINEL: &str = ".tracel-llvm-installed";

fn home() -> Result<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set")
}

/// Where the bundler looks: `${XDG_DATA_HOME:-~/.local/share}/tracel/tracel-llvm-<version>`.
pub fn bundle_dir() -> Result<PathBuf> {
    let data = match std::env::var_os("XDG_DATA_HOME") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => home()?.join(".local").join("share"),
    };
    Ok(data
        .join("tracel")
        .join(format!("tracel-llvm-{BUNDLER_VERSION}")))
}

/// The venv that holds the wheels (`~/.cache/rewind/llvm-venv` unless given).
pub fn default_venv() -> Result<PathBuf> {
    Ok(home()?.join(".cache").join("rewind").join("llvm-venv"))
}

/// Checks that Cargo.lock still locks the bundler this command knows.
fn check_lock(root: &Path) -> Result<()> {
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).context("reading Cargo.lock")?;
    let locked = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"tracel-llvm-bundler\""))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_string());
    match locked {
        Some(v) if v == BUNDLER_VERSION => Ok(()),
        Some(v) => bail!(
            "Cargo.lock locks tracel-llvm-bundler {v}, this command knows {BUNDLER_VERSION}: \
             update BUNDLER_VERSION and LLVM_WHEELS in xtask/src/cuda_llvm.rs to the LLVM \
             release the new bundler wants"
        ),
        None => bail!("Cargo.lock has no tracel-llvm-bundler: is burn's cuda feature gone?"),
    }
}

/// Installs the wheels into `venv` (once) and lays them out where the bundler looks.
pub fn install(root: &Path, venv: &Path) -> Result<PathBuf> {
    check_lock(root)?;
    let dir = bundle_dir()?;
    let config = dir.join("bin").join("llvm-config");
    if dir.join(SENTINEL).is_file() && config.exists() {
        println!("LLVM for cuda already in place: {}", dir.display());
        return verify(&config).map(|()| dir);
    }
    let python = venv.join("bin").join("python");
    if !python.is_file() {
        run(Process::new("python3").arg("-m").arg("venv").arg(venv))
            .context("creating the venv needs python3 with its venv module")?;
    }
    println!(
        "installing {} into {}",
        LLVM_WHEELS.join(" "),
        venv.display()
    );
    run(Process::new(&python)
        .args(["-m", "pip", "install", "--quiet"])
        .args(LLVM_WHEELS))
    .context("pip could not install the LLVM wheels (PyPI must be reachable)")?;
    let out = Process::new(&python)
        .args(["-m", "mlc_llvm_static.config", "--prefix"])
        .output()
        .context("asking mlc_llvm_static for its prefix")?;
    if !out.status.success() {
        bail!(
            "mlc_llvm_static.config --prefix failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let prefix = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    for sub in ["bin", "include", "lib", "share"] {
        let (target, link) = (prefix.join(sub), dir.join(sub));
        if !target.exists() {
            bail!(
                "{} has no {sub}/: not the LLVM layout expected",
                prefix.display()
            );
        }
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link)
                .or_else(|_| std::fs::remove_dir_all(&link))
                .with_context(|| format!("replacing {}", link.display()))?;
        }
        std::os::unix::fs::symlink(&target, &link)
            .with_context(|| format!("linking {} to {}", link.display(), target.display()))?;
    }
    verify(&config)?;
    std::fs::write(
        dir.join(SENTINEL),
        b"installed from PyPI by cargo xtask cuda-llvm\n",
    )
    .with_context(|| format!("writing the sentinel in {}", dir.display()))?;
    println!("LLVM for cuda in place: {}", dir.display());
    Ok(dir)
}

/// `llvm-config` answers with the LLVM release and has the NVPTX target.
fn verify(config: &Path) -> Result<()> {
    let ask = |arg: &str| -> Result<String> {
        let out = Process::new(config)
            .arg(arg)
            .output()
            .with_context(|| format!("running {} (needs python3 on PATH)", config.display()))?;
        if !out.status.success() {
            bail!("{} {arg} failed", config.display());
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    let version = ask("--version")?;
    let targets = ask("--targets-built")?;
    if !version.starts_with("23.1") {
        bail!(
            "{} reports LLVM {version}, the bundler wants 23.1",
            config.display()
        );
    }
    if !targets.split_whitespace().any(|t| t == "NVPTX") {
        bail!(
            "this LLVM has no NVPTX target ({targets}): install {}",
            LLVM_WHEELS[1]
        );
    }
    println!("llvm-config: LLVM {version}, targets {targets}");
    Ok(())
}
