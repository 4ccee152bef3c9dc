//! Which tensor axes each permutation group moves.

use std::collections::HashMap;

use burn::module::Module;
use nets::Symmetry;
use nets::params::{LayerKind, TensorInfo, TensorRole, tensor_infos};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// One axis of one tensor that a permutation moves.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Axis {
    /// The tensor's path (`Lenet.hidden.0.weight`).
    pub path: String,
    pub axis: usize,
}

/// Hidden units that are permuted together: the output units of one layer (or of a residual
/// stream: every layer that writes to it), their biases and BN entries, and the inputs of the
/// layers that read them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    /// What the units are (`hidden.0`, `stream.1`, `blocks.3.conv1`).
    pub name: String,
    pub size: usize,
    pub axes: Vec<Axis>,
}

/// Every permutation symmetry of a network that weight matching uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermutationSpec {
    pub groups: Vec<Group>,
}

impl PermutationSpec {
    /// The spec of `network` (a `paper_networks::Network` or one of the model crates' networks) for its
    /// architecture's `symmetry` ([`nets::Architecture::symmetry`]), from its tensor paths:
    /// Lenet (each hidden layer), VGG (each conv + BN), the CIFAR Resnets and ImageNet Resnets
    /// (one group per residual stream, tied across the identity shortcuts, and one per inner
    /// layer of each block).
    pub fn of<M: Module>(network: &M, symmetry: &Symmetry) -> Result<PermutationSpec> {
        let infos = tensor_infos(network);
        let root = infos
            .first()
            .and_then(|i| i.path.split('.').next())
            .unwrap_or("")
            .to_string();
        let mut b = Builder::new(&root, &infos);
        match symmetry {
            Symmetry::FullyConnected => b.lenet()?,
            Symmetry::ConvChain => b.vgg()?,
            Symmetry::Residual { inner } => b.residual(inner)?,
            Symmetry::Unknown => return Err(Error::Unsupported(root.clone())),
        }
        // A symmetry that is not the network's finds none of its layers.
        if b.groups.is_empty() {
            return Err(Error::Spec(format!(
                "`{root}` has no layers of a {symmetry:?} network to permute"
            )));
        }
        let spec = PermutationSpec { groups: b.groups };
        spec.check(&infos)?;
        Ok(spec)
    }

    /// Every axis names a tensor of `infos` whose dimension is the group's size, and no axis
    /// is claimed twice.
    pub fn check(&self, infos: &[TensorInfo]) -> Result<()> {
        let shapes: HashMap<&str, &[usize]> = infos
            .iter()
            .map(|i| (i.path.as_str(), i.shape.as_slice()))
            .collect();
        let mut seen = HashMap::new();
        for g in &self.groups {
            for a in &g.axes {
                let shape = shapes
                    .get(a.path.as_str())
                    .ok_or_else(|| Error::Spec(format!("no tensor {}", a.path)))?;
                if shape.get(a.axis) != Some(&g.size) {
                    return Err(Error::Spec(format!(
                        "{} has shape {shape:?}: axis {} is not {} units of {}",
                        a.path, a.axis, g.size, g.name
                    )));
                }
                if let Some(other) = seen.insert(a.clone(), &g.name) {
                    return Err(Error::Spec(format!(
                        "axis {} of {} is in both {other} and {}",
                        a.axis, a.path, g.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The groups moving an axis of the tensor at `path`, by axis.
    pub(crate) fn axes_of(&self) -> HashMap<&str, Vec<(usize, usize)>> {
        let mut by_path: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
        for (g, group) in self.groups.iter().enumerate() {
            for a in &group.axes {
                by_path
                    .entry(a.path.as_str())
                    .or_default()
                    .push((a.axis, g));
            }
        }
        by_path
    }
}

/// Builds groups from paths relative to the network's root.
struct Builder<'a> {
    root: &'a str,
    infos: HashMap<&'a str, &'a TensorInfo>,
    groups: Vec<Group>,
}

impl<'a> Builder<'a> {
    fn new(root: &'a str, infos: &'a [TensorInfo]) -> Self {
        Builder {
            root,
            infos: infos.iter().map(|i| (i.path.as_str(), i)).collect(),
            groups: Vec::new(),
        }
    }

    fn info(&self, relative: &str) -> Option<&'a TensorInfo> {
        self.infos
            .get(format!("{}.{relative}", self.root).as_str())
            .copied()
    }

    fn axis(&self, relative: &str, axis: usize) -> Axis {
        Axis {
            path: format!("{}.{relative}", self.root),
            axis,
        }
    }

    /// The output units of a conv or linear layer: its weight's output axis and its bias.
    fn outputs(&self, layer: &str) -> Result<Vec<Axis>> {
        let weight = self.weight(layer)?;
        let mut axes = vec![self.axis(
            &format!("{layer}.weight"),
            match weight.role {
                TensorRole::Weight(LayerKind::Linear) => 1,
                _ => 0,
            },
        )];
        if self.info(&format!("{layer}.bias")).is_some() {
            axes.push(self.axis(&format!("{layer}.bias"), 0));
        }
        Ok(axes)
    }

    /// The input units of a conv or linear layer.
    fn inputs(&self, layer: &str) -> Result<Vec<Axis>> {
        let weight = self.weight(layer)?;
        Ok(vec![self.axis(
            &format!("{layer}.weight"),
            match weight.role {
                TensorRole::Weight(LayerKind::Linear) => 0,
                _ => 1,
            },
        )])
    }

    /// A BN layer's scale, shift and running statistics.
    fn batch_norm(&self, layer: &str) -> Result<Vec<Axis>> {
        let axes: Vec<Axis> = ["gamma", "beta", "running_mean", "running_var"]
            .iter()
            .filter(|n| self.info(&format!("{layer}.{n}")).is_some())
            .map(|n| self.axis(&format!("{layer}.{n}"), 0))
            .collect();
        if axes.is_empty() {
            return Err(Error::Spec(format!("no batch norm {}.{layer}", self.root)));
        }
        Ok(axes)
    }

    fn weight(&self, layer: &str) -> Result<&'a TensorInfo> {
        self.info(&format!("{layer}.weight"))
            .filter(|i| i.role.is_layer_weight())
            .ok_or_else(|| Error::Spec(format!("no conv or linear layer {}.{layer}", self.root)))
    }

    fn push(&mut self, name: String, axes: Vec<Axis>) -> Result<()> {
        let first = axes
            .first()
            .ok_or_else(|| Error::Spec(format!("group {name} moves nothing")))?;
        let size = self.infos[first.path.as_str()].shape[first.axis];
        self.groups.push(Group { name, size, axes });
        Ok(())
    }

    /// How many `{prefix}.{i}.{suffix}` tensors there are, counting from 0.
    fn count(&self, prefix: &str, suffix: &str) -> usize {
        (0..)
            .take_while(|i| self.info(&format!("{prefix}.{i}.{suffix}")).is_some())
            .count()
    }

    fn lenet(&mut self) -> Result<()> {
        let hidden = self.count("hidden", "weight");
        for i in 0..hidden {
            let next = if i + 1 < hidden {
                format!("hidden.{}", i + 1)
            } else {
                "output".to_string()
            };
            let layer = format!("hidden.{i}");
            let mut axes = self.outputs(&layer)?;
            axes.extend(self.inputs(&next)?);
            self.push(layer, axes)?;
        }
        Ok(())
    }

    fn vgg(&mut self) -> Result<()> {
        let layers = self.count("layers", "conv.weight");
        for i in 0..layers {
            let next = if i + 1 < layers {
                format!("layers.{}.conv", i + 1)
            } else {
                "fc".to_string()
            };
            let mut axes = self.outputs(&format!("layers.{i}.conv"))?;
            axes.extend(self.batch_norm(&format!("layers.{i}.bn"))?);
            axes.extend(self.inputs(&next)?);
            self.push(format!("layers.{i}"), axes)?;
        }
        Ok(())
    }

    /// A residual network of conv-BN pairs `stem`, `blocks.{b}.{inner}` and optional
    /// `blocks.{b}.shortcut`, read by `fc`. Every layer that adds into a residual stream (the
    /// stem, the last inner layer of each block, projection shortcuts) shares its stream's
    /// group; a projection shortcut starts a new stream.
    fn residual(&mut self, inner: &[&str]) -> Result<()> {
        let conv_bn = |b: &Self, layer: &str| -> Result<Vec<Axis>> {
            let mut axes = b.outputs(&format!("{layer}.conv"))?;
            axes.extend(b.batch_norm(&format!("{layer}.bn"))?);
            Ok(axes)
        };
        let (Some(&first), Some(&last)) = (inner.first(), inner.last()) else {
            return Err(Error::Spec("a residual block needs layers".into()));
        };
        let mut streams: Vec<Vec<Axis>> = vec![conv_bn(self, "stem")?];
        let mut block_groups = Vec::new();
        let blocks = self.count("blocks", &format!("{first}.conv.weight"));
        for b in 0..blocks {
            let input = streams.len() - 1;
            let prefix = format!("blocks.{b}");
            streams[input].extend(self.inputs(&format!("{prefix}.{first}.conv"))?);
            let shortcut = format!("{prefix}.shortcut");
            let output = if self.info(&format!("{shortcut}.conv.weight")).is_some() {
                streams[input].extend(self.inputs(&format!("{shortcut}.conv"))?);
                streams.push(conv_bn(self, &shortcut)?);
                input + 1
            } else {
                input
            };
            for pair in inner.windows(2) {
                let layer = format!("{prefix}.{}", pair[0]);
                let mut axes = conv_bn(self, &layer)?;
                axes.extend(self.inputs(&format!("{prefix}.{}.conv", pair[1]))?);
                block_groups.push((layer, axes));
            }
            streams[output].extend(conv_bn(self, &format!("{prefix}.{last}"))?);
        }
        let end = streams.len() - 1;
        streams[end].extend(self.inputs("fc")?);
        for (s, axes) in streams.into_iter().enumerate() {
            self.push(format!("stream.{s}"), axes)?;
        }
        for (name, axes) in block_groups {
            self.push(name, axes)?;
        }
        Ok(())
    }
}
