//! `rewind check-permutation`: does a network's permutation spec leave its function unchanged?
//! Each group's units permuted alone, then all at once, on a preset's network with random
//! batch-norm statistics; a broken group is named with the axis that breaks it.

use anyhow::{Result, bail};
use burn::tensor::{Distribution, Tensor};
use clap::Args;
use paper_networks::Network;

use crate::bench_cmd::bench_recipe;

#[derive(Args, Debug, Clone)]
pub struct CheckPermutationArgs {
    /// The network: a preset (`rewind presets`), or a narrower cut of one (`resnet20@w4`,
    /// `vgg16@d8`).
    #[arg(long, default_value = "resnet20")]
    preset: String,
    /// Seed of the network's weights, its batch-norm statistics, the images and the
    /// permutations.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Images the logits are compared on.
    #[arg(long, default_value_t = 8)]
    images: usize,
}

pub fn run(args: CheckPermutationArgs) -> Result<()> {
    let recipe = bench_recipe(&args.preset)?;
    let (data, _) = checks::backend_check::synthetic_data(&recipe, 1)?;
    let (channels, size, classes) = (
        data.transform.channels(),
        data.transform.size,
        data.num_classes,
    );
    let device = train::default_device();
    let build = || Network::build(&recipe.model, channels, size, classes, &device);
    let symmetry = recipe.model.architecture().symmetry;
    let network = nets::initialize(build()?, args.seed, recipe.bn_init);
    let network = align::vary_batch_norm(network, args.seed, &symmetry);
    let spec = align::PermutationSpec::of(&network, &symmetry)?;
    device.seed(args.seed);
    let images = Tensor::random(
        [args.images.max(2), channels, size, size],
        Distribution::Normal(0.0, 1.0),
        &device,
    );
    let values = nets::params::tensor_values(&network);
    let fresh = || build().expect("the network was built once already");
    let check = align::check_permutation(fresh, &values, &spec, images, args.seed)?;
    println!(
        "{}: {} permutation groups, each permuted alone (largest change of a logit relative \
         to their spread over {} images; at most {:.1e} counts as none)\n",
        args.preset,
        check.groups.len(),
        args.images.max(2),
        check.tolerance
    );
    println!("| group | units | change | verdict |\n|---|---:|---:|---|");
    for g in &check.groups {
        let verdict = match &g.diagnosis {
            None => "kept".to_string(),
            Some(align::Diagnosis::Extra(a)) => {
                format!(
                    "BROKEN: leaving out axis {} of {} restores it",
                    a.axis, a.path
                )
            }
            Some(align::Diagnosis::Missing(a)) => {
                format!("BROKEN: adding axis {} of {} restores it", a.axis, a.path)
            }
            Some(align::Diagnosis::Unknown) => {
                "BROKEN: no single axis left out or added restores it".to_string()
            }
        };
        println!(
            "| {} | {} | {:.1e} | {verdict} |",
            g.group, g.size, g.change
        );
    }
    println!(
        "\nevery group at once: change {:.1e}",
        check.all_groups_change
    );
    if let Some(g) = check.first_broken() {
        bail!(
            "the permutation spec of {} changes the network's function, first at group {}",
            args.preset,
            g.group
        );
    }
    if !check.passed() {
        bail!(
            "the permutation spec of {} changes the network's function when every group moves \
             at once ({:.1e}), though no group does alone",
            args.preset,
            check.all_groups_change
        );
    }
    println!("the spec keeps the function: every permutation it allows is a symmetry");
    Ok(())
}
