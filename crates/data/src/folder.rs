//! Your own dataset: a folder of images beside the built-in datasets, described by a
//! `dataset.toml`, registered at start ([`register_all`]) and named like any built-in dataset
//! from then on (`--dataset digits`, `--substitute mnist=digits`).
//!
//! ```text
//! <data dir>/<id>/dataset.toml     channels, normalisation, optional title and augmentation
//! <data dir>/<id>/train/<class>/*.png (or .jpg, .jpeg)
//! <data dir>/<id>/test/<class>/*.png
//! ```
//!
//! Classes are the sub-folders of `train/` in sorted order (as torchvision's `ImageFolder`);
//! `test/` has the same class folders. Every image has the same size; all are decoded once,
//! when the dataset is loaded, to grey or RGB as `channels` says.

use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde::Deserialize;

use results::DatasetRecord;

use crate::{Augmentation, Dataset, DatasetName, Error, RawImage, Result, Split};

/// The file that makes a folder of the data directory a dataset.
pub const SPEC_FILE: &str = "dataset.toml";

/// What `dataset.toml` says; the rest (classes, sizes, image side) is read from the folders.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FolderToml {
    /// How to write its name in figures and reports (default: the folder name).
    title: Option<String>,
    /// 1 (images read as grey) or 3 (RGB).
    channels: usize,
    /// Per-channel mean and standard deviation of pixel values in `[0, 1]`.
    mean: Vec<f32>,
    std: Vec<f32>,
    /// Training augmentation of recipes that take the dataset's own (default: none).
    #[serde(default = "no_augmentation")]
    augmentation: Augmentation,
}

fn no_augmentation() -> Augmentation {
    Augmentation::None
}

fn split_dir(dir: &Path, split: Split) -> PathBuf {
    dir.join(match split {
        Split::Train => "train",
        Split::Test => "test",
    })
}

/// Registers every folder of `data_dir` that holds a `dataset.toml`; a folder whose
/// description or files are wrong is skipped with a warning naming what to fix (the commands
/// that do not use it still run).
pub fn register_all(data_dir: &Path) -> Vec<DatasetName> {
    let Ok(entries) = std::fs::read_dir(data_dir) else {
        return vec![];
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join(SPEC_FILE).is_file())
        .collect();
    dirs.sort();
    dirs.iter()
        .filter_map(|dir| match register(dir) {
            Ok(name) => Some(name),
            Err(e) => {
                tracing::warn!(
                    "{} is not usable as a dataset: {e}",
                    dir.join(SPEC_FILE).display()
                );
                None
            }
        })
        .collect()
}

/// Registers the dataset in `dir` (its `dataset.toml` and class folders) under the folder's
/// name.
pub fn register(dir: &Path) -> Result<DatasetName> {
    let spec_path = dir.join(SPEC_FILE);
    let text = std::fs::read_to_string(&spec_path).map_err(|e| Error::io(&spec_path, e))?;
    let toml: FolderToml = toml::from_str(&text).map_err(|e| Error::Invalid(e.to_string()))?;
    if !matches!(toml.channels, 1 | 3) {
        return Err(Error::Invalid(format!(
            "channels = {}; use 1 (grey) or 3 (RGB)",
            toml.channels
        )));
    }
    let id = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let train = list(dir, Split::Train)?;
    let test = list(dir, Split::Test)?;
    if train.classes != test.classes {
        return Err(Error::Invalid(format!(
            "train/ has the classes {:?} but test/ has {:?}; both need the same class folders",
            train.classes, test.classes
        )));
    }
    let (first, _) = &train.files[0];
    let (w, h) = image::image_dimensions(first).map_err(|e| Error::Decode {
        path: first.clone(),
        reason: e.to_string(),
    })?;
    let mut record = DatasetRecord {
        title: toml.title.unwrap_or_else(|| id.clone()),
        id,
        classes: train.classes.len(),
        channels: toml.channels,
        stored_side: Some(w.max(h) as usize),
        crop_side: None,
        train_examples: train.files.len(),
        test_examples: test.files.len(),
        mean: toml.mean,
        std: toml.std,
        augmentation: toml.augmentation,
        files: "dataset.toml, train/<class>/*.png and test/<class>/*.png (or .jpg)".into(),
        fingerprint: String::new(),
    };
    record.fingerprint = fingerprint(dir, &record, &[&train, &test])?;
    record.register().map_err(Error::Name)
}

/// The first 16 hex digits of the SHA-256 of the description and of every file's path (under
/// the dataset's folder) and size: adding, removing, moving (relabelling) or resizing an image,
/// or editing `dataset.toml`, changes it; rewriting an image in place with the same size does
/// not (reading every image on every start would cost too much).
fn fingerprint(dir: &Path, record: &DatasetRecord, splits: &[&Listing]) -> Result<String> {
    let mut text = serde_json::to_string(record).map_err(|e| Error::Invalid(e.to_string()))?;
    for split in splits {
        for (path, _) in &split.files {
            let size = std::fs::metadata(path)
                .map_err(|e| Error::io(path, e))?
                .len();
            let relative = path.strip_prefix(dir).unwrap_or(path);
            text.push_str(&format!("\n{} {size}", relative.display()));
        }
    }
    Ok(results::sha256_hex(text.as_bytes())[..16].to_string())
}

/// The image files of a split and their class indices.
struct Listing {
    classes: Vec<String>,
    files: Vec<(PathBuf, usize)>,
}

fn list(dir: &Path, split: Split) -> Result<Listing> {
    let root = split_dir(dir, split);
    let sub = root.file_name().map(|n| n.to_string_lossy().into_owned());
    let missing = || Error::Missing {
        dataset: dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        dir: dir.to_path_buf(),
        expected: format!(
            "{}/<class>/*.png (or .jpg)",
            sub.clone().unwrap_or_default()
        ),
        hint: "Put one folder per class there, the same class folders in train/ and test/.".into(),
    };
    let read = |d: &Path| -> Result<Vec<PathBuf>> {
        let mut paths = std::fs::read_dir(d)
            .map_err(|e| Error::io(d, e))?
            .map(|e| e.map(|e| e.path()).map_err(|e| Error::io(d, e)))
            .collect::<Result<Vec<_>>>()?;
        paths.sort();
        Ok(paths)
    };
    if !root.is_dir() {
        return Err(missing());
    }
    // Hidden folders (`.ipynb_checkpoints`, ...) are not classes.
    let classes: Vec<String> = read(&root)?
        .into_iter()
        .filter(|p| p.is_dir())
        .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
        .filter(|n| !n.starts_with('.'))
        .collect();
    let mut files = Vec::new();
    for (label, class) in classes.iter().enumerate() {
        let images = read(&root.join(class))?.into_iter().filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        });
        files.extend(images.map(|p| (p, label)));
    }
    if files.is_empty() {
        return Err(missing());
    }
    Ok(Listing { classes, files })
}

/// One split of a folder dataset, decoded into memory.
#[derive(Debug, Clone)]
pub struct FolderImages {
    images: Vec<RawImage>,
}

/// Loads a split of `name` (a registered folder dataset) from `dir`, decoding every image.
pub fn load(name: DatasetName, dir: &Path, split: Split) -> Result<FolderImages> {
    let spec = name.spec();
    let listing = list(dir, split)?;
    let images = listing
        .files
        .par_iter()
        .map(|(path, label)| decode(path, *label, spec.channels))
        .collect::<Result<Vec<_>>>()?;
    let (h, w) = (images[0].height, images[0].width);
    let side = spec.stored_side.unwrap_or(h.max(w));
    if let Some((i, odd)) = images
        .iter()
        .enumerate()
        .find(|(_, im)| (im.height, im.width) != (h, w) || im.height.max(im.width) != side)
    {
        return Err(Error::corrupt(
            &listing.files[i].0,
            format!(
                "it is {}x{} but the first image of the split is {w}x{h} and the training \
                 split's side {side}; every image of a dataset has one size",
                odd.width, odd.height
            ),
        ));
    }
    Ok(FolderImages { images })
}

fn decode(path: &Path, label: usize, channels: usize) -> Result<RawImage> {
    let decoded = image::open(path).map_err(|e| Error::Decode {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    let (width, height) = (decoded.width() as usize, decoded.height() as usize);
    let pixels = if channels == 1 {
        decoded.to_luma8().into_raw()
    } else {
        let hwc = decoded.to_rgb8().into_raw();
        let plane = width * height;
        let mut chw = vec![0u8; 3 * plane];
        for (i, px) in hwc.chunks_exact(3).enumerate() {
            for c in 0..3 {
                chw[c * plane + i] = px[c];
            }
        }
        chw
    };
    Ok(RawImage {
        pixels,
        channels,
        height,
        width,
        label,
    })
}

impl Dataset<RawImage, Error> for FolderImages {
    fn get(&self, index: usize) -> Result<RawImage> {
        self.images
            .get(index)
            .cloned()
            .ok_or_else(|| Error::Invalid(format!("index {index} of {}", self.images.len())))
    }

    fn len(&self) -> usize {
        self.images.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `classes` folders of `n` grey `side x side` PNGs per split, class `c` image `i` filled
    /// with `40 c + i`.
    fn write_folder(dir: &Path, classes: &[&str], n: u8, side: u32) {
        for split in ["train", "test"] {
            for (c, class) in classes.iter().enumerate() {
                let folder = dir.join(split).join(class);
                std::fs::create_dir_all(&folder).expect("mkdir");
                for i in 0..n {
                    image::GrayImage::from_pixel(side, side, image::Luma([40 * c as u8 + i]))
                        .save(folder.join(format!("{i}.png")))
                        .expect("png");
                }
            }
        }
    }

    #[test]
    fn a_folder_with_a_description_becomes_a_named_dataset() {
        let data = tempfile::tempdir().expect("tmp");
        let dir = data.path().join("shades");
        write_folder(&dir, &["dark", "bright", "mid"], 3, 6);
        std::fs::write(
            dir.join(SPEC_FILE),
            "title = \"Shades\"\nchannels = 1\nmean = [0.3]\nstd = [0.2]\n",
        )
        .expect("toml");
        // A folder without a description is not a dataset; one with a broken one is skipped.
        std::fs::create_dir_all(data.path().join("notes")).expect("mkdir");
        let broken = data.path().join("broken");
        write_folder(&broken, &["a", "b"], 1, 4);
        std::fs::write(
            broken.join(SPEC_FILE),
            "channels = 2\nmean = [0, 0]\nstd = [1, 1]\n",
        )
        .expect("toml");
        let names = register_all(data.path());
        assert_eq!(names.len(), 1);
        let name: DatasetName = "shades".parse().expect("registered");
        assert_eq!(name, names[0]);
        assert!(name.is_own());
        let spec = name.spec();
        // Classes in sorted folder order: bright, dark, mid.
        assert_eq!(
            (spec.classes, spec.channels, spec.stored_side),
            (3, 1, Some(6))
        );
        assert_eq!(
            (spec.train_examples, spec.test_examples, spec.title),
            (9, 9, "Shades")
        );
        assert_eq!(spec.augmentation, Augmentation::None);
        assert_eq!(name.to_string(), "shades");
        // Registering again is the same dataset; its serialised name carries its fingerprint.
        assert_eq!(register(&dir).expect("again"), name);
        let fingerprint = spec.fingerprint.expect("fingerprint");
        assert_eq!(fingerprint.len(), 16);
        assert_eq!(
            format!("shades@{fingerprint}")
                .parse::<DatasetName>()
                .expect("parses"),
            name
        );
        let test = crate::load(name, data.path(), Split::Test, false).expect("loads");
        assert_eq!(test.len(), 9);
        let item = test.get(4).expect("item");
        // Image 1 of class 1 ("dark", written with c = 0): value 0 * 40 + 1.
        assert_eq!(
            (item.label, item.channels, item.height, item.width),
            (1, 1, 6, 6)
        );
        assert!(item.pixels.iter().all(|&p| p == 1), "{:?}", item.pixels);
        assert!("broken".parse::<DatasetName>().is_err());
        // A hidden folder is not a class.
        std::fs::create_dir_all(dir.join("train/.ipynb_checkpoints")).expect("mkdir");
        assert_eq!(register(&dir).expect("same"), name);
        // One more image is another dataset: refused under the same id in this process, and
        // what was written of the old one does not parse as the new one.
        image::GrayImage::new(6, 6)
            .save(dir.join("train/mid/extra.png"))
            .expect("png");
        let err = register(&dir).unwrap_err();
        assert!(err.to_string().contains("one description per id"), "{err}");
    }

    #[test]
    fn mismatched_classes_sizes_and_descriptions_are_refused_with_what_to_fix() {
        let data = tempfile::tempdir().expect("tmp");
        let dir = data.path().join("odd");
        write_folder(&dir, &["a", "b"], 2, 5);
        std::fs::write(
            dir.join(SPEC_FILE),
            "channels = 1\nmean = [0.5]\nstd = [0.5]\n",
        )
        .expect("toml");
        std::fs::create_dir_all(dir.join("train/c")).expect("mkdir");
        image::GrayImage::new(5, 5)
            .save(dir.join("train/c/0.png"))
            .expect("png");
        let err = register(&dir).unwrap_err();
        assert!(
            err.to_string().contains("both need the same class folders"),
            "{err}"
        );
        std::fs::remove_dir_all(dir.join("train/c")).expect("rm");
        image::GrayImage::new(7, 5)
            .save(dir.join("test/b/1.png"))
            .expect("png");
        let name = register(&dir).expect("registers");
        let err = load(name, &dir, Split::Test).unwrap_err();
        assert!(
            err.to_string()
                .contains("every image of a dataset has one size"),
            "{err}"
        );
        for (toml, expected) in [
            ("channels = 1\nmean = [0.5]\n", "missing field `std`"),
            (
                "channels = 1\nmean = [0.5]\nstd = [0.5]\nsize = 3\n",
                "unknown field `size`",
            ),
            (
                "channels = 3\nmean = [0.5]\nstd = [0.5]\n",
                "mean has 1 and std 1 values for 3 channel(s)",
            ),
        ] {
            let other = data.path().join("other");
            write_folder(&other, &["a", "b"], 1, 4);
            std::fs::write(other.join(SPEC_FILE), toml).expect("toml");
            let err = register(&other).unwrap_err();
            assert!(err.to_string().contains(expected), "{toml}: {err}");
        }
        let mnist = data.path().join("mnist");
        write_folder(&mnist, &["a", "b"], 1, 4);
        std::fs::write(
            mnist.join(SPEC_FILE),
            "channels = 1\nmean = [0.5]\nstd = [0.5]\n",
        )
        .expect("toml");
        let err = register(&mnist).unwrap_err();
        assert!(
            err.to_string().contains("a built-in dataset has that id"),
            "{err}"
        );
    }
}
