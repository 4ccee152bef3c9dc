//! MNIST and Fashion-MNIST: 28x28 grey-scale digits / clothes, 60,000 train and 10,000 test
//! images, read from the official IDX files (`.gz` or uncompressed).

use std::path::Path;

use crate::download::{self, Checksum, Remote};
use crate::idx;
use crate::{Dataset, DatasetName, Error, RawImage, Result, Split};

const MNIST_URLS: [&str; 2] = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];
const FASHION_URLS: [&str; 1] = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"];

/// Checksums of the official gzip files: (train images, train labels, test images, test
/// labels). Fashion-MNIST publishes MD5 only.
const MNIST_SUMS: [Checksum<'static>; 4] = [
    Checksum::Sha256("440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609"),
    Checksum::Sha256("3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c"),
    Checksum::Sha256("8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6"),
    Checksum::Sha256("f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6"),
];
const FASHION_SUMS: [Checksum<'static>; 4] = [
    Checksum::Md5("8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
    Checksum::Md5("25c81989df183df01b3e8a0aad5dffbe"),
    Checksum::Md5("bef4ecab320f06d8554ea6380940ec79"),
    Checksum::Md5("bb300cfdad3c16e7a12a480ee83cd310"),
];

/// An in-memory MNIST-format split.
#[derive(Debug, Clone)]
pub struct IdxImages {
    images: Vec<u8>,
    labels: Vec<u8>,
    height: usize,
    width: usize,
}

fn file_names(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
        Split::Test => ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
    }
}

/// Finds `name.gz` or `name` in `dir`.
fn find(dir: &Path, name: &str) -> Option<std::path::PathBuf> {
    [format!("{name}.gz"), name.to_string()]
        .into_iter()
        .map(|f| dir.join(f))
        .find(|p| p.is_file())
}

/// Loads one split from `dir`, downloading the official files first if they are missing and
/// `allow_download` is set. Files that have a `SHA256SUMS` entry beside them are verified.
pub fn load(
    name: DatasetName,
    dir: &Path,
    split: Split,
    allow_download: bool,
) -> Result<IdxImages> {
    let (images_name, labels_name) = file_names(split);
    let (urls, sums): (&[&str], _) = match name {
        DatasetName::Mnist => (&MNIST_URLS, MNIST_SUMS),
        DatasetName::FashionMnist => (&FASHION_URLS, FASHION_SUMS),
        other => return Err(Error::Invalid(format!("{other} is not an IDX dataset"))),
    };
    let offset = if split == Split::Train { 0 } else { 2 };
    let mut paths = Vec::new();
    for (i, base) in [images_name, labels_name].into_iter().enumerate() {
        let path = match find(dir, base) {
            Some(p) => p,
            None if allow_download => {
                let file = format!("{base}.gz");
                let remote = Remote {
                    urls: urls.iter().map(|u| format!("{u}{file}")).collect(),
                    file,
                    checksum: sums[offset + i],
                };
                download::fetch(&remote, dir).map_err(|e| missing(name, dir, Some(e)))?;
                dir.join(&remote.file)
            }
            None => return Err(missing(name, dir, None)),
        };
        verify_against_sums(&path)?;
        paths.push(path);
    }
    let images = idx::read(&paths[0])?;
    let labels = idx::read(&paths[1])?;
    from_idx(images, labels).map_err(|reason| Error::corrupt(&paths[0], reason))
}

fn missing(name: DatasetName, dir: &Path, cause: Option<Error>) -> Error {
    let hint = match cause {
        Some(e) => format!(
            "Downloading them failed ({e}); put the four files there by hand (gzip or raw), or use a data directory ($REWIND_DATA_DIR) that has `{name}/`."
        ),
        None => format!(
            "Put them there (gzip or raw), use a data directory ($REWIND_DATA_DIR) that has `{name}/`, or allow downloading."
        ),
    };
    Error::Missing {
        dataset: name.to_string(),
        dir: dir.to_path_buf(),
        expected: "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz".into(),
        hint,
    }
}

/// Verifies `path` against a `SHA256SUMS` file in the same directory, if there is one that
/// lists it.
fn verify_against_sums(path: &Path) -> Result<()> {
    let Some(dir) = path.parent() else {
        return Ok(());
    };
    let sums = dir.join("SHA256SUMS");
    let Ok(text) = std::fs::read_to_string(&sums) else {
        return Ok(());
    };
    let Some(file) = path.file_name().and_then(|f| f.to_str()) else {
        return Ok(());
    };
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        if let (Some(sum), Some(name)) = (parts.next(), parts.next())
            && name.trim_start_matches('*') == file
        {
            return download::verify(path, sum);
        }
    }
    Ok(())
}

/// Builds a split from parsed image and label arrays, checking that they agree.
pub fn from_idx(
    images: idx::IdxArray,
    labels: idx::IdxArray,
) -> std::result::Result<IdxImages, String> {
    if images.dims.len() != 3 {
        return Err(format!(
            "images have {} dimensions, expected 3",
            images.dims.len()
        ));
    }
    if labels.dims.len() != 1 {
        return Err(format!(
            "labels have {} dimensions, expected 1",
            labels.dims.len()
        ));
    }
    if images.dims[0] != labels.dims[0] {
        return Err(format!(
            "{} images but {} labels",
            images.dims[0], labels.dims[0]
        ));
    }
    if let Some(bad) = labels.data.iter().find(|&&l| l > 9) {
        return Err(format!("label {bad} is out of range 0..=9"));
    }
    Ok(IdxImages {
        height: images.dims[1],
        width: images.dims[2],
        images: images.data,
        labels: labels.data,
    })
}

impl Dataset<RawImage, Error> for IdxImages {
    fn get(&self, index: usize) -> Result<RawImage> {
        let size = self.height * self.width;
        let pixels = self.images[index * size..(index + 1) * size].to_vec();
        Ok(RawImage {
            pixels,
            channels: 1,
            height: self.height,
            width: self.width,
            label: self.labels[index] as usize,
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn write_gz(path: &Path, bytes: &[u8]) {
        let file = std::fs::File::create(path).expect("create");
        let mut enc = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
        enc.write_all(bytes).expect("write");
        enc.finish().expect("finish");
    }

    #[test]
    fn reads_gzip_and_raw_and_reports_problems() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pixels: Vec<u8> = (0..3 * 4 * 4).map(|i| i as u8).collect();
        write_gz(
            &dir.path().join("t10k-images-idx3-ubyte.gz"),
            &idx::encode(&[3, 4, 4], &pixels),
        );
        std::fs::write(
            dir.path().join("t10k-labels-idx1-ubyte"),
            idx::encode(&[3], &[7, 0, 9]),
        )
        .expect("write");
        let ds = load(DatasetName::Mnist, dir.path(), Split::Test, false).expect("loads");
        assert_eq!(ds.len(), 3);
        let item = ds.get(1).expect("item");
        assert_eq!(
            (item.label, item.height, item.width, item.channels),
            (0, 4, 4, 1)
        );
        assert_eq!(item.pixels, pixels[16..32].to_vec());

        // Missing train split: one message naming the files and what to do.
        let err = load(DatasetName::Mnist, dir.path(), Split::Train, false).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("train-images-idx3-ubyte.gz") && msg.contains("data directory"),
            "{msg}"
        );

        // Truncated gzip.
        let gz = std::fs::read(dir.path().join("t10k-images-idx3-ubyte.gz")).expect("read");
        std::fs::write(
            dir.path().join("t10k-images-idx3-ubyte.gz"),
            &gz[..gz.len() / 2],
        )
        .expect("write");
        let err = load(DatasetName::Mnist, dir.path(), Split::Test, false).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");

        // Checksum listed in SHA256SUMS but wrong.
        write_gz(
            &dir.path().join("t10k-images-idx3-ubyte.gz"),
            &idx::encode(&[3, 4, 4], &pixels),
        );
        std::fs::write(
            dir.path().join("SHA256SUMS"),
            format!("{}  t10k-images-idx3-ubyte.gz\n", "0".repeat(64)),
        )
        .expect("write");
        let err = load(DatasetName::Mnist, dir.path(), Split::Test, false).unwrap_err();
        assert!(matches!(err, Error::Checksum { .. }), "{err}");
    }

    #[test]
    fn label_count_mismatch_is_an_error() {
        let images = idx::IdxArray {
            dims: vec![2, 1, 1],
            data: vec![0, 1],
        };
        let labels = idx::IdxArray {
            dims: vec![3],
            data: vec![0, 1, 2],
        };
        assert!(
            from_idx(images, labels)
                .unwrap_err()
                .contains("2 images but 3 labels")
        );
    }
}
