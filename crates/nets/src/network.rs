use burn::module::Module;
use burn::tensor::{Device, Tensor};
use inception::{InceptionV3, InceptionV3Config};
use lenet::{Lenet, LenetConfig};
use resnet::{CifarResnet, CifarResnetConfig, ImagenetResnet, ImagenetResnetConfig};
use serde::{Deserialize, Serialize};
use vgg::{Vgg, VggConfig};

use crate::{Architecture, Error, ImageSize, Result, Symmetry};

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

    /// Builds the network for `channels x size x size` images and `num_classes` classes. The
    /// weights are burn's defaults: call [`crate::initialize`] to draw them from a seed.
    pub fn build(
        &self,
        channels: usize,
        size: usize,
        num_classes: usize,
        device: &Device,
    ) -> Result<Network> {
        if channels == 0 || size == 0 || num_classes == 0 {
            return Err(Error::Invalid(format!(
                "cannot build {} for {channels}x{size}x{size} images and {num_classes} classes",
                self.name()
            )));
        }
        Ok(match self {
            ModelConfig::Lenet { hidden } => Network::Lenet(
                LenetConfig::new()
                    .with_input(channels * size * size)
                    .with_hidden(hidden.clone())
                    .with_num_classes(num_classes)
                    .init(device),
            ),
            ModelConfig::Resnet { depth, width } => {
                if !size.is_multiple_of(4) {
                    return Err(Error::Invalid(format!(
                        "{} needs an image side divisible by 4, got {size}",
                        self.name()
                    )));
                }
                Network::Resnet(
                    CifarResnetConfig::new()
                        .with_depth(*depth)
                        .with_width(*width)
                        .with_in_channels(channels)
                        .with_num_classes(num_classes)
                        .init(device)?,
                )
            }
            ModelConfig::Vgg16 { width_divisor } => {
                if size < 16 || !size.is_multiple_of(16) {
                    return Err(Error::Invalid(format!(
                        "vgg-16 needs an image side divisible by 16, got {size}"
                    )));
                }
                Network::Vgg(
                    VggConfig::vgg16(channels)
                        .with_width_divisor(*width_divisor)
                        .with_num_classes(num_classes)
                        .init(device),
                )
            }
            ModelConfig::ImagenetResnet { depth, width } => {
                self.check_min_size(size)?;
                Network::ImagenetResnet(
                    ImagenetResnetConfig::new()
                        .with_depth(*depth)
                        .with_width(*width)
                        .with_in_channels(channels)
                        .with_num_classes(num_classes)
                        .init(device)?,
                )
            }
            ModelConfig::InceptionV3 { aux_logits } => {
                self.check_min_size(size)?;
                Network::InceptionV3(
                    InceptionV3Config::new()
                        .with_in_channels(channels)
                        .with_num_classes(num_classes)
                        .with_aux_logits(*aux_logits)
                        .init(device),
                )
            }
            ModelConfig::External { name, .. } => {
                return Err(Error::Invalid(format!(
                    "`{name}` is defined outside this workspace: build it with your own \
                     `experiments::models::ModelFactory` (see examples/custom-model)"
                )));
            }
        })
    }

    fn check_min_size(&self, size: usize) -> Result<()> {
        let min = self.architecture().min_image_size;
        if size < min {
            return Err(Error::Invalid(format!(
                "{} needs images of at least {min}x{min}, got {size}x{size}",
                self.name()
            )));
        }
        Ok(())
    }
}

impl std::fmt::Display for ModelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// Any of the networks, as one burn module.
// The variants are moved, not copied, and a model exists a handful of times per process.
#[allow(clippy::large_enum_variant)]
#[derive(Module, Debug)]
pub enum Network {
    Lenet(Lenet),
    Resnet(CifarResnet),
    Vgg(Vgg),
    ImagenetResnet(ImagenetResnet),
    InceptionV3(InceptionV3),
}

impl Network {
    /// # Shapes
    ///   - Images `[batch, channels, size, size]`
    ///   - Output `[batch, num_classes]` (logits)
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        match self {
            Network::Lenet(m) => m.forward(images),
            Network::Resnet(m) => m.forward(images),
            Network::Vgg(m) => m.forward(images),
            Network::ImagenetResnet(m) => m.forward(images),
            Network::InceptionV3(m) => m.forward(images),
        }
    }

    /// The logits the training loss is made of, with their weights: the main logits with
    /// weight 1, plus Inception-v3's auxiliary logits with weight 0.4 where its head runs.
    pub fn forward_train(&self, images: Tensor<4>) -> Vec<(f32, Tensor<2>)> {
        match self {
            Network::InceptionV3(m) => {
                let (logits, aux) = m.forward_with_aux(images);
                std::iter::once((1.0, logits))
                    .chain(aux.map(|a| (inception::AUX_LOSS_WEIGHT, a)))
                    .collect()
            }
            other => vec![(1.0, other.forward(images))],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{LayerKind, TensorRole, tensor_infos, trainable_params};

    #[test]
    fn builds_every_architecture_with_exact_counts() {
        let device = Device::default();
        let lenet = ModelConfig::lenet_300_100()
            .build(1, 28, 10, &device)
            .expect("lenet");
        assert_eq!(trainable_params(&lenet), 266_610);
        let resnet = ModelConfig::resnet20()
            .build(3, 32, 10, &device)
            .expect("resnet");
        assert_eq!(trainable_params(&resnet), 272_474);
        let vgg = ModelConfig::vgg16().build(3, 32, 10, &device).expect("vgg");
        assert_eq!(trainable_params(&vgg), 14_728_266);
        let grey = ModelConfig::resnet20()
            .build(1, 32, 10, &device)
            .expect("grey");
        assert_eq!(
            grey.forward(Tensor::zeros([1, 1, 32, 32], &device)).dims(),
            [1, 10]
        );
        assert!(ModelConfig::vgg16().build(1, 28, 10, &device).is_err());
    }

    /// burn's `RunningState` keeps a forward's update aside until something syncs it; reading
    /// and rewriting tensors must see it (and a rewrite must not be undone by it later).
    #[test]
    fn running_statistics_are_read_and_written_up_to_date() {
        use crate::params::{map_tensors, tensor_values};
        let device = Device::default().autodiff();
        let net = ModelConfig::Resnet { depth: 8, width: 2 }
            .build(1, 8, 10, &device)
            .expect("resnet");
        let running_var = |net: &Network| {
            tensor_values(net)
                .into_iter()
                .find(|(i, _)| i.path.ends_with("stem.bn.running_var"))
                .map(|(_, v)| v)
                .expect("stem BN")
        };
        assert!(running_var(&net).iter().all(|&v| v == 1.0));
        let images = Tensor::<4>::ones([4, 1, 8, 8], &device).cumsum(3);
        let _ = net.forward(images.clone());
        // Variance of the stem's output moved the statistics away from 1 in the first forward.
        assert!(running_var(&net).iter().all(|&v| v != 1.0));
        let _ = net.forward(images);
        let reset = map_tensors(net, |info, t| match info.role {
            TensorRole::BnRunningVar => t.ones_like(),
            _ => t,
        });
        let valid = reset.valid();
        assert!(running_var(&valid).iter().all(|&v| v == 1.0));
    }

    #[test]
    fn paths_and_roles() {
        let device = Device::default();
        let lenet = ModelConfig::lenet_300_100()
            .build(1, 28, 10, &device)
            .expect("lenet");
        let infos = tensor_infos(&lenet);
        let paths: Vec<&str> = infos.iter().map(|i| i.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "Lenet.hidden.0.weight",
                "Lenet.hidden.0.bias",
                "Lenet.hidden.1.weight",
                "Lenet.hidden.1.bias",
                "Lenet.output.weight",
                "Lenet.output.bias"
            ]
        );
        assert_eq!(
            infos[4].layer(),
            ModelConfig::lenet_300_100().architecture().unpruned_layers[0]
        );
        assert_eq!(
            infos
                .iter()
                .filter(|i| i.role == TensorRole::Weight(LayerKind::Linear))
                .count(),
            3
        );
        let resnet = ModelConfig::resnet20()
            .build(3, 32, 10, &device)
            .expect("resnet");
        let infos = tensor_infos(&resnet);
        assert_eq!(
            infos
                .iter()
                .filter(|i| i.role == TensorRole::Weight(LayerKind::Conv2d))
                .count(),
            21
        );
        assert_eq!(
            infos
                .iter()
                .filter(|i| i.role == TensorRole::BnRunningVar)
                .count(),
            21
        );
    }

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
