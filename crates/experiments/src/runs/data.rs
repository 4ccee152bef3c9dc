//! Datasets loaded once per process and shared by every run that trains on them, and the
//! length of an epoch planning needs from them ([`EpochLength`]).

use std::collections::HashMap;
use std::sync::Mutex;

use data::{DatasetName, ImageSource, Split};
use train::{Recipe, TrainData};

use crate::{Error, Result};

/// Loads datasets once and hands out [`TrainData`] per recipe.
pub struct DataCache {
    data_dir: std::path::PathBuf,
    allow_download: bool,
    loaded: Mutex<HashMap<DatasetName, (ImageSource, ImageSource)>>,
}

impl DataCache {
    pub fn new(data_dir: &std::path::Path, allow_download: bool) -> DataCache {
        DataCache {
            data_dir: data_dir.to_path_buf(),
            allow_download,
            loaded: Mutex::new(HashMap::new()),
        }
    }

    /// Already-loaded sources (tests, synthetic data).
    pub fn with_sources(sources: Vec<(DatasetName, ImageSource, ImageSource)>) -> DataCache {
        DataCache {
            data_dir: std::path::PathBuf::new(),
            allow_download: false,
            loaded: Mutex::new(sources.into_iter().map(|(n, a, b)| (n, (a, b))).collect()),
        }
    }

    pub fn for_recipe(&self, recipe: &Recipe) -> Result<TrainData> {
        let name = recipe.data.dataset;
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| Error::Invalid("data cache poisoned".into()))?;
        if let std::collections::hash_map::Entry::Vacant(slot) = loaded.entry(name) {
            let load = |split| {
                data::load(name, &self.data_dir, split, self.allow_download).map_err(|e| match e {
                    data::Error::Missing { .. } => Error::MissingDataset {
                        dataset: name,
                        source: e,
                    },
                    other => Error::Data(other),
                })
            };
            slot.insert((load(Split::Train)?, load(Split::Test)?));
        }
        let (train, test) = loaded[&name].clone();
        Ok(TrainData::from_sources(recipe, name, train, test)?)
    }
}

/// Where planning gets the length of an epoch: the only fact of the data it needs.
pub trait EpochLength {
    /// Iterations per epoch of `recipe` on its dataset.
    fn iterations_per_epoch(&self, recipe: &Recipe) -> Result<u64>;
}

/// The published sizes of the datasets' training splits (no file is read): planning without
/// data, as `reproduce --dry-run` does.
#[derive(Debug, Clone, Copy, Default)]
pub struct PublishedSizes;

impl EpochLength for PublishedSizes {
    fn iterations_per_epoch(&self, recipe: &Recipe) -> Result<u64> {
        let examples = recipe.data.dataset.train_examples() as u64;
        Ok(examples.div_ceil(recipe.data.batch_size.max(1) as u64))
    }
}

/// The epoch length of the data actually there (loading the dataset's index once).
impl EpochLength for DataCache {
    fn iterations_per_epoch(&self, recipe: &Recipe) -> Result<u64> {
        let data = self.for_recipe(recipe)?;
        Ok((data.train.len() as u64).div_ceil(recipe.data.batch_size as u64))
    }
}
