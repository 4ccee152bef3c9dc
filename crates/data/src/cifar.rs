//! CIFAR-10 and CIFAR-100 from their official binary versions. CIFAR-10
//! (`cifar-10-binary.tar.gz`): `data_batch_1.bin` .. `data_batch_5.bin` for training and
//! `test_batch.bin` for testing, each a sequence of 3073-byte records (one label byte, then
//! 1024 red, 1024 green and 1024 blue pixel bytes of a 32x32 image, rows in order). CIFAR-100
//! (`cifar-100-binary.tar.gz`): `train.bin` and `test.bin` of 3074-byte records (a coarse and a
//! fine label byte, then the same pixels); the fine label (100 classes) is the label.

use std::path::{Path, PathBuf};

use crate::download::{self, Checksum, Remote};
use crate::{Dataset, DatasetName, Error, RawImage, Result, Split};

const PIXEL_BYTES: usize = 3 * 32 * 32;

/// How one of the two binary versions lays out its files and records.
#[derive(Debug, Clone, Copy)]
pub struct Format {
    pub dataset: DatasetName,
    /// Bytes before the pixels of a record; the label is the last of them.
    pub label_bytes: usize,
    train_files: &'static [&'static str],
    test_file: &'static str,
    /// The folder the official archive extracts to.
    folder: &'static str,
    archive: &'static str,
    url: &'static str,
    checksum: Checksum<'static>,
}

pub const CIFAR10: Format = Format {
    dataset: DatasetName::Cifar10,
    label_bytes: 1,
    train_files: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ],
    test_file: "test_batch.bin",
    folder: "cifar-10-batches-bin",
    archive: "cifar-10-binary.tar.gz",
    url: "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz",
    checksum: Checksum::Sha256("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
};

pub const CIFAR100: Format = Format {
    dataset: DatasetName::Cifar100,
    label_bytes: 2,
    train_files: &["train.bin"],
    test_file: "test.bin",
    folder: "cifar-100-binary",
    archive: "cifar-100-binary.tar.gz",
    url: "https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz",
    // The MD5 the dataset's page publishes.
    checksum: Checksum::Md5("03b5dce01913d631647c71ecec9e9cb8"),
};

impl Format {
    /// The format of `dataset`'s binary version, if it has one.
    pub fn of(dataset: DatasetName) -> Option<Format> {
        [CIFAR10, CIFAR100]
            .into_iter()
            .find(|f| f.dataset == dataset)
    }

    /// Bytes per record: the label bytes and 3 x 32 x 32 pixels.
    pub fn record_bytes(&self) -> usize {
        self.label_bytes + PIXEL_BYTES
    }

    /// The file names of a split, in order.
    pub fn file_names(&self, split: Split) -> Vec<&'static str> {
        match split {
            Split::Train => self.train_files.to_vec(),
            Split::Test => vec![self.test_file],
        }
    }

    /// The directory holding the `.bin` files: `dir` itself or the folder the official archive
    /// extracts to.
    fn batches_dir(&self, dir: &Path) -> Option<PathBuf> {
        [dir.to_path_buf(), dir.join(self.folder)]
            .into_iter()
            .find(|d| d.join(self.test_file).is_file())
    }
}

/// One split of CIFAR-10 or CIFAR-100 held in memory as records.
#[derive(Debug, Clone)]
pub struct CifarBinary {
    records: Vec<u8>,
    format: Format,
}

/// Loads a split of `format`'s dataset from `dir`, downloading and extracting the official
/// archive first if the files are missing and `allow_download` is set.
pub fn load(format: Format, dir: &Path, split: Split, allow_download: bool) -> Result<CifarBinary> {
    let batches = match format.batches_dir(dir) {
        Some(d) => d,
        None if allow_download => {
            download_and_extract(&format, dir).map_err(|e| missing(&format, dir, Some(e)))?;
            format
                .batches_dir(dir)
                .ok_or_else(|| missing(&format, dir, None))?
        }
        None => return Err(missing(&format, dir, None)),
    };
    let mut records = Vec::new();
    for name in format.file_names(split) {
        let path = batches.join(name);
        if !path.is_file() {
            return Err(missing(&format, dir, None));
        }
        let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
        check_records(&format, &bytes).map_err(|reason| Error::corrupt(&path, reason))?;
        records.extend_from_slice(&bytes);
    }
    Ok(CifarBinary { records, format })
}

fn check_records(format: &Format, bytes: &[u8]) -> std::result::Result<(), String> {
    let size = format.record_bytes();
    if bytes.is_empty() || !bytes.len().is_multiple_of(size) {
        return Err(format!(
            "{} bytes is not a whole number of {size}-byte records",
            bytes.len()
        ));
    }
    let classes = format.dataset.num_classes();
    for (i, record) in bytes.chunks_exact(size).enumerate() {
        let label = record[format.label_bytes - 1] as usize;
        if label >= classes {
            return Err(format!(
                "record {i} has label {label} (expected 0..={})",
                classes - 1
            ));
        }
    }
    Ok(())
}

fn missing(format: &Format, dir: &Path, cause: Option<Error>) -> Error {
    let why = cause
        .map(|e| format!("Downloading failed ({e}). "))
        .unwrap_or_default();
    let name = format.dataset;
    Error::Missing {
        dataset: name.to_string(),
        dir: dir.to_path_buf(),
        expected: name.spec().files.into(),
        hint: format!(
            "{why}Download {}, extract it into that directory, or use a data directory ($REWIND_DATA_DIR) that has `{name}/`.",
            format.url
        ),
    }
}

fn download_and_extract(format: &Format, dir: &Path) -> Result<()> {
    let remote = Remote {
        file: format.archive.to_string(),
        urls: vec![format.url.to_string()],
        checksum: format.checksum,
    };
    download::fetch(&remote, dir)?;
    let archive = dir.join(format.archive);
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
        let out_dir = dir.join(format.folder);
        std::fs::create_dir_all(&out_dir).map_err(|e| Error::io(&out_dir, e))?;
        let out = out_dir.join(&name);
        let tmp = out.with_extension("part");
        entry.unpack(&tmp).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &out).map_err(|e| Error::io(&out, e))?;
    }
    Ok(())
}

impl Dataset<RawImage, Error> for CifarBinary {
    fn get(&self, index: usize) -> Result<RawImage> {
        let size = self.format.record_bytes();
        let record = &self.records[index * size..(index + 1) * size];
        let labels = self.format.label_bytes;
        Ok(RawImage {
            pixels: record[labels..].to_vec(),
            channels: 3,
            height: 32,
            width: 32,
            label: record[labels - 1] as usize,
        })
    }

    fn len(&self) -> usize {
        self.records.len() / self.format.record_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `n` records per file of `format`, in the official layout: CIFAR-10 labels
    /// `i % 10`; CIFAR-100 fine labels `(7 i + f) % 100` after a coarse label `(fine / 5)`.
    fn write_split(format: &Format, dir: &Path, split: Split, n: usize) {
        for (f, name) in format.file_names(split).into_iter().enumerate() {
            let mut bytes = Vec::new();
            for i in 0..n {
                if format.label_bytes == 2 {
                    let fine = ((7 * (f * n + i) + f) % 100) as u8;
                    bytes.extend([fine / 5, fine]);
                } else {
                    bytes.push(((f * n + i) % 10) as u8);
                }
                bytes.extend((0..PIXEL_BYTES).map(|p| ((p + i + f) % 251) as u8));
            }
            std::fs::write(dir.join(name), bytes).expect("write");
        }
    }

    #[test]
    fn reads_the_official_cifar10_binary_format() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("cifar-10-batches-bin");
        std::fs::create_dir_all(&bin).expect("mkdir");
        write_split(&CIFAR10, &bin, Split::Train, 4);
        write_split(&CIFAR10, &bin, Split::Test, 3);
        let train = load(CIFAR10, dir.path(), Split::Train, false).expect("train");
        let test = load(CIFAR10, dir.path(), Split::Test, false).expect("test");
        assert_eq!((train.len(), test.len()), (20, 3));
        let item = train.get(5).expect("item");
        // Record 1 of the second file: label (1 * 4 + 1) % 10, red plane first.
        assert_eq!(item.label, 5);
        assert_eq!((item.channels, item.height, item.width), (3, 32, 32));
        assert_eq!(item.pixels.len(), PIXEL_BYTES);
        assert_eq!(item.pixels[0], 2);
        assert_eq!(item.pixels[1024], ((1024 + 1 + 1) % 251) as u8);
    }

    #[test]
    fn reads_the_official_cifar100_binary_format_with_fine_labels() {
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = dir.path().join("cifar-100-binary");
        std::fs::create_dir_all(&bin).expect("mkdir");
        write_split(&CIFAR100, &bin, Split::Train, 30);
        write_split(&CIFAR100, &bin, Split::Test, 3);
        let train = load(CIFAR100, dir.path(), Split::Train, false).expect("train");
        let test = load(CIFAR100, dir.path(), Split::Test, false).expect("test");
        assert_eq!((train.len(), test.len()), (30, 3));
        let item = train.get(17).expect("item");
        // The fine label, not the coarse one before it; pixels start after both.
        assert_eq!(item.label, 7 * 17 % 100);
        assert_eq!(item.pixels.len(), PIXEL_BYTES);
        assert_eq!(item.pixels[0], 17);
        assert_eq!(
            item.pixels[PIXEL_BYTES - 1],
            ((PIXEL_BYTES - 1 + 17) % 251) as u8
        );
        let labels: std::collections::HashSet<usize> =
            (0..30).map(|i| train.get(i).expect("item").label).collect();
        assert!(labels.iter().any(|&l| l >= 10), "fine labels reach past 10");
        // CIFAR-10's files are not CIFAR-100's: the loader names what it expects.
        let err = load(CIFAR100, &dir.path().join("none"), Split::Test, false).unwrap_err();
        assert!(err.to_string().contains("train.bin and test.bin"), "{err}");
    }

    #[test]
    fn truncated_or_missing_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = load(CIFAR10, dir.path(), Split::Test, false).unwrap_err();
        assert!(err.to_string().contains("test_batch.bin"), "{err}");
        write_split(&CIFAR10, dir.path(), Split::Test, 2);
        let path = dir.path().join("test_batch.bin");
        let bytes = std::fs::read(&path).expect("read");
        std::fs::write(&path, &bytes[..bytes.len() - 7]).expect("write");
        let err = load(CIFAR10, dir.path(), Split::Test, false).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        let mut bad = bytes.clone();
        bad[0] = 11;
        std::fs::write(&path, &bad).expect("write");
        assert!(
            load(CIFAR10, dir.path(), Split::Test, false)
                .unwrap_err()
                .to_string()
                .contains("label 11")
        );
        // A CIFAR-100 record whose fine label is out of range; its coarse byte is not checked
        // as the label.
        write_split(&CIFAR100, dir.path(), Split::Test, 2);
        let path = dir.path().join("test.bin");
        let mut bytes = std::fs::read(&path).expect("read");
        bytes[0] = 250;
        std::fs::write(&path, &bytes).expect("write");
        load(CIFAR100, dir.path(), Split::Test, false).expect("coarse label is not the label");
        bytes[1] = 100;
        std::fs::write(&path, &bytes).expect("write");
        let err = load(CIFAR100, dir.path(), Split::Test, false).unwrap_err();
        assert!(
            err.to_string().contains("label 100 (expected 0..=99)"),
            "{err}"
        );
    }
}
