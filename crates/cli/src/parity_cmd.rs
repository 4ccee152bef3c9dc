//! `rewind parity-export`: what another framework needs to repeat our first training steps
//! exactly (`bench/parity.py` trains the same steps in PyTorch and writes the golden file the
//! parity test compares with).

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use clap::Args;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct ParityArgs {
    /// The recipe (registry name). Parity files exist for networks whose data needs no
    /// augmentation (the batches are exported as example indices): `lenet`.
    #[arg(long, default_value = "lenet")]
    preset: String,
    /// Optimiser steps to export and train.
    #[arg(long, default_value_t = 100)]
    steps: u64,
    #[arg(long, default_value_t = 1)]
    init_seed: u64,
    #[arg(long, default_value_t = 1)]
    data_seed: u64,
    /// The JSON file to write.
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
}

/// One tensor in burn's layout (linear weights `[in, out]`).
#[derive(Serialize)]
struct TensorValues {
    path: String,
    shape: Vec<usize>,
    values: Vec<f32>,
}

#[derive(Serialize)]
struct Export {
    preset: String,
    recipe: train::Recipe,
    init_seed: u64,
    data_seed: u64,
    steps: u64,
    /// Per step, the indices of its examples in the training split, in batch order.
    batches: Vec<Vec<usize>>,
    /// The initial weights and buffers, by path.
    tensors: Vec<TensorValues>,
    /// Our loss at every step (the mean cross-entropy of the step's batch).
    losses: Vec<f32>,
}

pub fn run(args: ParityArgs, data_dir: &Path, allow_download: bool) -> Result<()> {
    let recipe = experiments::registry::recipe(&args.preset)?;
    if recipe.data.augmentation != data::Augmentation::None {
        bail!(
            "{} trains with augmentation, which example indices do not capture; parity files \
             exist for recipes without augmentation (lenet)",
            args.preset
        );
    }
    let data = train::TrainData::load(&recipe, data_dir, allow_download)?;
    let config = train::TrainConfig::new(recipe, args.init_seed, args.data_seed);
    let trainer = train::Trainer::new(config, data, &train::default_device())?;
    let state = trainer.initial_state()?;
    let tensors = nets::params::tensor_values(&state.model)
        .into_iter()
        .map(|(info, values)| TensorValues {
            path: info.path,
            shape: info.shape,
            values,
        })
        .collect();
    let batches = (0..args.steps).map(|s| trainer.batch_indices(s)).collect();
    let (_, losses) = trainer.step_losses(state, args.steps)?;
    let export = Export {
        preset: args.preset,
        recipe: trainer.config.recipe.clone(),
        init_seed: args.init_seed,
        data_seed: args.data_seed,
        steps: args.steps,
        batches,
        tensors,
        losses,
    };
    train::write_atomic(&args.out, &serde_json::to_vec(&export)?)?;
    println!(
        "{} steps of {} exported to {}",
        args.steps,
        export.preset,
        args.out.display()
    );
    Ok(())
}
