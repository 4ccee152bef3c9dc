//! Which network to build: the paper's architectures with their size knobs, or one of your
//! own, as serialisable data (the `paper-networks` crate builds the paper's).

use serde::{Deserialize, Serialize};

use crate::{Architecture, ImageSize, Symmetry};

/// Which network to build, with its size knobs. Serialised in run configs as e.g.
/// `{ arch = "resnet", depth = 20, width = 16 }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "arch", rename_all = "kebab-case")]
pub enum ModelConfig {
    /// Fully connected ReLU network (Lenet 300-100: `hidden = [300, 100]`).
    Lenet { hidden: Vec<usize> },
    /// CIFAR ResNet of depth `6n + 2` (Resnet-20: depth 20, width 16).
    Resnet { depth: usize, width: usize },
    /// CIFAR VGG-16 with channel counts divided by `width_divisor` (1 = the paper's).
    Vgg16 { width_divisor: usize },
    /// ImageNet ResNet of bottleneck blocks (Resnet-50: depth 50, width 64).
    ImagenetResnet { depth: usize, width: usize },
    /// Inception-v3, with or without its auxiliary classifier.
    InceptionV3 { aux_logits: bool },
    /// A network defined outside this workspace (see `examples/custom-model`), built by the
    /// caller's `experiments::models::ModelFactory`, with the facts the framework needs of
    /// it. Images are fed at their own size unless the recipe's `image_size` says otherwise.
    External {
        name: String,
        /// Layers (parameter paths without `.weight`) left unpruned, e.g. `["fc"]`.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        unpruned_layers: Vec<String>,
        /// Whether it normalises with BN (its statistics can then be re-estimated along an
        /// interpolation path).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        batch_norm: bool,
    },
}

impl ModelConfig {
    pub fn lenet_300_100() -> Self {
        ModelConfig::Lenet {
            hidden: vec![300, 100],
        }
    }

    pub fn resnet20() -> Self {
        ModelConfig::Resnet {
            depth: 20,
            width: 16,
        }
    }

    pub fn vgg16() -> Self {
        ModelConfig::Vgg16 { width_divisor: 1 }
    }

    pub fn resnet50() -> Self {
        ModelConfig::ImagenetResnet {
            depth: 50,
            width: 64,
        }
    }

    pub fn inception_v3() -> Self {
        ModelConfig::InceptionV3 { aux_logits: true }
    }

    /// A short human name: `lenet-300-100`, `resnet-20`, `vgg-16`, `resnet-20-w8`,
    /// `vgg-16/4`, `resnet-50`, `inception-v3`.
    pub fn name(&self) -> String {
        match self {
            ModelConfig::Lenet { hidden } => {
                let widths: Vec<String> = hidden.iter().map(ToString::to_string).collect();
                format!("lenet-{}", widths.join("-"))
            }
            ModelConfig::Resnet { depth, width: 16 } => format!("resnet-{depth}"),
            ModelConfig::Resnet { depth, width } => format!("resnet-{depth}-w{width}"),
            ModelConfig::Vgg16 { width_divisor: 1 } => "vgg-16".into(),
            ModelConfig::Vgg16 { width_divisor } => format!("vgg-16/{width_divisor}"),
            ModelConfig::ImagenetResnet { depth, width: 64 } => format!("resnet-{depth}"),
            ModelConfig::ImagenetResnet { depth, width } => format!("resnet-{depth}-w{width}"),
            ModelConfig::InceptionV3 { aux_logits: true } => "inception-v3".into(),
            ModelConfig::InceptionV3 { aux_logits: false } => "inception-v3-noaux".into(),
            ModelConfig::External { name, .. } => name.clone(),
        }
    }

    /// Every fact the framework needs of the architecture, one arm per network. The CIFAR
    /// conv nets take 32x32 images (smaller ones, such as 28x28 MNIST, are zero-padded);
    /// Resnet-50 takes 224x224 crops and Inception-v3 299x299. Lenet and VGG-16 leave their
    /// output layer unpruned, the ResNets and Inception-v3 nothing.
    pub fn architecture(&self) -> Architecture {
        match self {
            ModelConfig::Lenet { .. } => Architecture {
                image_size: ImageSize::Native,
                min_image_size: 1,
                unpruned_layers: vec!["Lenet.output".into()],
                batch_norm: false,
                symmetry: Symmetry::FullyConnected,
            },
            ModelConfig::Resnet { .. } => Architecture {
                image_size: ImageSize::AtLeast(32),
                min_image_size: 4,
                unpruned_layers: vec![],
                batch_norm: true,
                symmetry: Symmetry::Residual {
                    inner: &["conv1", "conv2"],
                },
            },
            ModelConfig::Vgg16 { .. } => Architecture {
                image_size: ImageSize::AtLeast(32),
                min_image_size: 16,
                unpruned_layers: vec!["Vgg.fc".into()],
                batch_norm: true,
                symmetry: Symmetry::ConvChain,
            },
            ModelConfig::ImagenetResnet { .. } => Architecture {
                image_size: ImageSize::Fixed(224),
                min_image_size: 32,
                unpruned_layers: vec![],
                batch_norm: true,
                symmetry: Symmetry::Residual {
                    inner: &["reduce", "conv", "expand"],
                },
            },
            ModelConfig::InceptionV3 { .. } => Architecture {
                image_size: ImageSize::Fixed(299),
                min_image_size: 75,
                unpruned_layers: vec![],
                batch_norm: true,
                symmetry: Symmetry::Unknown,
            },
            // An external network states its own facts.
            ModelConfig::External {
                unpruned_layers,
                batch_norm,
                ..
            } => Architecture {
                image_size: ImageSize::Native,
                min_image_size: 1,
                unpruned_layers: unpruned_layers.clone(),
                batch_norm: *batch_norm,
                symmetry: Symmetry::Unknown,
            },
        }
    }
}

impl std::fmt::Display for ModelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_round_trips_through_toml_like_serde() {
        for config in [
            ModelConfig::lenet_300_100(),
            ModelConfig::resnet20(),
            ModelConfig::Vgg16 { width_divisor: 4 },
        ] {
            let json = serde_json::to_string(&config).expect("serialise");
            assert_eq!(
                serde_json::from_str::<ModelConfig>(&json).expect("parse"),
                config
            );
        }
        assert_eq!(ModelConfig::Vgg16 { width_divisor: 4 }.name(), "vgg-16/4");
    }
}
