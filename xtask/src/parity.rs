//! `cargo xtask parity`: our training exported step by step, replayed by PyTorch
//! (`bench/parity.py`), the fixtures written per SIMD level; and the Python of `bench/.venv`
//! that `bench`, `bench-cuts` and `parity` share.

use std::path::PathBuf;
use std::process::Command as Process;

use anyhow::{Context, Result};

use crate::shared::reference_python;
use crate::{root, run, target_dir};

pub(crate) fn parity(
    cases: Vec<String>,
    data_dir: Option<PathBuf>,
    emulate: Option<String>,
) -> Result<()> {
    let root = root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    // Under emulation the export runs a built binary (cargo cannot run it through qemu): the
    // release one, whose export is byte-identical to the test profile's and ~10x faster there.
    if emulate.is_some() {
        run(Process::new(&cargo).args(["build", "--release", "-p", "cli"]))?;
    }
    let cases = if cases.is_empty() {
        vec!["lenet".into(), "resnet20".into(), "vgg16".into()]
    } else {
        cases
    };
    let python = reference_python(&root)?;
    for case in cases {
        let export = root
            .join("target")
            .join("xtask")
            .join(format!("parity-{case}"));
        // The test profile: the parity tests replay the export in it, state for state.
        let mut rewind = match &emulate {
            Some(cpu) => {
                let mut qemu = Process::new("qemu-x86_64");
                qemu.args(["-cpu", cpu])
                    .arg(target_dir(&root).join("release").join("rewind"));
                qemu
            }
            None => {
                let mut cargo = Process::new(&cargo);
                cargo.args(["run", "-p", "cli", "--"]);
                cargo
            }
        };
        if let Some(d) = &data_dir {
            rewind.arg("--data-dir").arg(d);
        }
        rewind
            .args(["parity-export", "--case", &case, "--out"])
            .arg(&export);
        run(&mut rewind)?;
        // Our replay is bit for bit only among machines of one SIMD level: one folder each.
        let export_json = export.join("export.json");
        let level = std::fs::read_to_string(&export_json)
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|v| v["simd_level"].as_str().map(str::to_owned))
            .with_context(|| format!("{} names no simd_level", export_json.display()))?;
        run(Process::new(&python)
            .arg(root.join("bench").join("parity.py"))
            .arg(&export)
            .arg("--out")
            .arg(root.join(format!("tests/fixtures/parity/{level}/{case}.json"))))?;
    }
    Ok(())
}
