//! `rewind parity-export`: what PyTorch needs to repeat every training step of a parity case
//! from our state (`bench/parity.py` does, and writes the golden file the parity tests compare
//! with; `cargo xtask parity` runs both).

use std::path::{Path, PathBuf};

use anyhow::Result;
use checks::parity;
use clap::Args;

#[derive(Args, Debug)]
pub struct ParityArgs {
    /// The parity case: lenet (Adam), resnet20 (narrow, BN, SGD momentum, weight decay, LR
    /// drops) or vgg16 (narrow, BN, max pooling); each with one IMP round (prune 20%, rewind,
    /// masked training).
    #[arg(long, default_value = "lenet")]
    case: String,
    /// The directory to write `export.json` and the raw float32 files into.
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Instead of the case's steps, export what a full-length run of the unshortened recipe
    /// needs (initial state and every batch's example indices; recipes without augmentation):
    /// `bench/parity.py --full-length` trains it in PyTorch.
    #[arg(long)]
    full_length: bool,
    /// Init seed of the full-length export.
    #[arg(long, default_value_t = 1, requires = "full_length")]
    init_seed: u64,
    /// Data-order seed of the full-length export.
    #[arg(long, default_value_t = 1, requires = "full_length")]
    data_seed: u64,
}

pub fn run(args: ParityArgs, data_dir: &Path, allow_download: bool) -> Result<()> {
    let case = parity::case(&args.case)?;
    let data = case.data(&experiments::runs::DataCache::new(data_dir, allow_download))?;
    if args.full_length {
        let steps =
            parity::export_full_length(case, &data, args.init_seed, args.data_seed, &args.out)?;
        println!(
            "{steps} steps of {} (init seed {}, data seed {}) exported to {}",
            case.name,
            args.init_seed,
            args.data_seed,
            args.out.display()
        );
        return Ok(());
    }
    let measured = parity::measure(case, &data, Some(&args.out))?;
    println!(
        "{} steps of parity case {} exported to {} (last loss {:.6}, interpolation errors {:?})",
        case.steps,
        case.name,
        args.out.display(),
        measured.dense.losses.last().copied().unwrap_or(f32::NAN),
        measured.interpolation_errors
    );
    Ok(())
}
