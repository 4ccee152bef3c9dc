//! The paper's networks as the generic pipeline runs them.
//!
//! `experiments` plans, executes and collects the runs of any network described by an
//! `experiments::registry::Entry` and built by an `experiments::models::ModelFactory`; it
//! knows none of the paper's networks. This crate is that description for the paper:
//!
//! * [`ENTRIES`]: one entry per network of Table 1 (its recipe, how IMP reaches its density,
//!   the paper's k values and numbers, what the smoke, quick and medium scales cut), looked up
//!   by [`entry`] and [`recipe`];
//! * [`PaperNetworks`]: the factory that builds every one of them as a
//!   `paper_networks::Network`, and [`runner`], a runner of them;
//! * [`config`], [`plan`], [`run`] and [`run_here`]: `experiments::reproduce` over the
//!   registry, the networks named by name.
//!
//! Adding a network to the paper's set: its model crate, one arm of `nets::ModelConfig` and
//! `paper_networks::Network`, and one row of [`ENTRIES`]. A network of your own needs none
//! of these (see `examples/custom-model`).

mod entries;

use burn::tensor::{Device, Tensor};
use experiments::executor::Executor;
use experiments::models::{InputShape, ModelFactory};
use experiments::registry::Entry;
use experiments::reproduce::{self, EpochLength, ModelRuns, Outcome};
use experiments::runs::{DataCache, Plan, Runner};
use experiments::{Error, Result};
use nets::ModelConfig;
use nets::activations::Tap;
use paper_networks::Network;
use results::{ReproduceConfig, Results, Scale};
use store::Store;
use train::Recipe;

pub use self::entries::ENTRIES;

/// The entry called `name` (a name given on the command line or in a config).
pub fn entry(name: &str) -> Result<&'static Entry> {
    ENTRIES
        .iter()
        .find(|e| e.name == name)
        .ok_or_else(|| Error::UnknownNetwork {
            name: name.to_string(),
            known: names().join(", "),
        })
}

/// The names of every entry, in Table 1 order.
pub fn names() -> Vec<&'static str> {
    ENTRIES.iter().map(|e| e.name).collect()
}

/// The Table 1 recipe called `name`.
pub fn recipe(name: &str) -> Result<Recipe> {
    Ok((entry(name)?.recipe)())
}

/// The networks `reproduce` runs at `scale` when none are named: every entry at paper scale,
/// those with a medium cut at medium scale, the quick set at smoke and quick scale.
pub fn default_networks(scale: Scale) -> Vec<String> {
    ENTRIES
        .iter()
        .filter(|e| match scale {
            Scale::Paper => true,
            Scale::Medium => e.medium.is_some(),
            Scale::Smoke | Scale::Quick => e.in_quick_set,
        })
        .map(|e| e.name.to_string())
        .collect()
}

/// The networks of the paper: every arm of `nets::ModelConfig` as a `paper_networks::Network`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PaperNetworks;

impl ModelFactory for PaperNetworks {
    type Model = Network;

    fn build(
        &self,
        config: &ModelConfig,
        input: InputShape,
        device: &Device,
    ) -> nets::Result<Network> {
        Network::build(
            config,
            input.channels,
            input.size,
            input.num_classes,
            device,
        )
    }

    fn activations(&self, model: &Network, images: Tensor<4>) -> nets::Result<Vec<Tap>> {
        model.activations(images)
    }
}

/// A runner of the paper's networks.
pub fn runner(store: Store, data: DataCache, device: &Device) -> Runner<PaperNetworks> {
    Runner::with_models(store, data, device, PaperNetworks)
}

/// Every figure of the networks `reproduce` runs by default at `scale`.
pub fn config(scale: Scale) -> ReproduceConfig {
    ReproduceConfig::new(scale, default_networks(scale))
}

/// The registry entries of the networks of `config` (none named: the scale's defaults).
pub fn entries(config: &ReproduceConfig) -> Result<Vec<&'static Entry>> {
    if config.models.is_empty() {
        return default_networks(config.scale)
            .iter()
            .map(|name| entry(name))
            .collect();
    }
    config.models.iter().map(|name| entry(name)).collect()
}

/// Plans every run of `config` (nothing is trained, no data is read).
pub fn plan(config: &ReproduceConfig, epochs: &dyn EpochLength) -> Result<(Plan, Vec<ModelRuns>)> {
    reproduce::plan_networks(config, &entries(config)?, epochs)
}

/// [`run`] in this process: `workers` runs at a time, data and store of `runner`, no
/// progress bar.
pub fn run_here(
    config: &ReproduceConfig,
    runner: &Runner<PaperNetworks>,
    workers: usize,
) -> Result<Results> {
    reproduce::run_networks_here(config, &entries(config)?, runner, workers)
}

/// Plans everything `config` needs, has `executor` bring it to completion, and reads the
/// results back from `store`: the whole of `reproduce` apart from rendering.
pub fn run(
    config: &ReproduceConfig,
    epochs: &dyn EpochLength,
    executor: &dyn Executor,
    store: &Store,
) -> Result<Outcome> {
    reproduce::run_networks(config, &entries(config)?, epochs, executor, store)
}
