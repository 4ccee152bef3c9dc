//! One network's experiments at one scale: the paper's settings, cut as the registry entry
//! says, with every cut written down in words.

use results::{DatasetName, Design, NetworkInfo, ReproduceConfig, Setup};
use serde::{Deserialize, Serialize};
use sparsity::PruneRule;
use train::{EvalConfig, Recipe, Steps};

use crate::imp::ImpConfig;
use crate::registry::{Cut, Entry, KChoice, ScalePolicy};
use crate::runs::{EpochLength, OptimizerAtRewind};
use crate::{Error, Result};

/// Everything one network's experiments use at one scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSetup {
    pub preset: String,
    /// The recipe as run (length, width and dataset already changed for the scale).
    pub recipe: Recipe,
    pub eval: EvalConfig,
    pub curve_eval: EvalConfig,
    pub rule: PruneRule,
    /// The dense recipe at a multiple of `recipe`'s length (the cut's `length_check`).
    #[serde(default)]
    pub length_check: Option<Recipe>,
    #[serde(flatten)]
    pub design: Design,
}

impl ModelSetup {
    /// The scale's IMP series from init `init_seed` rewound to `k`, in the parents' data
    /// order with a fresh optimiser, without baselines (the analyses add theirs).
    pub fn imp_series(&self, k: u64, init_seed: u64) -> ImpConfig {
        ImpConfig {
            recipe: self.recipe.clone(),
            eval: self.eval.clone(),
            init_seed,
            data_seed: self.design.parent_data_seed,
            rewind: k,
            levels: self.design.levels,
            fraction: self.design.fraction,
            rule: self.rule.clone(),
            optimizer_at_rewind: OptimizerAtRewind::Fresh,
            baselines: vec![],
            baseline_levels: vec![],
            baseline_seed: 1000 + init_seed,
        }
    }

    /// The settings of `entry`'s experiments for `config` (its scale, substitutions and BN
    /// policy), every cut of the paper written down in words in the order it is applied.
    pub fn new(
        entry: &Entry,
        config: &ReproduceConfig,
        epochs: &dyn EpochLength,
    ) -> Result<ModelSetup> {
        let cut = entry.cut(config.scale)?;
        let policy = crate::registry::policy(config.scale);
        let mut cuts = Vec::new();
        // Dataset, width and crops first: iterations per epoch depend on the batch size.
        let (recipe, substituted_for) = recipe_as_run(entry, cut, config, &mut cuts);
        let ipe = epochs.iterations_per_epoch(&recipe)?;
        let length = Length::of(recipe, cut, ipe, &mut cuts);
        if policy.cuts_the_paper {
            cuts.push(replicates(policy));
        }
        let ks = Ks::of(entry, cut, ipe, &length, policy.cuts_the_paper, &mut cuts);
        let (levels, fraction) = imp_schedule(entry, cut, policy, &mut cuts);
        let (eval, curve_eval, points) = evaluation(cut, &mut cuts);
        let steps = length.steps;
        let throughout_every = match cut {
            Some(cut) => steps / cut.throughout_divisor,
            None => (steps / 8).max(1),
        };
        if policy.cuts_the_paper {
            cuts.push(format!(
                "Figure 4 interpolates the children every {throughout_every} iterations"
            ));
        }
        Ok(ModelSetup {
            preset: entry.name.to_string(),
            rule: PruneRule::for_model(&length.recipe.model),
            recipe: length.recipe,
            length_check: length.check,
            eval,
            curve_eval,
            design: Design {
                substituted_for,
                init_seeds: policy.init_seeds.to_vec(),
                data_seeds: policy.data_seeds.to_vec(),
                parent_data_seed: policy.parent_data_seed,
                dense_ks: ks.dense,
                sparse_ks: ks.sparse,
                throughout_every,
                points,
                levels,
                fraction,
                baseline_levels: policy.baseline_levels(levels),
                baseline_ks: ks.baselines,
                bn_policy: config.bn_policy,
                total_steps: steps,
                iterations_per_epoch: ipe,
                cuts,
            },
        })
    }

    /// The setup as `results.json` records it.
    pub fn record(&self, entry: &Entry) -> Result<Setup> {
        Ok(Setup {
            preset: self.preset.clone(),
            recipe: json(&self.recipe)?,
            eval: json(&self.eval)?,
            curve_eval: json(&self.curve_eval)?,
            rule: json(&self.rule)?,
            design: self.design.clone(),
            network: NetworkInfo {
                title: entry.title.to_string(),
                model: self.recipe.model.to_string(),
                dataset: self.recipe.data.dataset,
                k_unit: entry.ks.unit,
                paper: entry.paper.map(|p| p.reference()),
            },
        })
    }
}

/// A configuration as JSON, for the record.
fn json<T: Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|e| Error::Invalid(e.to_string()))
}

/// The evaluation of training runs and of interpolation curves, and the points per curve.
fn evaluation(cut: Option<&Cut>, cuts: &mut Vec<String>) -> (EvalConfig, EvalConfig, usize) {
    let Some(cut) = cut else {
        let curve = EvalConfig {
            every: None,
            ..EvalConfig::default()
        };
        return (EvalConfig::default(), curve, 30);
    };
    let e = cut.eval;
    let eval = EvalConfig {
        every: e.every.map(Steps::iterations),
        train_subset: Some(e.train_subset),
        test_subset: e.test_subset,
        batch_size: e.batch_size,
    };
    cuts.extend(cut.eval_notes.iter().map(|n| n.to_string()));
    let curve = EvalConfig {
        every: None,
        train_subset: e.curve_subset.or(eval.train_subset),
        test_subset: e.curve_subset.or(eval.test_subset),
        ..eval.clone()
    };
    if let Some(n) = e.curve_subset {
        cuts.push(format!(
            "interpolation paths evaluated on the first {n} test and train examples"
        ));
    }
    (eval, curve, e.points)
}

/// `entry`'s recipe on the dataset `config` uses for the paper's, with the cut's architecture
/// and crops, and the paper's dataset where another stands in.
fn recipe_as_run(
    entry: &Entry,
    cut: Option<&Cut>,
    config: &ReproduceConfig,
    cuts: &mut Vec<String>,
) -> (Recipe, Option<DatasetName>) {
    let mut recipe = (entry.recipe)();
    let paper_dataset = recipe.data.dataset;
    let used = config.dataset_for(paper_dataset);
    let substituted_for = (used != paper_dataset).then(|| {
        recipe.data.dataset = used;
        cuts.push(format!("trained on {used} instead of {paper_dataset}"));
        if cut.is_some_and(|c| c.substitute_own_augmentation) {
            let own = data::Augmentation::default_for(used);
            if own != recipe.data.augmentation {
                recipe.data.augmentation = own;
                cuts.push(match own {
                    data::Augmentation::None => format!(
                        "{used} without augmentation (as the paper trains MNIST) instead of \
                         the recipe's"
                    ),
                    other => format!("{used} with its own augmentation ({other:?})"),
                });
            }
        }
        paper_dataset
    });
    if let Some(cut) = cut {
        if let Some(model) = cut.model {
            recipe.model = model();
        }
        if let Some(images) = cut.images {
            recipe.data = train::DataConfig {
                image_size: Some(images.size),
                batch_size: images.batch,
                micro_batches: 1,
                ..recipe.data
            };
        }
        cuts.extend(cut.note.map(String::from));
    }
    (recipe, substituted_for)
}

/// The training length of a scale: the recipe at the cut's length and the length check's
/// recipe at a multiple of it.
struct Length {
    recipe: Recipe,
    steps: u64,
    paper_steps: u64,
    check: Option<Recipe>,
}

impl Length {
    fn of(recipe: Recipe, cut: Option<&Cut>, ipe: u64, cuts: &mut Vec<String>) -> Length {
        let paper_steps = recipe.training_steps.resolve(ipe);
        let steps = cut.and_then(|c| c.steps).unwrap_or(paper_steps);
        let check = cut.and_then(|c| c.length_check).map(|factor| {
            let long = steps * factor;
            cuts.push(format!(
                "the dense network is also trained for {long} iterations ({factor}x, first init, \
                 parent's data order) to show how far from trained {steps} leave it"
            ));
            recipe.with_length(Steps::iterations(long), ipe)
        });
        let recipe = if steps == paper_steps {
            recipe
        } else {
            cuts.push(format!(
                "{steps} training iterations instead of {paper_steps} (schedule scaled to the length)"
            ));
            recipe.with_length(Steps::iterations(steps), ipe)
        };
        Length {
            recipe,
            steps,
            paper_steps,
            check,
        }
    }
}

/// The scale's replicates in words, beside the paper's 3 inits x 3 data orders.
fn replicates(policy: &ScalePolicy) -> String {
    let (inits, orders) = (policy.init_seeds.len(), policy.data_seeds.len());
    let pairs = orders * orders.saturating_sub(1) / 2;
    let per = if inits == 1 {
        format!("{pairs} pair{} per k", if pairs == 1 { "" } else { "s" })
    } else {
        format!("{pairs} pairs per k and init, {} per k", pairs * inits)
    };
    format!(
        "{inits} init{} x {orders} data orders ({per}) instead of 3 x 3; the parent's order is \
         the first child's",
        if inits == 1 { "" } else { "s" }
    )
}

/// The k values a scale measures: the paper's, scaled to the run's length, as the cut chooses.
struct Ks {
    dense: Vec<u64>,
    sparse: Vec<u64>,
    baselines: Option<Vec<u64>>,
}

impl Ks {
    fn of(
        entry: &Entry,
        cut: Option<&Cut>,
        ipe: u64,
        length: &Length,
        cuts_the_paper: bool,
        cuts: &mut Vec<String>,
    ) -> Ks {
        let (steps, paper_steps) = (length.steps, length.paper_steps);
        let (unscaled_ks, paper_stable_k) = entry.ks.iterations(ipe);
        let factor = steps as f64 / paper_steps as f64;
        let mut paper_ks: Vec<u64> = unscaled_ks
            .iter()
            .map(|&k| (k as f64 * factor).round() as u64)
            .filter(|&k| k < steps)
            .collect();
        paper_ks.dedup();
        // The paper's "stable" k, scaled to the length.
        let stable_k = paper_ks
            .iter()
            .copied()
            .find(|&k| k as f64 >= (paper_stable_k as f64 * factor).round());
        let choose = |choice: Option<KChoice>| -> Vec<u64> {
            let mut ks = match choice {
                None => paper_ks.clone(),
                Some(KChoice::Listed(ks)) => ks.to_vec(),
                Some(KChoice::ZeroStableLast) => std::iter::once(0)
                    .chain(stable_k)
                    .chain(paper_ks.last().copied())
                    .collect(),
                Some(KChoice::ZeroStable) => std::iter::once(0).chain(stable_k).collect(),
                Some(KChoice::ZeroQuarter) => vec![0, steps / 4],
                Some(KChoice::Fractions(fractions)) => fractions
                    .iter()
                    .map(|f| (f * steps as f64).round() as u64)
                    .collect(),
            };
            ks.dedup();
            ks
        };
        let dense = choose(cut.map(|c| c.dense_ks));
        let sparse = choose(cut.map(|c| c.sparse_ks));
        let baselines = cut.and_then(|c| c.baseline_ks).map(|c| choose(Some(c)));
        if let Some(ks) = &baselines {
            cuts.push(format!(
                "random pruning and reinitialisation only at k = {ks:?} (the rewind k), with \
                 the sparse instability of IMP alone at the other k"
            ));
        }
        if cuts_the_paper {
            cuts.push(format!(
                "k values: {dense:?} (dense), {sparse:?} (sparse) instead of the paper's {unscaled_ks:?}"
            ));
        }
        Ks {
            dense,
            sparse,
            baselines,
        }
    }
}

/// IMP's rounds and fraction at the scale: fewer, larger rounds to the same density at the
/// smaller scales.
fn imp_schedule(
    entry: &Entry,
    cut: Option<&Cut>,
    policy: &ScalePolicy,
    cuts: &mut Vec<String>,
) -> (usize, f64) {
    let paper = entry.pruning;
    let (levels, fraction) = policy.imp_schedule(
        paper.rounds,
        paper.fraction,
        paper.density(),
        cut.and_then(|c| c.imp_rounds),
    );
    if (levels, fraction) != (paper.rounds, paper.fraction) {
        cuts.push(format!(
            "IMP in {levels} rounds of {:.1}% instead of {} rounds of {:.0}% (same final density)",
            100.0 * fraction,
            paper.rounds,
            100.0 * paper.fraction
        ));
    }
    (levels, fraction)
}
