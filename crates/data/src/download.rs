//! Downloading official dataset files with checksum verification and a progress bar.

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// The published checksum of an official file (Fashion-MNIST publishes only MD5).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Checksum<'a> {
    Sha256(&'a str),
    Md5(&'a str),
}

/// A file with its official locations and checksum.
pub(crate) struct Remote {
    pub file: String,
    pub urls: Vec<String>,
    pub checksum: Checksum<'static>,
}

pub(crate) fn sha256_file(path: &Path) -> Result<String> {
    digest_file::<Sha256>(path)
}

fn digest_file<D: Digest>(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut hasher = D::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(|e| Error::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `path` against the expected SHA-256.
pub(crate) fn verify(path: &Path, sha256: &str) -> Result<()> {
    verify_checksum(path, Checksum::Sha256(sha256))
}

pub(crate) fn verify_checksum(path: &Path, checksum: Checksum<'_>) -> Result<()> {
    let (found, expected) = match checksum {
        Checksum::Sha256(e) => (sha256_file(path)?, e),
        Checksum::Md5(e) => (digest_file::<md5::Md5>(path)?, e),
    };
    if found != expected.to_ascii_lowercase() {
        return Err(Error::Checksum {
            path: path.to_path_buf(),
            expected: format!("{checksum:?}"),
            found,
        });
    }
    Ok(())
}

/// Downloads `remote` into `dir` (through a temporary file renamed into place once its
/// checksum is verified), trying each mirror in turn.
pub(crate) fn fetch(remote: &Remote, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let target = dir.join(&remote.file);
    let mut last_error = None;
    for url in &remote.urls {
        match fetch_one(url, &target, remote.checksum) {
            Ok(()) => return Ok(()),
            Err(e) => {
                tracing::warn!("{e}");
                last_error = Some(e);
            }
        }
    }
    Err(last_error.unwrap_or_else(|| Error::Invalid(format!("no URL for {}", remote.file))))
}

fn fetch_one(url: &str, target: &Path, checksum: Checksum<'_>) -> Result<()> {
    let fail = |reason: String| Error::Download {
        url: url.to_string(),
        reason,
    };
    tracing::info!("downloading {url}");
    let response = ureq::get(url)
        .timeout(std::time::Duration::from_secs(60))
        .call()
        .map_err(|e| fail(e.to_string()))?;
    let total = response
        .header("Content-Length")
        .and_then(|v| v.parse::<u64>().ok());
    let bar = match total {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({bytes_per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_message(
        target
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default(),
    );
    let tmp = target.with_extension("part");
    let mut out = std::fs::File::create(&tmp).map_err(|e| Error::io(&tmp, e))?;
    let mut reader = response.into_reader();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = reader.read(&mut buf).map_err(|e| fail(e.to_string()))?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(|e| Error::io(&tmp, e))?;
        bar.inc(n as u64);
    }
    out.sync_all().map_err(|e| Error::io(&tmp, e))?;
    bar.finish_and_clear();
    if let Err(e) = verify_checksum(&tmp, checksum) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, target).map_err(|e| Error::io(target, e))
}
