//! Real image datasets for the experiments, with data order and augmentation that are pure
//! functions of a data seed and a training step.
//!
//! * [`mnist`]: MNIST and Fashion-MNIST from the official gzip (or raw) IDX files.
//! * [`cifar`]: CIFAR-10 from the official binary batches (`data_batch_1.bin` ..).
//! * [`imagenet`]: ImageNet from the usual `train/<class>/*.JPEG`, `val/<class>/*.JPEG` tree.
//!
//! Every source implements burn-dataset's [`Dataset`] trait over [`RawImage`]s (undecoded pixel
//! bytes). [`SeededBatches`] turns a source into normalised, augmented batches: the order of
//! epoch `e` and every augmentation draw depend only on `(data_seed, e, position)`, so two runs
//! with the same data seed see identical batches and a resumed run sees the same batches as an
//! uninterrupted one.

mod batches;
pub mod cifar;
mod download;
mod error;
pub mod idx;
pub mod imagenet;
mod location;
pub mod mnist;
pub mod synthetic;
mod transform;

use std::sync::Arc;

pub use batches::{Batch, SeededBatches, eval_batches, mix_seed};
pub use burn_dataset::Dataset;
pub use error::{Error, Result};
pub use location::{DATA_DIR_ENV, default_data_dir, resolve_data_dir};
pub use transform::{Augmentation, Transform};

use serde::{Deserialize, Serialize};

/// One undecoded example: pixel bytes in channel-major (`[C, H, W]`) order and its label.
#[derive(Debug, Clone, PartialEq)]
pub struct RawImage {
    pub pixels: Vec<u8>,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub label: usize,
}

/// A dataset of [`RawImage`]s, shareable between threads.
pub type ImageSource = Arc<dyn Dataset<RawImage, Error>>;

/// The datasets the framework knows how to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetName {
    Mnist,
    FashionMnist,
    Cifar10,
    Imagenet,
}

impl DatasetName {
    pub const ALL: [DatasetName; 4] = [
        DatasetName::Mnist,
        DatasetName::FashionMnist,
        DatasetName::Cifar10,
        DatasetName::Imagenet,
    ];

    /// The name used on the command line, in configs and as the sub-directory of the data dir.
    pub fn as_str(self) -> &'static str {
        match self {
            DatasetName::Mnist => "mnist",
            DatasetName::FashionMnist => "fashion-mnist",
            DatasetName::Cifar10 => "cifar10",
            DatasetName::Imagenet => "imagenet",
        }
    }

    /// Per-channel mean and standard deviation used for normalisation (on pixel values in
    /// `[0, 1]`). CIFAR-10 uses ImageNet's statistics, as the paper's framework (open_lth) does.
    pub fn normalisation(self) -> (Vec<f32>, Vec<f32>) {
        match self {
            DatasetName::Mnist => (vec![0.1307], vec![0.3081]),
            DatasetName::FashionMnist => (vec![0.2860], vec![0.3530]),
            DatasetName::Cifar10 | DatasetName::Imagenet => {
                (vec![0.485, 0.456, 0.406], vec![0.229, 0.224, 0.225])
            }
        }
    }

    /// The training augmentation of the paper's recipe for this dataset.
    pub fn default_augmentation(self) -> Augmentation {
        match self {
            DatasetName::Mnist | DatasetName::FashionMnist => Augmentation::None,
            DatasetName::Cifar10 => Augmentation::CropFlip { padding: 4 },
            DatasetName::Imagenet => Augmentation::RandomResizedCropFlip,
        }
    }

    pub fn num_classes(self) -> usize {
        match self {
            DatasetName::Imagenet => 1000,
            _ => 10,
        }
    }
}

impl std::fmt::Display for DatasetName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for DatasetName {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        DatasetName::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| Error::UnknownDataset(s.to_string()))
    }
}

/// Which half of a dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Split {
    Train,
    Test,
}

/// Loads one split of a dataset from `data_dir/<name>/`, downloading it first where the
/// dataset has an official download and `allow_download` is set.
pub fn load(
    name: DatasetName,
    data_dir: &std::path::Path,
    split: Split,
    allow_download: bool,
) -> Result<ImageSource> {
    let dir = data_dir.join(name.as_str());
    Ok(match name {
        DatasetName::Mnist | DatasetName::FashionMnist => {
            Arc::new(mnist::load(name, &dir, split, allow_download)?)
        }
        DatasetName::Cifar10 => Arc::new(cifar::load(&dir, split, allow_download)?),
        DatasetName::Imagenet => Arc::new(imagenet::ImageFolder::open(&dir, split)?),
    })
}
