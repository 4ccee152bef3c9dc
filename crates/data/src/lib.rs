//! Real image datasets for the experiments, with data order and augmentation that are pure
//! functions of a data seed and a training step.
//!
//! * [`mnist`]: MNIST and Fashion-MNIST from the official gzip (or raw) IDX files.
//! * [`cifar`]: CIFAR-10 and CIFAR-100 from the official binary versions.
//! * [`svhn`]: SVHN (cropped digits) from the official MATLAB files.
//! * [`folder`]: your own dataset, a folder of images with a `dataset.toml`.
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
pub mod folder;
pub mod idx;
pub mod imagenet;
mod location;
pub mod mnist;
pub mod svhn;
pub mod synthetic;
mod transform;

use std::sync::Arc;

pub use batches::{Batch, SeededBatches, eval_batches, mix_seed};
pub use burn_dataset::Dataset;
pub use error::{Error, Result};
pub use location::{DATA_DIR_ENV, default_data_dir, resolve_data_dir};
pub use results::{DatasetName, DatasetSpec};
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
        DatasetName::Cifar10 => Arc::new(cifar::load(cifar::CIFAR10, &dir, split, allow_download)?),
        DatasetName::Cifar100 => {
            Arc::new(cifar::load(cifar::CIFAR100, &dir, split, allow_download)?)
        }
        DatasetName::Svhn => Arc::new(svhn::load(&dir, split, allow_download)?),
        DatasetName::Imagenet => Arc::new(imagenet::ImageFolder::open(&dir, split)?),
        DatasetName::Own(_) => Arc::new(folder::load(name, &dir, split)?),
    })
}
