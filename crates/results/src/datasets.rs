//! The datasets the framework knows, and everything it needs to know about each of them, in
//! one table ([`DatasetSpec`]): adding a built-in dataset is one variant and one row. Datasets
//! of one's own are registered at run time ([`DatasetSpec::register`]) and named like the
//! built-in ones from then on.

use std::fmt;
use std::str::FromStr;
use std::sync::RwLock;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A dataset: one of the built-in ones, or one registered by this process
/// ([`DatasetSpec::register`]). Serialised as its id (`"cifar10"`, or a registered dataset's
/// own), so configs and run identities name it the same way in every process.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub enum DatasetName {
    Mnist,
    FashionMnist,
    Cifar10,
    Cifar100,
    Svhn,
    Imagenet,
    /// A dataset registered at run time: its index among this process's registrations.
    Own(OwnDataset),
}

impl fmt::Debug for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DatasetName({})", self.as_str())
    }
}

/// The handle of a dataset registered at run time (valid in the process that registered it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OwnDataset(u32);

/// Every dataset registered by this process, in order; leaked, as each lives to the end.
static REGISTERED: RwLock<Vec<&'static DatasetSpec>> = RwLock::new(Vec::new());

/// Training-time augmentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Augmentation {
    /// No augmentation (MNIST in the paper).
    None,
    /// Zero-pad by `padding` pixels, take a random `S x S` crop, flip horizontally with
    /// probability 1/2 (CIFAR-10 in the paper).
    CropFlip { padding: usize },
    /// Random resized crop (scale 0.08-1, aspect 3/4-4/3) to `S x S`, then a random flip
    /// (ImageNet in the paper).
    RandomResizedCropFlip,
}

impl Augmentation {
    /// The training augmentation of the usual recipe for `dataset` (the paper's, where the
    /// paper trains on it).
    pub fn default_for(dataset: DatasetName) -> Augmentation {
        dataset.spec().augmentation
    }
}

/// What the framework knows about one dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetSpec {
    pub name: DatasetName,
    /// The name used on the command line, in configs and as the sub-directory of the data dir.
    pub id: &'static str,
    /// How papers write it.
    pub title: &'static str,
    pub classes: usize,
    pub channels: usize,
    /// The side of every stored image; `None` where the images differ in size (ImageNet).
    pub stored_side: Option<usize>,
    /// The side networks see at native resolution when it is not the images' own: ImageNet's
    /// 224-pixel crop.
    pub crop_side: Option<usize>,
    /// Examples in the official training split (ImageNet: ILSVRC-2012).
    pub train_examples: usize,
    /// Examples in the official test split (ImageNet: the 50,000 validation images).
    pub test_examples: usize,
    /// Per-channel mean and standard deviation for normalisation, on pixel values in `[0, 1]`.
    pub mean: &'static [f32],
    pub std: &'static [f32],
    /// The training augmentation of the usual recipe.
    pub augmentation: Augmentation,
    /// The files the loader reads from `<data dir>/<id>/`.
    pub files: &'static str,
    /// For a dataset of one's own: a hash of its description and its files' names and sizes,
    /// part of its serialised name (`digits@<hash>`), so runs on a changed folder get new ids
    /// and a store or `results.json` of the old one is not mistaken for it.
    pub fingerprint: Option<&'static str>,
}

/// ImageNet's channel statistics, which the paper's framework (open_lth) also uses for
/// CIFAR-10.
const IMAGENET_MEAN: &[f32] = &[0.485, 0.456, 0.406];
const IMAGENET_STD: &[f32] = &[0.229, 0.224, 0.225];

const MNIST: DatasetSpec = DatasetSpec {
    name: DatasetName::Mnist,
    id: "mnist",
    title: "MNIST",
    classes: 10,
    channels: 1,
    stored_side: Some(28),
    crop_side: None,
    train_examples: 60_000,
    test_examples: 10_000,
    mean: &[0.1307],
    std: &[0.3081],
    augmentation: Augmentation::None,
    files: "train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz (gzip or raw IDX)",
    fingerprint: None,
};

const CIFAR10: DatasetSpec = DatasetSpec {
    name: DatasetName::Cifar10,
    id: "cifar10",
    title: "CIFAR-10",
    classes: 10,
    channels: 3,
    stored_side: Some(32),
    crop_side: None,
    train_examples: 50_000,
    test_examples: 10_000,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    augmentation: Augmentation::CropFlip { padding: 4 },
    files: "data_batch_1.bin .. data_batch_5.bin and test_batch.bin (the binary version, cifar-10-binary.tar.gz, extracted)",
    fingerprint: None,
};

/// The table: one row per built-in [`DatasetName`], in its order.
const SPECS: [DatasetSpec; 6] = [
    MNIST,
    DatasetSpec {
        name: DatasetName::FashionMnist,
        id: "fashion-mnist",
        title: "Fashion-MNIST",
        mean: &[0.2860],
        std: &[0.3530],
        ..MNIST
    },
    CIFAR10,
    // Its own training split's channel statistics, as CIFAR-100 recipes commonly use.
    DatasetSpec {
        name: DatasetName::Cifar100,
        id: "cifar100",
        title: "CIFAR-100",
        classes: 100,
        mean: &[0.5071, 0.4865, 0.4409],
        std: &[0.2673, 0.2564, 0.2762],
        files: "train.bin and test.bin (the binary version, cifar-100-binary.tar.gz, extracted; the fine labels)",
        ..CIFAR10
    },
    // Format 2 (cropped digits). No augmentation: flipping changes digits, and the usual
    // recipes (e.g. wide ResNets) train SVHN without it. The extra split is not read.
    DatasetSpec {
        name: DatasetName::Svhn,
        id: "svhn",
        title: "SVHN",
        train_examples: 73_257,
        test_examples: 26_032,
        mean: &[0.4377, 0.4438, 0.4728],
        std: &[0.1980, 0.2010, 0.1970],
        augmentation: Augmentation::None,
        files: "train_32x32.mat and test_32x32.mat (format 2, cropped digits, MATLAB 5 files)",
        ..CIFAR10
    },
    DatasetSpec {
        name: DatasetName::Imagenet,
        id: "imagenet",
        title: "ImageNet",
        classes: 1000,
        stored_side: None,
        crop_side: Some(224),
        train_examples: 1_281_167,
        test_examples: 50_000,
        augmentation: Augmentation::RandomResizedCropFlip,
        files: "train/<class>/*.JPEG and val/<class>/*.JPEG (one folder per class, the same class folders in both)",
        ..CIFAR10
    },
];

impl DatasetName {
    /// The built-in datasets.
    pub const ALL: [DatasetName; 6] = [
        DatasetName::Mnist,
        DatasetName::FashionMnist,
        DatasetName::Cifar10,
        DatasetName::Cifar100,
        DatasetName::Svhn,
        DatasetName::Imagenet,
    ];

    /// Everything known about the dataset.
    pub fn spec(self) -> &'static DatasetSpec {
        let row = match self {
            DatasetName::Mnist => 0,
            DatasetName::FashionMnist => 1,
            DatasetName::Cifar10 => 2,
            DatasetName::Cifar100 => 3,
            DatasetName::Svhn => 4,
            DatasetName::Imagenet => 5,
            DatasetName::Own(OwnDataset(i)) => {
                let registered = REGISTERED.read().unwrap_or_else(|e| e.into_inner());
                return registered[i as usize];
            }
        };
        &SPECS[row]
    }

    /// Whether it was registered at run time rather than built in.
    pub fn is_own(self) -> bool {
        matches!(self, DatasetName::Own(_))
    }

    /// The built-in datasets and those registered so far.
    pub fn known() -> Vec<DatasetName> {
        let registered = REGISTERED.read().unwrap_or_else(|e| e.into_inner());
        DatasetName::ALL
            .into_iter()
            .chain((0..registered.len() as u32).map(|i| DatasetName::Own(OwnDataset(i))))
            .collect()
    }

    /// The name used on the command line, in configs and as the sub-directory of the data dir.
    pub fn as_str(self) -> &'static str {
        self.spec().id
    }

    /// How papers write it: MNIST, Fashion-MNIST, CIFAR-10, ImageNet.
    pub fn title(self) -> &'static str {
        self.spec().title
    }

    /// Examples in the official training split (ImageNet: ILSVRC-2012).
    pub fn train_examples(self) -> usize {
        self.spec().train_examples
    }

    pub fn num_classes(self) -> usize {
        self.spec().classes
    }

    /// Per-channel mean and standard deviation used for normalisation (on pixel values in
    /// `[0, 1]`).
    pub fn normalisation(self) -> (Vec<f32>, Vec<f32>) {
        let spec = self.spec();
        (spec.mean.to_vec(), spec.std.to_vec())
    }
}

impl fmt::Display for DatasetName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for DatasetName {
    type Err = Error;
    /// An id (`cifar10`, `digits`), or a registered dataset's serialised name
    /// (`digits@<fingerprint>`), which must match the registered dataset's fingerprint.
    fn from_str(s: &str) -> Result<Self, Error> {
        let (id, fingerprint) = match s.split_once('@') {
            Some((id, f)) => (id, Some(f)),
            None => (s, None),
        };
        let known = DatasetName::known();
        let name = known
            .iter()
            .copied()
            .find(|d| d.as_str() == id)
            .ok_or_else(|| Error::Unknown {
                what: "dataset",
                value: id.to_string(),
                expected: format!(
                    "{} (a folder of your own images is one once it has a dataset.toml: see \
                     README.md, \"Your own dataset\")",
                    known
                        .iter()
                        .map(|d| d.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })?;
        match (fingerprint, name.spec().fingerprint) {
            (None, _) => Ok(name),
            (Some(then), Some(now)) if then == now => Ok(name),
            (Some(then), now) => Err(Error::Dataset {
                id: id.to_string(),
                problem: format!(
                    "it has changed since this was written (fingerprint {then} then, {} now: \
                     its dataset.toml, or which files it holds and their sizes); runs on the \
                     old data are not runs on this one. Restore the folder, or give the changed \
                     data another folder name",
                    now.unwrap_or("none")
                ),
            }),
        }
    }
}

impl Serialize for DatasetName {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.spec().fingerprint {
            Some(f) => serializer.serialize_str(&format!("{}@{f}", self.as_str())),
            None => serializer.serialize_str(self.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for DatasetName {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A dataset of one's own, as it is registered ([`DatasetRecord::register`]) and as
/// `results.json` records it, so that a reader that has not registered it (the figures, on
/// another machine) can: [`crate::Results::from_json`] registers every recorded one first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetRecord {
    pub id: String,
    pub title: String,
    pub classes: usize,
    pub channels: usize,
    pub stored_side: Option<usize>,
    pub crop_side: Option<usize>,
    pub train_examples: usize,
    pub test_examples: usize,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub augmentation: Augmentation,
    pub files: String,
    /// See [`DatasetSpec::fingerprint`].
    pub fingerprint: String,
}

impl DatasetRecord {
    pub fn of(name: DatasetName) -> DatasetRecord {
        let s = name.spec();
        DatasetRecord {
            id: s.id.into(),
            title: s.title.into(),
            classes: s.classes,
            channels: s.channels,
            stored_side: s.stored_side,
            crop_side: s.crop_side,
            train_examples: s.train_examples,
            test_examples: s.test_examples,
            mean: s.mean.to_vec(),
            std: s.std.to_vec(),
            augmentation: s.augmentation,
            files: s.files.into(),
            fingerprint: s.fingerprint.unwrap_or_default().into(),
        }
    }

    /// The first fact that makes it unusable, in words.
    fn problem(&self) -> Option<String> {
        let id_ok = self
            .id
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
            && self
                .id
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        let n = self.channels;
        Some(if !id_ok {
            "its id (the folder's name) must start with a lower-case letter or a digit and hold only those, '-' and '_': rename it".into()
        } else if DatasetName::ALL.iter().any(|d| d.as_str() == self.id) {
            "a built-in dataset has that id: name yours otherwise".into()
        } else if self.classes < 2 {
            format!(
                "it has {} class(es); a classifier needs at least 2",
                self.classes
            )
        } else if n == 0 {
            "it has 0 channels".into()
        } else if self.mean.len() != n || self.std.len() != n {
            format!(
                "mean has {} and std {} values for {n} channel(s): give one per channel",
                self.mean.len(),
                self.std.len()
            )
        } else if !self.mean.iter().all(|m| m.is_finite()) {
            "its mean is not finite".into()
        } else if !self.std.iter().all(|&s| s.is_finite() && s > 0.0) {
            "its std must be positive and finite".into()
        } else if self.train_examples == 0 || self.test_examples == 0 {
            "a split has no examples".into()
        } else if self.stored_side.is_none() && self.crop_side.is_none() {
            "it states no image side".into()
        } else if self.fingerprint.contains('@') {
            "its fingerprint holds '@'".into()
        } else {
            return None;
        })
    }

    /// Registers the dataset for the rest of the process and returns its name: its id then
    /// parses to it everywhere (command line, configs, stores, `results.json`). Registering the
    /// same record again returns the same name; another record under a registered id, a
    /// built-in id and inconsistent facts are refused, each with what to change.
    pub fn register(&self) -> Result<DatasetName, Error> {
        let refuse = |problem: String| Error::Dataset {
            id: self.id.clone(),
            problem,
        };
        if let Some(problem) = self.problem() {
            return Err(refuse(problem));
        }
        let mut registered = REGISTERED.write().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = registered.iter().position(|r| r.id == self.id) {
            let name = DatasetName::Own(OwnDataset(i as u32));
            drop(registered);
            let before = DatasetRecord::of(name);
            return if before == *self {
                Ok(name)
            } else {
                Err(refuse(format!(
                    "another dataset is registered under that id in this process \
                     (fingerprint {} against {}): one description per id",
                    before.fingerprint, self.fingerprint
                )))
            };
        }
        let name = DatasetName::Own(OwnDataset(registered.len() as u32));
        let leak = |s: &str| -> &'static str { s.to_string().leak() };
        registered.push(Box::leak(Box::new(DatasetSpec {
            name,
            id: leak(&self.id),
            title: leak(&self.title),
            classes: self.classes,
            channels: self.channels,
            stored_side: self.stored_side,
            crop_side: self.crop_side,
            train_examples: self.train_examples,
            test_examples: self.test_examples,
            mean: self.mean.clone().leak(),
            std: self.std.clone().leak(),
            augmentation: self.augmentation,
            files: leak(&self.files),
            fingerprint: Some(leak(&self.fingerprint)),
        })));
        Ok(name)
    }
}
