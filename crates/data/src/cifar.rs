//! CIFAR-10 from the official binary version (`cifar-10-binary.tar.gz`): `data_batch_1.bin`
//! .. `data_batch_5.bin` for training and `test_batch.bin` for testing, each a sequence of
//! 3073-byte records (one label byte, then 1024 red, 1024 green and 1024 blue pixel bytes of a
//! 32x32 image).

use std::path::{Path, PathBuf};

use crate::download::{self, Checksum, Remote};
use crate::{Dataset, Error, RawImage, Result, Split};

/// Bytes per record: 1 label + 3 x 32 x 32 pixels.
pub const RECORD_BYTES: usize = 1 + 3 * 32 * 32;
const ARCHIVE: &str = "cifar-10-binary.tar.gz";
const URL: &str = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz";
const ARCHIVE_SHA256: &str = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd";

/// The file names of a split, in order.
pub fn file_names(split: Split) -> Vec<String> {
    match split {
        Split::Train => (1..=5).map(|i| format!("data_batch_{i}.bin")).collect(),
        Split::Test => vec!["test_batch.bin".to_string()],
    }
}

/// One CIFAR-10 split held in memory as records.
#[derive(Debug, Clone)]
pub struct Cifar10 {
    records: Vec<u8>,
}

/// The directory holding the `.bin` files: `dir` itself or `dir/cifar-10-batches-bin` (the
/// layout the official archive extracts to).
fn batches_dir(dir: &Path) -> Option<PathBuf> {
    [dir.to_path_buf(), dir.join("cifar-10-batches-bin")]
        .into_iter()
        .find(|d| d.join("test_batch.bin").is_file())
}

/// Loads a split from `dir`, downloading and extracting the official archive first if the
/// files are missing and `allow_download` is set.
pub fn load(dir: &Path, split: Split, allow_download: bool) -> Result<Cifar10> {
    let batches = match batches_dir(dir) {
        Some(d) => d,
        None if allow_download => {
            download_and_extract(dir).map_err(|e| missing(dir, Some(e)))?;
            batches_dir(dir).ok_or_else(|| missing(dir, None))?
        }
        None => return Err(missing(dir, None)),
    };
    let mut records = Vec::new();
    for name in file_names(split) {
        let path = batches.join(&name);
        if !path.is_file() {
            return Err(missing(dir, None));
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        check_records(&bytes).map_err(|reason| Error::corrupt(&path, reason))?;
        records.extend_from_slice(&bytes);
    }
    Ok(Cifar10 { records })
}

fn check_records(bytes: &[u8]) -> std::result::Result<(), String> {
    if bytes.is_empty() || !bytes.len().is_multiple_of(RECORD_BYTES) {
        return Err(format!(
            "{} bytes is not a whole number of {RECORD_BYTES}-byte records",
            bytes.len()
        ));
    }
    for (i, record) in bytes.chunks_exact(RECORD_BYTES).enumerate() {
        if record[0] > 9 {
            return Err(format!(
                "record {i} has label {} (expected 0..=9)",
                record[0]
            ));
        }
    }
    Ok(())
}

fn missing(dir: &Path, cause: Option<Error>) -> Error {
    let why = cause
        .map(|e| format!("Downloading failed ({e}). "))
        .unwrap_or_default();
    Error::Missing {
        dataset: "cifar10".into(),
        dir: dir.to_path_buf(),
        expected: "data_batch_1.bin .. data_batch_5.bin and test_batch.bin (the binary version, cifar-10-binary.tar.gz, extracted)".into(),
        hint: format!(
            "{why}Download {URL}, extract it into that directory, or use a data directory ($REWIND_DATA_DIR) that has `cifar10/`."
        ),
    }
}

fn download_and_extract(dir: &Path) -> Result<()> {
    let remote = Remote {
        file: ARCHIVE.to_string(),
        urls: vec![URL.to_string()],
        checksum: Checksum::Sha256(ARCHIVE_SHA256),
    };
    download::fetch(&remote, dir)?;
    let archive = dir.join(ARCHIVE);
    let file = std::fs::File::open(&archive).map_err(|e| Error::io(&archive, e))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let entries = tar
        .entries()
        .map_err(|e| Error::corrupt(&archive, e.to_string()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::corrupt(&archive, e.to_string()))?;
        let path = entry
            .path()
            .map_err(|e| Error::corrupt(&archive, e.to_string()))?;
        // Only the plain `.bin` members, written under their file name: no path from the
        // archive is trusted.
        let Some(name) = path.file_name().map(|n| n.to_owned()) else {
            continue;
        };
        if !name.to_string_lossy().ends_with(".bin") {
            continue;
        }
        let out_dir = dir.join("cifar-10-batches-bin");
        std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
        let out = out_dir.join(&name);
        let tmp = out.with_extension("part");
        entry.unpack(&tmp).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &out).map_err(|e| Error::io(&out, e))?;
    }
    Ok(())
}

impl Dataset<RawImage, Error> for Cifar10 {
    fn get(&self, index: usize) -> Result<RawImage> {
        let record = &self.records[index * RECORD_BYTES..(index + 1) * RECORD_BYTES];
        Ok(RawImage {
            pixels: record[1..].to_vec(),
            channels: 3,
            height: 32,
            width: 32,
            label: record[0] as usize,
        })
    }

    fn len(&self) -> usize {
        self.records.len() / RECORD_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `n` records per file, in the official format, with labels `i % 10`.
    fn write_split(dir: &Path, split: Split, n: usize) {
        for (f, name) in file_names(split).into_iter().enumerate() {
            let mut bytes = Vec::new();
            for i in 0..n {
                bytes.push(((f * n + i) % 10) as u8);
                bytes.extend((0..3072).map(|p| ((p + i + f) % 251) as u8));
            }
            std::fs::write(dir.join(name), bytes).expect("write");
        }
    }

    #[test]
    fn reads_official_binary_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        write_split(&bin, Split::Train, 4);
        write_split(&bin, Split::Test, 3);
        let train = load(dir.path(), Split::Train, false).expect("train");
        let test = load(dir.path(), Split::Test, false).expect("test");
        assert_eq!((train.len(), test.len()), (20, 3));
        let item = train.get(5).expect("item");
        // Record 1 of the second file: label (1 * 4 + 1) % 10, red plane first.
        assert_eq!(item.label, 5);
        assert_eq!((item.channels, item.height, item.width), (3, 32, 32));
        assert_eq!(item.pixels[0], 2);
        assert_eq!(item.pixels[1024], ((1024 + 1 + 1) % 251) as u8);
    }

    #[test]
    fn truncated_or_missing_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = load(dir.path(), Split::Test, false).unwrap_err();
        assert!(err.to_string().contains("test_batch.bin"), "{err}");
        write_split(dir.path(), Split::Test, 2);
        let path = dir.path().join("test_batch.bin");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 7]).expect("write");
        let err = load(dir.path(), Split::Test, false).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        let mut bad = bytes.clone();
        bad[0] = 11;
        std::fs::write(&path, &bad).expect("write");
        assert!(
            load(dir.path(), Split::Test, false)
                .unwrap_err()
                .to_string()
                .contains("label 11")
        );
    }
}
