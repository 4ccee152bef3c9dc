//! Full training state on disk: `checkpoints/step-<k>/{model.bpk, optimizer.bpk, state.json,
//! metrics.json, running.json}`, each directory written under a temporary name and renamed into place, so a
//! checkpoint either exists whole or not at all. `state.json`, written last, holds the SHA-256
//! of every other file; a checkpoint whose files do not match is corrupt, and resuming moves it
//! aside (`corrupt-step-<k>`) and falls back to the previous one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;
use results::sha256_hex;
use serde::{Deserialize, Serialize};

use crate::{Error, MetricRecord, Result};

/// Writes `bytes` to `path` atomically ([`results::write_atomic`]): whole or not at all, and
/// a failed write leaves no temporary behind.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    Ok(results::write_atomic(path, bytes)?)
}

/// Writes `value` as TOML to `path` or, when the file exists, checks that it holds the same
/// value: the identity file of a run or experiment directory. A directory is never reused
/// for another configuration.
pub fn claim_toml<T: Serialize + serde::de::DeserializeOwned + PartialEq>(
    path: &Path,
    value: &T,
) -> Result<()> {
    let text = toml::to_string(value).map_err(|e| Error::Config(e.to_string()))?;
    match std::fs::read_to_string(path) {
        Ok(existing) => {
            let parsed: T = toml::from_str(&existing).map_err(|e| Error::Parse {
                path: path.to_path_buf(),
                what: "configuration",
                reason: e.to_string(),
            })?;
            if parsed != *value {
                return Err(Error::ConfigMismatch {
                    dir: path.parent().unwrap_or(Path::new(".")).to_path_buf(),
                    existing: existing.replace('\n', " "),
                    new: text.replace('\n', " "),
                });
            }
            Ok(())
        }
        Err(_) => write_atomic(path, text.as_bytes()),
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StateFile {
    step: u64,
    /// SHA-256 (hex) of each other file of the checkpoint; empty in checkpoints written before
    /// checksums existed, which load unverified.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    sha256: BTreeMap<String, String>,
    /// [`crate::numerics`] of the process that wrote it; absent in checkpoints written before
    /// it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    numerics: Option<String>,
}

/// The files of a checkpoint that `state.json` vouches for.
const CHECKED_FILES: [&str; 4] = ["model.bpk", "optimizer.bpk", "metrics.json", "running.json"];

/// What a run accumulates between evaluations that its later metrics depend on, kept with each
/// checkpoint so that a resumed run writes what an uninterrupted one writes: the training loss
/// since the last evaluation (the next record's `train_loss`) and the divergence rule's
/// current stretch. Checkpoints written before it existed load with none (a resumed run's
/// next `train_loss` then averages only the steps after the resumption).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct RunningTotals {
    /// Sum of the per-step training losses since the last evaluation, and how many.
    pub loss_sum: f64,
    pub loss_count: u32,
    /// First step and number of consecutive loss reads above the divergence threshold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence_stretch: Option<(u64, u32)>,
}

/// A loaded checkpoint.
pub struct Checkpoint<M> {
    pub step: u64,
    pub model: M,
    pub optimizer: ModuleOptimizer,
    pub metrics: Vec<MetricRecord>,
    pub running: RunningTotals,
    /// [`crate::numerics`] of the process that wrote it (`None`: not recorded).
    pub numerics: Option<String>,
}

/// The checkpoints of one run directory.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    root: PathBuf,
    numerics: Option<String>,
}

impl CheckpointStore {
    pub fn new(run_dir: &Path) -> Self {
        CheckpointStore {
            root: run_dir.join("checkpoints"),
            numerics: None,
        }
    }

    /// Records `numerics` ([`crate::numerics`]) in every checkpoint this store writes.
    pub fn with_numerics(mut self, numerics: String) -> Self {
        self.numerics = Some(numerics);
        self
    }

    pub fn dir_of(&self, step: u64) -> PathBuf {
        self.root.join(format!("step-{step:010}"))
    }

    /// Steps of the complete checkpoints, ascending.
    pub fn steps(&self) -> Vec<u64> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return vec![];
        };
        let mut steps: Vec<u64> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.strip_prefix("step-")?.parse().ok())
            .collect();
        steps.sort_unstable();
        steps
    }

    pub fn latest(&self) -> Option<u64> {
        self.steps().pop()
    }

    pub fn has(&self, step: u64) -> bool {
        self.dir_of(step).join("state.json").is_file()
    }

    /// Saves `model` (BN buffers synced through `valid()`), the optimiser state and the metrics
    /// so far as the checkpoint of `step`, with nothing accumulated since the last evaluation.
    pub fn save<M: Module>(
        &self,
        step: u64,
        model: &M,
        optimizer: &ModuleOptimizer,
        metrics: &[MetricRecord],
    ) -> Result<()> {
        self.save_with(step, model, optimizer, metrics, RunningTotals::default())
    }

    /// [`CheckpointStore::save`] with what the run accumulated since its last evaluation.
    pub fn save_with<M: Module>(
        &self,
        step: u64,
        model: &M,
        optimizer: &ModuleOptimizer,
        metrics: &[MetricRecord],
        running: RunningTotals,
    ) -> Result<()> {
        let target = self.dir_of(step);
        if target.exists() {
            return Ok(());
        }
        let tmp = self
            .root
            .join(format!(".step-{step:010}.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        let state = StateFile {
            step,
            sha256: BTreeMap::new(),
            numerics: self.numerics.clone(),
        };
        let written = write_checkpoint(&tmp, state, model, optimizer, metrics, running)
            .and_then(|()| std::fs::rename(&tmp, &target).map_err(|e| e.to_string()));
        written.map_err(|reason| {
            // A checkpoint is whole or absent: nothing half-written stays behind.
            let _ = std::fs::remove_dir_all(&tmp);
            Error::CheckpointWrite {
                path: target,
                reason,
            }
        })
    }

    /// Loads the checkpoint of `step` into `model` (a freshly built module of the same
    /// architecture on the training device) and a fresh `optimizer`.
    pub fn load<M: Module>(
        &self,
        step: u64,
        model: M,
        optimizer: ModuleOptimizer,
    ) -> Result<Checkpoint<M>> {
        let dir = self.dir_of(step);
        let fail = |reason: String| Error::Checkpoint {
            path: dir.clone(),
            reason,
        };
        let state = self.verify(step)?;
        let model = model
            .try_load_file(dir.join("model.bpk"))
            .map_err(|e| fail(e.to_string()))?;
        let optimizer = optimizer
            .load(dir.join("optimizer.bpk"))
            .map_err(|e| fail(e.to_string()))?;
        let metrics = read_json(&dir.join("metrics.json")).map_err(|e| fail(e.to_string()))?;
        let running_path = dir.join("running.json");
        let running = if running_path.is_file() {
            read_json(&running_path).map_err(|e| fail(e.to_string()))?
        } else {
            RunningTotals::default()
        };
        Ok(Checkpoint {
            step,
            model,
            optimizer,
            metrics,
            running,
            numerics: state.numerics,
        })
    }

    /// The metrics recorded up to `step`, from its checkpoint, once every file of that
    /// checkpoint matches its checksum (a run reused from it loads it next).
    pub fn metrics(&self, step: u64) -> Result<Vec<MetricRecord>> {
        self.verify(step)?;
        let dir = self.dir_of(step);
        read_json(&dir.join("metrics.json")).map_err(|e| Error::Checkpoint {
            path: dir,
            reason: e.to_string(),
        })
    }

    /// Checks every file of checkpoint `step` against the checksums in its `state.json`.
    fn verify(&self, step: u64) -> Result<StateFile> {
        let dir = self.dir_of(step);
        let fail = |reason: String| Error::Checkpoint {
            path: dir.clone(),
            reason,
        };
        let state: StateFile =
            read_json(&dir.join("state.json")).map_err(|e| fail(e.to_string()))?;
        if state.step != step {
            return Err(fail(format!(
                "it records step {} instead of {step}",
                state.step
            )));
        }
        // Checkpoints older than checksums load unverified; one with `running.json` (newer
        // than checksums) that lists none has a damaged `state.json`.
        if state.sha256.is_empty() && dir.join("running.json").exists() {
            return Err(fail("state.json lists no checksums: it is damaged".into()));
        }
        for (file, expected) in &state.sha256 {
            let path = dir.join(file);
            let bytes = std::fs::read(&path).map_err(|e| fail(format!("{file}: {e}")))?;
            if sha256_hex(&bytes) != *expected {
                return Err(fail(format!(
                    "{file} does not match the checksum written with it: the file is corrupt"
                )));
            }
        }
        Ok(state)
    }

    /// The latest checkpoint that loads, into `template()` and `optimizer()`: a corrupt one
    /// (a file truncated, changed or missing) is moved aside as `corrupt-step-<k>` with a
    /// warning that names it, and the one before it is tried. `None` when no checkpoint loads.
    pub fn load_latest<M: Module>(
        &self,
        template: impl Fn() -> Result<M>,
        optimizer: impl Fn() -> ModuleOptimizer,
    ) -> Result<Option<Checkpoint<M>>> {
        for step in self.steps().into_iter().rev() {
            match self.load(step, template()?, optimizer()) {
                Ok(checkpoint) => return Ok(Some(checkpoint)),
                Err(Error::Checkpoint { path, reason }) => {
                    let aside = self.root.join(format!("corrupt-step-{step:010}"));
                    let _ = std::fs::remove_dir_all(&aside);
                    std::fs::rename(&path, &aside).map_err(|e| Error::io(&path, e))?;
                    tracing::warn!(
                        "checkpoint {} is corrupt ({reason}); moved aside to {} and resuming \
                         from the checkpoint before it",
                        path.display(),
                        aside.display()
                    );
                }
                Err(other) => return Err(other),
            }
        }
        Ok(None)
    }

    /// Deletes every checkpoint whose step is not in `keep`.
    pub fn prune(&self, keep: impl Fn(u64) -> bool) -> Result<()> {
        for step in self.steps() {
            if !keep(step) {
                let dir = self.dir_of(step);
                std::fs::remove_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            }
        }
        Ok(())
    }
}

/// Writes the files of a checkpoint into the fresh directory `dir`.
fn write_checkpoint<M: Module>(
    dir: &Path,
    mut state: StateFile,
    model: &M,
    optimizer: &ModuleOptimizer,
    metrics: &[MetricRecord],
    running: RunningTotals,
) -> std::result::Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    model
        .valid()
        .save_file(dir.join("model.bpk"))
        .map_err(|e| e.to_string())?;
    optimizer
        .save(dir.join("optimizer.bpk"))
        .map_err(|e| e.to_string())?;
    if let Some(e) = results::faults::inject(results::faults::CHECKPOINT) {
        return Err(e.to_string());
    }
    let metrics_json = serde_json::to_vec_pretty(metrics).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("metrics.json"), metrics_json).map_err(|e| e.to_string())?;
    let running_json = serde_json::to_vec(&running).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("running.json"), running_json).map_err(|e| e.to_string())?;
    // Hashed as they lie on disk, read back: what a later load will read.
    state.sha256 = CHECKED_FILES
        .iter()
        .map(|file| {
            let bytes = std::fs::read(dir.join(file)).map_err(|e| format!("{file}: {e}"))?;
            Ok((file.to_string(), sha256_hex(&bytes)))
        })
        .collect::<std::result::Result<_, String>>()?;
    let state = serde_json::to_vec(&state).map_err(|e| e.to_string())?;
    std::fs::write(dir.join("state.json"), state).map_err(|e| e.to_string())
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    serde_json::from_slice(&bytes).map_err(|e| Error::Parse {
        path: path.to_path_buf(),
        what: "JSON file",
        reason: e.to_string(),
    })
}
