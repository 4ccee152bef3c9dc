//! What `bench/parity.py` reads: `export.json` and raw little-endian float32 files.
//!
//! `export.json` holds the case, the network's shape (`model`), the Table 1 row to use
//! (`network`), the length, tensor paths and shapes, every batch's labels, the test labels and
//! the interpolation's alphas; our recipe is there for the record only (the script never reads
//! it). The raw files: `trajectory.f32` (the state before each dense step and after the last),
//! `batches.f32` (each step's images, as training saw them), `imp_trajectory.f32` and
//! `imp_batches.f32` (the same for the IMP child, from its rewound state), `endpoints.f32`
//! (the two ends of the interpolation) and `test.f32` (the test images it is evaluated on).

use std::io::Write;
use std::path::{Path, PathBuf};

use data::eval_batches;
use nets::params::{TensorInfo, tensor_values};
use paper_networks::Network;
use serde::Serialize;
use train::{TrainConfig, TrainData, Trainer};

use super::{CHILD_DATA_SEED, Case, DATA_SEED, INIT_SEED};
use crate::{Error, Result};

/// What the replay produced that the export records.
pub(super) struct Replayed<'a> {
    pub losses: &'a [f32],
    pub labels: Vec<Vec<i64>>,
    pub imp_rewind_to: u64,
    pub imp_labels: Vec<Vec<i64>>,
    pub imp_kept: usize,
    pub alphas: Vec<f64>,
    pub interpolation_errors: &'a [usize],
    pub test_examples: usize,
}

#[derive(Serialize)]
struct ExportTensor<'a> {
    path: &'a str,
    shape: &'a [usize],
    buffer: bool,
}

#[derive(Serialize)]
struct ImpExport {
    rewind_to: u64,
    /// Per child step, the labels of its batch (its images are in `imp_batches.f32`).
    labels: Vec<Vec<i64>>,
    /// Weights our IMP round kept (for the script's printout).
    kept: usize,
}

#[derive(Serialize)]
struct Export<'a> {
    case: &'a str,
    /// The Table 1 row the reference takes its recipe from.
    network: &'a str,
    /// The network's shape (architecture and width): an input, like the states.
    model: &'a nets::ModelConfig,
    /// Our recipe, for the record: `bench/parity.py` does not read it.
    recipe: &'a train::Recipe,
    init_seed: u64,
    data_seed: u64,
    child_data_seed: u64,
    steps: u64,
    child_from: u64,
    /// `[C, H, W]` of one image in the batch and test files.
    image_shape: [usize; 3],
    /// In the order of every state in the `.f32` files (burn's layout: linear weights are
    /// `[in, out]`).
    tensors: Vec<ExportTensor<'a>>,
    losses: &'a [f32],
    /// Per step, the labels of its batch (its images are in `batches.f32`).
    labels: Vec<Vec<i64>>,
    imp: ImpExport,
    /// The CPU's SIMD level ([`train::cpu_simd_level`]): the fixture made from this export
    /// holds only on machines of this level.
    simd_level: &'static str,
    /// The version of our kernels' summation orders ([`kernels::NUMERICS`]): a fixture made
    /// from this export is stale for a build of another version.
    numerics: u32,
    test_labels: Vec<i64>,
    alphas: Vec<f64>,
    interpolation_errors: &'a [usize],
}

/// Writes the test images into `test` and `export.json` into `dir`.
pub(super) fn write_export(
    dir: &Path,
    case: &Case,
    trainer: &Trainer,
    data: &TrainData,
    infos: &[TensorInfo],
    replayed: Replayed<'_>,
    test: &mut RawFile,
) -> Result<()> {
    let mut test_labels = Vec::with_capacity(replayed.test_examples);
    for batch in eval_batches(
        &data.test,
        &data.transform,
        500,
        Some(replayed.test_examples),
    ) {
        let batch = batch?;
        test.write_values(&batch.images)?;
        test_labels.extend(batch.labels);
    }
    test.flush()?;
    let export = Export {
        case: case.name,
        network: case.network,
        model: &trainer.config.recipe.model,
        recipe: &trainer.config.recipe,
        init_seed: INIT_SEED,
        data_seed: DATA_SEED,
        child_data_seed: CHILD_DATA_SEED,
        steps: case.steps,
        child_from: case.child_from,
        image_shape: [
            data.transform.channels(),
            data.transform.size,
            data.transform.size,
        ],
        tensors: infos
            .iter()
            .map(|i| ExportTensor {
                path: &i.path,
                shape: &i.shape,
                buffer: i.role.is_buffer(),
            })
            .collect(),
        losses: replayed.losses,
        labels: replayed.labels,
        imp: ImpExport {
            rewind_to: replayed.imp_rewind_to,
            labels: replayed.imp_labels,
            kept: replayed.imp_kept,
        },
        simd_level: train::cpu_simd_level(),
        numerics: kernels::NUMERICS,
        test_labels,
        alphas: replayed.alphas,
        interpolation_errors: replayed.interpolation_errors,
    };
    let json = serde_json::to_vec(&export)
        .map_err(|e| Error::Invalid(format!("could not encode the parity export: {e}")))?;
    results::write_atomic(&dir.join("export.json"), &json)?;
    Ok(())
}

/// What a full-length run of the case's recipe (not shortened) needs in another framework, for
/// recipes without augmentation: `export.json` (network, data set, batch size, seeds, steps,
/// tensor paths and shapes), `initial.f32` (the initial state, raw little-endian float32) and
/// `indices.u32` (every step's examples, as indices into the training split, raw little-endian
/// u32). `bench/parity.py --full-length` trains it in PyTorch with Table 1's recipe and reports
/// the final test accuracy.
pub fn export_full_length(
    case: &Case,
    data: &TrainData,
    init_seed: u64,
    data_seed: u64,
    out: &Path,
) -> Result<u64> {
    let recipe = case.full_recipe()?;
    if recipe.data.augmentation != data::Augmentation::None {
        return Err(Error::Invalid(format!(
            "{} trains with augmentation, which example indices do not capture; full-length \
             exports exist for recipes without it (lenet)",
            case.name
        )));
    }
    let config = TrainConfig::new(recipe, init_seed, data_seed);
    let trainer = Trainer::new(config, data.clone(), &train::default_device())?;
    let steps = trainer.total_steps();
    std::fs::create_dir_all(out).map_err(|source| Error::Io {
        path: out.to_path_buf(),
        source,
    })?;
    let initial = tensor_values(&trainer.initial_state::<Network>()?.model);
    let mut state = RawFile::create(&out.join("initial.f32"))?;
    state.write_tensors(&initial)?;
    state.flush()?;
    let mut indices = RawFile::create(&out.join("indices.u32"))?;
    for step in 0..steps {
        let batch: Vec<u8> = trainer
            .batch_indices(step)
            .into_iter()
            .flat_map(|i| (i as u32).to_le_bytes())
            .collect();
        indices.write_bytes(&batch)?;
    }
    indices.flush()?;
    let recipe = &trainer.config.recipe;
    let export = serde_json::json!({
        "case": case.name,
        "network": case.network,
        "model": recipe.model,
        "dataset": recipe.data.dataset.as_str(),
        "batch_size": recipe.data.batch_size,
        "recipe": recipe,
        "init_seed": init_seed,
        "data_seed": data_seed,
        "steps": steps,
        "tensors": initial.iter().map(|(i, _)| serde_json::json!({
            "path": i.path, "shape": i.shape, "buffer": i.role.is_buffer(),
        })).collect::<Vec<_>>(),
    });
    results::write_atomic(&out.join("export.json"), export.to_string().as_bytes())?;
    Ok(steps)
}

/// The raw float32 files of an export.
pub(super) struct ExportFiles {
    pub trajectory: RawFile,
    pub batches: RawFile,
    pub imp_trajectory: RawFile,
    pub imp_batches: RawFile,
    pub endpoints: RawFile,
    pub test: RawFile,
}

impl ExportFiles {
    pub fn create(dir: &Path) -> Result<ExportFiles> {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        Ok(ExportFiles {
            trajectory: RawFile::create(&dir.join("trajectory.f32"))?,
            batches: RawFile::create(&dir.join("batches.f32"))?,
            imp_trajectory: RawFile::create(&dir.join("imp_trajectory.f32"))?,
            imp_batches: RawFile::create(&dir.join("imp_batches.f32"))?,
            endpoints: RawFile::create(&dir.join("endpoints.f32"))?,
            test: RawFile::create(&dir.join("test.f32"))?,
        })
    }

    pub fn finish(&mut self) -> Result<()> {
        for file in [
            &mut self.trajectory,
            &mut self.batches,
            &mut self.imp_trajectory,
            &mut self.imp_batches,
            &mut self.endpoints,
        ] {
            file.flush()?;
        }
        Ok(())
    }
}

pub(super) struct RawFile {
    path: PathBuf,
    out: std::io::BufWriter<std::fs::File>,
}

impl RawFile {
    pub fn create(path: &Path) -> Result<RawFile> {
        let file = std::fs::File::create(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(RawFile {
            path: path.to_path_buf(),
            out: std::io::BufWriter::new(file),
        })
    }

    pub fn write_values(&mut self, values: &[f32]) -> Result<()> {
        let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.write_bytes(&bytes)
    }

    pub fn write_bytes(&mut self, bytes: &[u8]) -> Result<()> {
        self.out.write_all(bytes).map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }

    pub fn write_tensors(&mut self, tensors: &[(TensorInfo, Vec<f32>)]) -> Result<()> {
        tensors.iter().try_for_each(|(_, v)| self.write_values(v))
    }

    pub fn flush(&mut self) -> Result<()> {
        self.out.flush().map_err(|source| Error::Io {
            path: self.path.clone(),
            source,
        })
    }
}
