use std::collections::HashMap;

use burn::module::{Module, ModuleDisplay, Param};
use burn::tensor::{Device, Tensor};
use nets::Classifier;
use nets::params::{
    TensorInfo, from_vec, layer_of, map_tensors, tensor_infos, tensor_values, to_vec,
};
use rand::SeedableRng;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

pub use results::LayerDensity;

use crate::{Error, Result};

/// Which tensors may be pruned: conv and linear weights, except those of the listed layers
/// (layer paths such as `Lenet.output`; a weight `P.weight` belongs to layer `P`); and how:
/// globally by magnitude, except the layers given a rate of their own.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PruneRule {
    pub unpruned_layers: Vec<String>,
    /// Layers pruned at a rate of their own, by magnitude within the layer: each pruning round
    /// removes that fraction of the layer's surviving weights, while the other prunable layers
    /// share the round's global fraction among themselves. Empty (the paper's global pruning)
    /// is left out of the serialised rule, so run identities without it are unchanged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub layer_rates: Vec<LayerRate>,
    /// Layer-wise pruning: every pruned layer without a rate of its own loses the round's
    /// fraction of its own surviving weights (each layer keeps the same density), instead of
    /// sharing it globally. Left out of the serialised rule when off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub layerwise: bool,
}

/// A layer's own pruning rate: the fraction of its surviving weights each round removes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LayerRate {
    pub layer: String,
    pub fraction: f64,
}

impl std::str::FromStr for LayerRate {
    type Err = Error;
    /// `LAYER=FRACTION`, e.g. `Lenet.hidden.0=0.1`.
    fn from_str(s: &str) -> Result<LayerRate> {
        let parsed = s
            .split_once('=')
            .and_then(|(layer, f)| Some((layer.trim(), f.trim().parse::<f64>().ok()?)));
        match parsed {
            Some((layer, fraction)) if !layer.is_empty() && (0.0..1.0).contains(&fraction) => {
                Ok(LayerRate {
                    layer: layer.to_string(),
                    fraction,
                })
            }
            _ => Err(Error::Invalid(format!(
                "`{s}` is not LAYER=FRACTION with a fraction in [0, 1) (e.g. Lenet.hidden.0=0.1)"
            ))),
        }
    }
}

impl PruneRule {
    /// The paper's framework's rule for `model`: every conv and linear weight except the
    /// layers the architecture leaves unpruned (see [`nets::Architecture::unpruned_layers`]).
    pub fn for_model(model: &nets::ModelConfig) -> PruneRule {
        PruneRule {
            unpruned_layers: model.architecture().unpruned_layers,
            layer_rates: vec![],
            layerwise: false,
        }
    }

    pub fn is_prunable(&self, info: &TensorInfo) -> bool {
        info.role.is_layer_weight() && !self.unpruned_layers.iter().any(|l| l == info.layer())
    }

    /// Refuses a layer rate for a layer `model` does not prune under this rule (a typo, or a
    /// layer listed as unpruned), naming the layers it prunes.
    pub fn check_layer_rates<M: Module>(&self, model: &M) -> Result<()> {
        let pruned: Vec<String> = tensor_infos(model)
            .into_iter()
            .filter(|i| self.is_prunable(i))
            .map(|i| i.layer().to_string())
            .collect();
        for (i, rate) in self.layer_rates.iter().enumerate() {
            if let Some(earlier) = self.layer_rates[..i].iter().find(|o| o.layer == rate.layer) {
                return Err(Error::Invalid(format!(
                    "layer {} has two rates ({} and {}): give each layer one",
                    rate.layer, earlier.fraction, rate.fraction
                )));
            }
        }
        match self
            .layer_rates
            .iter()
            .find(|r| !pruned.contains(&r.layer) || !(0.0..1.0).contains(&r.fraction))
        {
            None => Ok(()),
            Some(rate) => Err(Error::Invalid(format!(
                "layer rate {}={}: no pruned layer of this network has that path (or the \
                 fraction is not in [0, 1)); the pruned layers are {}",
                rate.layer,
                rate.fraction,
                pruned.join(", ")
            ))),
        }
    }

    /// The rate of the layer a masked tensor (`P.weight`) belongs to, if it has its own.
    fn own_rate(&self, tensor_path: &str) -> Option<f64> {
        let layer = layer_of(tensor_path);
        self.layer_rates
            .iter()
            .find(|r| r.layer == layer)
            .map(|r| r.fraction)
    }
}

/// One binary mask (flattened, values exactly 0.0 or 1.0) per prunable tensor, in traversal
/// order. The masks are non-trainable parameters, so they travel with the model's record.
#[derive(Module, Debug)]
pub struct MaskSet {
    pub masks: Vec<Param<Tensor<1>>>,
    /// Paths of the masked tensors (derived from the model and the rule, not stored).
    #[module(skip)]
    pub paths: Vec<String>,
}

impl MaskSet {
    /// Masks from host values (exactly 0.0 or 1.0), one per path.
    pub fn from_host(paths: Vec<String>, values: Vec<Vec<f32>>, device: &Device) -> Self {
        let masks = values
            .into_iter()
            .map(|v| Param::from_tensor(from_vec(v, device)).set_require_grad(false))
            .collect();
        MaskSet { masks, paths }
    }

    /// The masks on the host, by path.
    pub fn to_host(&self) -> Vec<(String, Vec<f32>)> {
        self.paths
            .iter()
            .cloned()
            .zip(self.masks.iter().map(|m| to_vec(m.val())))
            .collect()
    }

    /// True when every weight kept by `self` is kept by `other` (`self` is nested in it).
    pub fn is_subset_of(&self, other: &MaskSet) -> bool {
        self.paths == other.paths
            && self
                .to_host()
                .iter()
                .zip(other.to_host())
                .all(|((_, a), (_, b))| {
                    a.len() == b.len() && a.iter().zip(&b).all(|(x, y)| *x <= *y)
                })
    }
}

/// Density overall (over prunable weights) and per layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Density {
    pub kept: usize,
    pub total: usize,
    pub layers: Vec<LayerDensity>,
}

impl Density {
    pub fn fraction(&self) -> f64 {
        self.kept as f64 / self.total.max(1) as f64
    }
}

/// A model with its pruning masks. The masked weights of `model` are kept at exactly zero by
/// [`Sparse::apply`] (called at construction, after pruning and after every training step).
#[derive(Module, Debug)]
pub struct Sparse<M: Module + ModuleDisplay> {
    pub model: M,
    pub mask: MaskSet,
}

impl<M: Classifier> Classifier for Sparse<M> {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.model.forward(images)
    }

    fn forward_train(&self, images: Tensor<4>) -> Vec<(f32, Tensor<2>)> {
        self.model.forward_train(images)
    }

    fn draws_random_numbers(&self) -> bool {
        self.model.draws_random_numbers()
    }
}

fn device_of<M: Module>(model: &M) -> Device {
    model.devices().into_iter().next().unwrap_or_default()
}

impl<M: Module + ModuleDisplay> Sparse<M> {
    /// `model` with an all-ones mask over the tensors `rule` makes prunable.
    pub fn dense(model: M, rule: &PruneRule) -> Self {
        let device = device_of(&model);
        let (paths, values) = tensor_infos(&model)
            .into_iter()
            .filter(|i| rule.is_prunable(i))
            .map(|i| {
                let n = i.numel();
                (i.path, vec![1.0; n])
            })
            .unzip();
        Sparse {
            model,
            mask: MaskSet::from_host(paths, values, &device),
        }
    }

    /// `model` with the given masks (matched by path), applied.
    pub fn with_mask(model: M, mask: MaskSet) -> Result<Self> {
        let infos: HashMap<String, usize> = tensor_infos(&model)
            .into_iter()
            .map(|i| (i.path.clone(), i.numel()))
            .collect();
        for (path, m) in mask.paths.iter().zip(&mask.masks) {
            match infos.get(path) {
                Some(&n) if n == m.val().dims()[0] => {}
                Some(&n) => {
                    return Err(Error::Invalid(format!(
                        "mask of {path} has {} entries but the tensor has {n}",
                        m.val().dims()[0]
                    )));
                }
                None => {
                    return Err(Error::Invalid(format!(
                        "the model has no tensor {path} to mask"
                    )));
                }
            }
        }
        Ok(Sparse { model, mask }.apply())
    }

    /// Multiplies every masked tensor by its mask (pruned weights become exactly 0).
    pub fn apply(self) -> Self {
        let Sparse { model, mask } = self;
        let by_path: HashMap<&str, Tensor<1>> = mask
            .paths
            .iter()
            .map(String::as_str)
            .zip(mask.masks.iter().map(|m| m.val()))
            .collect();
        let model = map_tensors(model, |info, t| match by_path.get(info.path.as_str()) {
            Some(m) => t * m.clone(),
            None => t,
        });
        Sparse { model, mask }
    }

    pub fn density(&self) -> Density {
        let layers: Vec<LayerDensity> = self
            .mask
            .to_host()
            .into_iter()
            .map(|(path, m)| LayerDensity {
                kept: m.iter().filter(|&&v| v != 0.0).count(),
                total: m.len(),
                path,
            })
            .collect();
        Density {
            kept: layers.iter().map(|l| l.kept).sum(),
            total: layers.iter().map(|l| l.total).sum(),
            layers,
        }
    }

    /// Global magnitude pruning: removes `round(fraction x remaining)` of the surviving
    /// prunable weights with the smallest magnitudes across all masked layers together. Ties
    /// are broken by position (layer order, then index), so the result is deterministic.
    pub fn prune_magnitude(self, fraction: f64) -> Result<Self> {
        self.prune(fraction, None)
    }

    /// Magnitude pruning by `rule`'s layer rates: every masked layer with a rate of its own
    /// loses `round(rate x its surviving weights)` by magnitude within the layer; the other
    /// layers lose `round(fraction x their surviving weights)` globally among themselves (all
    /// of them, as [`Sparse::prune_magnitude`], when the rule has no layer rates), or each
    /// within itself when the rule is [`PruneRule::layerwise`]. A rate for
    /// a layer the rule does not prune is refused ([`PruneRule::check_layer_rates`]).
    pub fn prune_by_rule(self, fraction: f64, rule: &PruneRule) -> Result<Self> {
        rule.check_layer_rates(&self.model)?;
        let groups: Vec<(f64, Vec<usize>)> = {
            let mut global = Vec::new();
            let mut own = Vec::new();
            for (layer, path) in self.mask.paths.iter().enumerate() {
                match rule.own_rate(path) {
                    Some(rate) => own.push((rate, vec![layer])),
                    None if rule.layerwise => own.push((fraction, vec![layer])),
                    None => global.push(layer),
                }
            }
            own.push((fraction, global));
            own
        };
        let mut pruned = self;
        for (fraction, layers) in groups.iter().filter(|(_, layers)| !layers.is_empty()) {
            pruned = pruned.prune(*fraction, Some(layers))?;
        }
        Ok(pruned)
    }

    /// Removes `round(fraction x surviving)` of the weights of the masked layers `only` (all
    /// of them when `None`) with the smallest magnitudes among those layers.
    fn prune(self, fraction: f64, only: Option<&[usize]>) -> Result<Self> {
        if !(0.0..=1.0).contains(&fraction) {
            return Err(Error::Invalid(format!(
                "pruning fraction {fraction} is not in [0, 1]"
            )));
        }
        let weights: HashMap<String, Vec<f32>> = tensor_values(&self.model)
            .into_iter()
            .map(|(i, v)| (i.path, v))
            .collect();
        let mut masks: Vec<Vec<f32>> = self.mask.to_host().into_iter().map(|(_, m)| m).collect();
        let mut alive: Vec<(f32, usize, usize)> = Vec::new();
        for (layer, (path, mask)) in self.mask.paths.iter().zip(&masks).enumerate() {
            if only.is_some_and(|only| !only.contains(&layer)) {
                continue;
            }
            let w = &weights[path];
            alive.extend(
                mask.iter()
                    .enumerate()
                    .filter(|(_, m)| **m != 0.0)
                    .map(|(i, _)| (w[i].abs(), layer, i)),
            );
        }
        let n = (fraction * alive.len() as f64).round() as usize;
        if n > 0 {
            alive.select_nth_unstable_by(n - 1, |a, b| {
                a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2))
            });
            for &(_, layer, i) in &alive[..n] {
                masks[layer][i] = 0.0;
            }
        }
        let device = device_of(&self.model);
        let mask = MaskSet::from_host(self.mask.paths.clone(), masks, &device);
        Ok(Sparse {
            model: self.model,
            mask,
        }
        .apply())
    }

    /// One-shot pruning to `density` of the prunable weights (from the current mask).
    pub fn prune_to_density(self, density: f64) -> Result<Self> {
        let d = self.density();
        let target = (density * d.total as f64).round() as usize;
        if target > d.kept {
            return Err(Error::Invalid(format!(
                "density {density} is above the current {:.4}",
                d.fraction()
            )));
        }
        let fraction = (d.kept - target) as f64 / d.kept.max(1) as f64;
        self.prune_magnitude(fraction)
    }

    /// A random mask with exactly the same number of kept weights in every layer as this one,
    /// drawn from `seed`, applied to `model`.
    pub fn random_mask_like(&self, model: M, seed: u64) -> Result<Sparse<M>> {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let device = device_of(&model);
        let values = self
            .density()
            .layers
            .iter()
            .map(|l| {
                let mut m = vec![0.0f32; l.total];
                for i in sample(&mut rng, l.total, l.kept) {
                    m[i] = 1.0;
                }
                m
            })
            .collect();
        Sparse::with_mask(
            model,
            MaskSet::from_host(self.mask.paths.clone(), values, &device),
        )
    }

    /// Copies this mask onto another model of the same architecture (e.g. rewound weights).
    pub fn transplant(&self, model: M) -> Result<Sparse<M>> {
        let device = device_of(&model);
        let values = self.mask.to_host().into_iter().map(|(_, m)| m).collect();
        Sparse::with_mask(
            model,
            MaskSet::from_host(self.mask.paths.clone(), values, &device),
        )
    }
}

/// Re-applies the mask after every optimiser step.
pub struct MaskHook;

impl<M: Module + ModuleDisplay> train::TrainHooks<Sparse<M>> for MaskHook {
    fn after_step(&mut self, model: Sparse<M>, _step: u64) -> train::Result<Sparse<M>> {
        Ok(model.apply())
    }
}
