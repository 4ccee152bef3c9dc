//! Finished runs carried between stores that share no filesystem: [`Store::export`] writes
//! them into one `.tar.gz` with a manifest of every file's SHA-256; [`Store::import`] checks
//! every byte against it, and a run appears in the store whole (staged, then renamed into
//! place) or not at all. A run the store has finished already is kept as it is.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use results::RunId;
use serde::{Deserialize, Serialize};

use crate::store::{LOCK, RunStatus, Store};
use crate::{Error, Result, io};

const FORMAT: &str = "rewind-runs/1";
const MANIFEST: &str = "manifest.json";

/// The first entry of an archive: what it holds, file by file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Manifest {
    format: String,
    /// Run id -> (path inside the run directory -> SHA-256).
    runs: BTreeMap<String, BTreeMap<String, String>>,
}

/// What an import did, run by run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportReport {
    /// Runs now in the store that were not finished there before.
    pub imported: Vec<RunId>,
    /// Runs the store had finished already (left as they were).
    pub kept: Vec<RunId>,
    /// Runs a live process is working on (left to it).
    pub busy: Vec<RunId>,
    pub bytes: u64,
}

fn archive_error(path: &Path, reason: impl Into<String>) -> Error {
    Error::Archive {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Every file under `dir` but locks and temporaries, as paths relative to it, sorted.
fn run_files(dir: &Path) -> Result<Vec<PathBuf>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir).map_err(|e| io(dir, e))? {
            let entry = entry.map_err(|e| io(dir, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == LOCK || (name.starts_with('.') && name.contains(".tmp")) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                walk(root, &path, out)?;
            } else if let Ok(relative) = path.strip_prefix(root) {
                out.push(relative.to_path_buf());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

fn relative_name(path: &Path) -> String {
    path.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

impl Store {
    /// Writes the finished runs `ids` (all finished runs when empty) into the archive `path`
    /// (written atomically); returns how many runs and bytes it holds. A run that has not
    /// finished is refused: only results and the checkpoints beside them travel.
    pub fn export(&self, ids: &[RunId], path: &Path) -> Result<(usize, u64)> {
        let ids: Vec<RunId> = if ids.is_empty() {
            self.list()?
                .into_iter()
                .filter(|e| e.status == RunStatus::Done)
                .map(|e| e.id)
                .collect()
        } else {
            ids.to_vec()
        };
        let mut manifest = Manifest {
            format: FORMAT.into(),
            runs: BTreeMap::new(),
        };
        let mut files = Vec::new();
        for id in &ids {
            if self.status(id) != RunStatus::Done {
                return Err(Error::NotFinished(id.clone()));
            }
            let dir = self.dir(id);
            let mut sums = BTreeMap::new();
            for relative in run_files(&dir)? {
                let full = dir.join(&relative);
                let bytes = std::fs::read(&full).map_err(|e| io(&full, e))?;
                sums.insert(relative_name(&relative), results::sha256_hex(&bytes));
                files.push((format!("runs/{id}/{}", relative_name(&relative)), bytes));
            }
            manifest.runs.insert(id.to_string(), sums);
        }
        let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
        let written = write_archive(&tmp, &manifest, &files)
            .and_then(|()| std::fs::rename(&tmp, path).map_err(|e| io(path, e)));
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written?;
        let bytes = std::fs::metadata(path).map_err(|e| io(path, e))?.len();
        Ok((ids.len(), bytes))
    }

    /// Adds the runs of the archive `path` to this store. Every file is checked against the
    /// archive's manifest and every result against its checksum before the run is renamed into
    /// place; an archive that fails a check is refused with the run and file it failed on,
    /// and leaves nothing behind.
    pub fn import(&self, path: &Path) -> Result<ImportReport> {
        let file = std::fs::File::open(path).map_err(|e| io(path, e))?;
        let mut archive = tar::Archive::new(GzDecoder::new(file));
        let mut entries = archive
            .entries()
            .map_err(|e| archive_error(path, e.to_string()))?;
        let manifest: Manifest = {
            let mut first = entries
                .next()
                .ok_or_else(|| archive_error(path, "it is empty"))?
                .map_err(|e| archive_error(path, e.to_string()))?;
            let name = first
                .path()
                .map_err(|e| archive_error(path, e.to_string()))?
                .to_string_lossy()
                .into_owned();
            if name != MANIFEST {
                return Err(archive_error(
                    path,
                    format!("its first entry is {name}, not {MANIFEST}: not an export of runs"),
                ));
            }
            let mut text = Vec::new();
            first
                .read_to_end(&mut text)
                .map_err(|e| archive_error(path, e.to_string()))?;
            serde_json::from_slice(&text)
                .map_err(|e| archive_error(path, format!("its manifest is unreadable: {e}")))?
        };
        if manifest.format != FORMAT {
            return Err(archive_error(
                path,
                format!("format {} (this version reads {FORMAT})", manifest.format),
            ));
        }
        let staging = self
            .root()
            .join(format!(".import.tmp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&staging);
        let staged = stage(path, &manifest, &mut entries, &staging);
        let report = staged.and_then(|bytes| self.place(path, &manifest, &staging, bytes));
        let _ = std::fs::remove_dir_all(&staging);
        report
    }

    /// Moves the verified runs of `staging` into the store.
    fn place(
        &self,
        path: &Path,
        manifest: &Manifest,
        staging: &Path,
        bytes: u64,
    ) -> Result<ImportReport> {
        let mut report = ImportReport {
            bytes,
            ..ImportReport::default()
        };
        for name in manifest.runs.keys() {
            let id: RunId = name
                .parse()
                .map_err(|_| archive_error(path, format!("{name} is not a run id")))?;
            let staged = staging.join(name);
            let imported = Store::open(staging)?;
            if !imported.is_done(&id) {
                return Err(archive_error(
                    path,
                    format!("run {id} has no intact result in the archive"),
                ));
            }
            match self.status(&id) {
                RunStatus::Done => {
                    report.kept.push(id);
                    continue;
                }
                RunStatus::Running { .. } => {
                    report.busy.push(id);
                    continue;
                }
                _ => {}
            }
            let target = self.dir(&id);
            if target.exists() {
                // A partial or broken run: the finished one replaces it.
                std::fs::remove_dir_all(&target).map_err(|e| io(&target, e))?;
            }
            std::fs::rename(&staged, &target).map_err(|e| io(&target, e))?;
            report.imported.push(id);
        }
        Ok(report)
    }
}

fn write_archive(path: &Path, manifest: &Manifest, files: &[(String, Vec<u8>)]) -> Result<()> {
    let file = std::fs::File::create(path).map_err(|e| io(path, e))?;
    let mut tar = tar::Builder::new(GzEncoder::new(file, Compression::default()));
    let mut append = |name: &str, bytes: &[u8]| -> Result<()> {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes)
            .map_err(|e| io(path, e))
    };
    let json = serde_json::to_vec_pretty(manifest).map_err(|e| Error::Serialize {
        what: "a manifest",
        reason: e.to_string(),
    })?;
    append(MANIFEST, &json)?;
    for (name, bytes) in files {
        append(name, bytes)?;
    }
    let gz = tar.into_inner().map_err(|e| io(path, e))?;
    let mut file = gz.finish().map_err(|e| io(path, e))?;
    file.flush().map_err(|e| io(path, e))?;
    file.sync_all().map_err(|e| io(path, e))
}

/// Extracts every file of the archive under `staging/<id>/`, each checked against the
/// manifest; returns the bytes written.
fn stage<R: Read>(
    path: &Path,
    manifest: &Manifest,
    entries: &mut tar::Entries<'_, R>,
    staging: &Path,
) -> Result<u64> {
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    let mut bytes = 0;
    for entry in entries {
        let mut entry = entry.map_err(|e| archive_error(path, e.to_string()))?;
        let name = entry
            .path()
            .map_err(|e| archive_error(path, e.to_string()))?
            .to_string_lossy()
            .into_owned();
        let refuse = |why: &str| archive_error(path, format!("{name}: {why}"));
        let rest = name
            .strip_prefix("runs/")
            .ok_or_else(|| refuse("not a file of a run"))?;
        let (id, file) = rest
            .split_once('/')
            .ok_or_else(|| refuse("not a file of a run"))?;
        let (id, expected) = manifest
            .runs
            .get_key_value(id)
            .and_then(|(id, files)| Some((id.as_str(), files.get(file)?)))
            .ok_or_else(|| refuse("not in the manifest"))?;
        if file.split('/').any(|part| part == ".." || part.is_empty()) {
            return Err(refuse("a path outside its run"));
        }
        let mut content = Vec::new();
        entry
            .read_to_end(&mut content)
            .map_err(|e| archive_error(path, format!("{name}: {e}")))?;
        if results::sha256_hex(&content) != *expected {
            return Err(refuse(
                "does not match the checksum in the manifest: the archive is corrupt",
            ));
        }
        let target = staging.join(id).join(file);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
        }
        std::fs::write(&target, &content).map_err(|e| io(&target, e))?;
        bytes += content.len() as u64;
        *seen.entry(id).or_default() += 1;
    }
    for (id, files) in &manifest.runs {
        let got = seen.get(id.as_str()).copied().unwrap_or(0);
        if got != files.len() {
            return Err(archive_error(
                path,
                format!(
                    "run {id} has {got} of the {} files its manifest lists: the archive is \
                     truncated",
                    files.len()
                ),
            ));
        }
    }
    Ok(bytes)
}
