//! SVHN (format 2, cropped digits) from its official MATLAB files `train_32x32.mat` and
//! `test_32x32.mat`: `X` a 32 x 32 x 3 x N uint8 array (row, column, channel, image; stored
//! column-major, so the row varies fastest) and `y` an N x 1 array of labels 1..10, where 10
//! stands for the digit 0 (read as label 0, as torchvision does). The extra split is not read.

use std::path::Path;

use crate::download::{self, Checksum, Remote};
use crate::{Dataset, DatasetName, Error, RawImage, Result, Split};

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;
const PIXEL_BYTES: usize = 3 * PLANE;
const URL: &str = "http://ufldl.stanford.edu/housenumbers/";

/// The file of a split and the MD5 the dataset's distributors use for it.
fn file(split: Split) -> (&'static str, &'static str) {
    match split {
        Split::Train => ("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
        Split::Test => ("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
    }
}

/// One SVHN split held in memory, images channel-major (`[C, H, W]`) as every source yields.
#[derive(Debug, Clone)]
pub struct Svhn {
    pixels: Vec<u8>,
    labels: Vec<u8>,
}

/// Loads a split from `dir`, downloading the official file first if it is missing and
/// `allow_download` is set.
pub fn load(dir: &Path, split: Split, allow_download: bool) -> Result<Svhn> {
    let (name, md5) = file(split);
    let path = dir.join(name);
    if !path.is_file() {
        if !allow_download {
            return Err(missing(dir, None));
        }
        let remote = Remote {
            file: name.to_string(),
            urls: vec![format!("{URL}{name}")],
            checksum: Checksum::Md5(md5),
        };
        download::fetch(&remote, dir).map_err(|e| missing(dir, Some(e)))?;
    }
    read(&path)
}

/// Reads one split's `.mat` file.
pub fn read(path: &Path) -> Result<Svhn> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mat = matfile::MatFile::parse(std::io::BufReader::new(file))
        .map_err(|e| Error::corrupt(path, format!("not a readable MATLAB 5 file ({e})")))?;
    from_arrays(&mat).map_err(|reason| Error::corrupt(path, reason))
}

fn from_arrays(mat: &matfile::MatFile) -> std::result::Result<Svhn, String> {
    let array = |name: &str| {
        mat.find_by_name(name)
            .ok_or_else(|| format!("it has no array `{name}`"))
    };
    let (x, y) = (array("X")?, array("y")?);
    let n = match x.size().as_slice() {
        [SIDE, SIDE, 3, n] => *n,
        other => return Err(format!("`X` is {other:?}, expected [32, 32, 3, N]")),
    };
    if y.size().iter().product::<usize>() != n || y.size().iter().filter(|&&d| d != 1).count() > 1 {
        return Err(format!("`y` is {:?}, expected [{n}, 1]", y.size()));
    }
    let matfile::NumericData::UInt8 {
        real: column_major, ..
    } = x.data()
    else {
        return Err("`X` is not uint8".into());
    };
    let labels = labels(y.data())?;
    // (row, column, channel, image), row fastest -> per image [channel][row][column].
    let mut pixels = vec![0u8; n * PIXEL_BYTES];
    for (image, out) in pixels.chunks_exact_mut(PIXEL_BYTES).enumerate() {
        let input = &column_major[image * PIXEL_BYTES..(image + 1) * PIXEL_BYTES];
        for c in 0..3 {
            for col in 0..SIDE {
                for row in 0..SIDE {
                    out[c * PLANE + row * SIDE + col] = input[c * PLANE + col * SIDE + row];
                }
            }
        }
    }
    Ok(Svhn { pixels, labels })
}

/// Labels 1..=10 as 0..=9 (10 is the digit 0), whatever numeric type the file stores them in.
fn labels(data: &matfile::NumericData) -> std::result::Result<Vec<u8>, String> {
    use matfile::NumericData as D;
    let values: Vec<f64> = match data {
        D::Double { real, .. } => real.clone(),
        D::Single { real, .. } => real.iter().map(|&v| v as f64).collect(),
        D::UInt8 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        D::Int32 { real, .. } => real.iter().map(|&v| v as f64).collect(),
        _ => return Err("`y` is not a double, single, uint8 or int32 array".into()),
    };
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            if v.fract() == 0.0 && (1.0..=10.0).contains(&v) {
                Ok((v as u8) % 10)
            } else {
                Err(format!("label {i} is {v} (expected 1..=10)"))
            }
        })
        .collect()
}

fn missing(dir: &Path, cause: Option<Error>) -> Error {
    let why = cause
        .map(|e| format!("Downloading failed ({e}). "))
        .unwrap_or_default();
    Error::Missing {
        dataset: DatasetName::Svhn.to_string(),
        dir: dir.to_path_buf(),
        expected: DatasetName::Svhn.spec().files.into(),
        hint: format!(
            "{why}Download them from {URL}, put them in that directory, or use a data directory ($REWIND_DATA_DIR) that has `svhn/`."
        ),
    }
}

impl Dataset<RawImage, Error> for Svhn {
    fn get(&self, index: usize) -> Result<RawImage> {
        let label = *self.labels.get(index).ok_or_else(|| {
            Error::Invalid(format!("SVHN index {index} of {}", self.labels.len()))
        })?;
        Ok(RawImage {
            pixels: self.pixels[index * PIXEL_BYTES..(index + 1) * PIXEL_BYTES].to_vec(),
            channels: 3,
            height: SIDE,
            width: SIDE,
            label: label as usize,
        })
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files written by scipy's `savemat` (`fixtures/svhn/make_fixtures.py`): pixel
    /// `(row r, column c, channel ch)` of image `i` is `(3 r + 5 c + 70 ch + 11 (i + offset)) % 256`
    /// and the label `(i + offset) % 10 + 1`; offset 5 in the (compressed) training file, 12 in
    /// the (uncompressed) test file.
    fn fixtures() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/svhn")
    }

    fn expected_pixel(row: usize, col: usize, ch: usize, image: usize) -> u8 {
        ((3 * row + 5 * col + 70 * ch + 11 * image) % 256) as u8
    }

    #[test]
    fn reads_the_official_format_compressed_and_not() {
        for (split, n, offset) in [(Split::Train, 7, 5), (Split::Test, 3, 12)] {
            let data = load(&fixtures(), split, false).expect("loads");
            assert_eq!(data.len(), n);
            for i in 0..n {
                let item = data.get(i).expect("item");
                assert_eq!((item.channels, item.height, item.width), (3, 32, 32));
                // 10 is the digit 0.
                assert_eq!(item.label, ((i + offset) % 10 + 1) % 10, "{split:?} {i}");
                for (ch, row, col) in [(0, 0, 0), (1, 2, 1), (2, 31, 0), (0, 3, 17), (2, 30, 31)] {
                    assert_eq!(
                        item.pixels[ch * PLANE + row * SIDE + col],
                        expected_pixel(row, col, ch, i + offset),
                        "{split:?} image {i} channel {ch} row {row} column {col}"
                    );
                }
            }
        }
    }

    #[test]
    fn missing_truncated_and_foreign_files_are_clear_errors() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = load(dir.path(), Split::Test, false).unwrap_err();
        assert!(err.to_string().contains("test_32x32.mat"), "{err}");
        let bytes = std::fs::read(fixtures().join("train_32x32.mat")).expect("read");
        let path = dir.path().join("train_32x32.mat");
        std::fs::write(&path, &bytes[..bytes.len() - 100]).expect("write");
        let err = load(dir.path(), Split::Train, false).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        std::fs::write(&path, b"not a MATLAB file").expect("write");
        let err = load(dir.path(), Split::Train, false).unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        let err = read(&fixtures().join("bad_label.mat")).unwrap_err();
        assert!(err.to_string().contains("label 1 is 11"), "{err}");
        let err = read(&fixtures().join("gray.mat")).unwrap_err();
        assert!(err.to_string().contains("expected [32, 32, 3, N]"), "{err}");
    }
}
