//! The paper's networks behind one burn module type: [`Network`], built from a
//! [`nets::ModelConfig`] by [`Network::build`] (Lenet, the CIFAR ResNets and VGG-16, Resnet-50
//! and Inception-v3, each from its model crate), a [`nets::Classifier`], with the hidden
//! activations activation matching correlates ([`Network::activations`]).
//!
//! The framework's generic layer (`nets`: parameter paths, initialisation, the `Classifier`
//! trait, each architecture's facts) knows none of these crates; a network of your own needs
//! only that layer.

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use inception::{InceptionV3, InceptionV3Config};
use lenet::{Lenet, LenetConfig};
use nets::activations::{Tap, per_position};
use nets::{Classifier, Error, FromConfig, ModelConfig, Result};
use resnet::{CifarResnet, CifarResnetConfig, ImagenetResnet, ImagenetResnetConfig};
use vgg::{Vgg, VggConfig};

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
    /// Builds the network for `channels x size x size` images and `num_classes` classes. The
    /// weights are burn's defaults: call [`nets::initialize`] to draw them from a seed.
    pub fn build(
        config: &ModelConfig,
        channels: usize,
        size: usize,
        num_classes: usize,
        device: &Device,
    ) -> Result<Network> {
        if channels == 0 || size == 0 || num_classes == 0 {
            return Err(Error::Invalid(format!(
                "cannot build {} for {channels}x{size}x{size} images and {num_classes} classes",
                config.name()
            )));
        }
        Ok(match config {
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
                        config.name()
                    )));
                }
                Network::Resnet(
                    CifarResnetConfig::new()
                        .with_depth(*depth)
                        .with_width(*width)
                        .with_in_channels(channels)
                        .with_num_classes(num_classes)
                        .init(device)
                        .map_err(model_error)?,
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
                check_min_size(config, size)?;
                Network::ImagenetResnet(
                    ImagenetResnetConfig::new()
                        .with_depth(*depth)
                        .with_width(*width)
                        .with_in_channels(channels)
                        .with_num_classes(num_classes)
                        .init(device)
                        .map_err(model_error)?,
                )
            }
            ModelConfig::InceptionV3 { aux_logits } => {
                check_min_size(config, size)?;
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

    /// The post-ReLU activations of every hidden layer on `images` (use the model's `valid()`
    /// copy for BN in evaluation mode): Lenet's `hidden.{i}`, VGG's `layers.{i}` (before max
    /// pooling), and for the CIFAR Resnets every output of a residual stream (`stream.{s}`:
    /// the stem and each block writing to it) and each block's inner layer
    /// (`blocks.{b}.conv1`).
    pub fn activations(&self, images: Tensor<4>) -> Result<Vec<Tap>> {
        let mut taps = Vec::new();
        // The models' own forward passes, observed: the taps follow what training runs.
        let mut conv = |group: String, x: &Tensor<4>| {
            taps.push(Tap {
                group,
                values: per_position(x.clone()),
            })
        };
        match self {
            Network::Lenet(m) => {
                let mut dense = |group: String, x: &Tensor<2>| {
                    taps.push(Tap {
                        group,
                        values: x.clone(),
                    })
                };
                m.forward_observed(images, &mut dense);
            }
            Network::Vgg(m) => {
                m.forward_observed(images, &mut conv);
            }
            Network::Resnet(m) => {
                m.forward_observed(images, &mut conv);
            }
            Network::ImagenetResnet(_) | Network::InceptionV3(_) => {
                return Err(Error::Invalid(
                    "activation matching knows Lenet, VGG and the CIFAR Resnets, not the \
                     ImageNet networks"
                        .into(),
                ));
            }
        }
        Ok(taps)
    }
}

impl FromConfig for Network {
    fn from_config(
        config: &ModelConfig,
        channels: usize,
        size: usize,
        num_classes: usize,
        device: &Device,
    ) -> Result<Network> {
        Network::build(config, channels, size, num_classes, device)
    }
}

impl Classifier for Network {
    fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        Network::forward(self, images)
    }

    fn forward_train(&self, images: Tensor<4>) -> Vec<(f32, Tensor<2>)> {
        Network::forward_train(self, images)
    }

    fn draws_random_numbers(&self) -> bool {
        // Inception-v3's dropout; the other networks are deterministic.
        matches!(self, Network::InceptionV3(_))
    }
}

fn check_min_size(config: &ModelConfig, size: usize) -> Result<()> {
    let min = config.architecture().min_image_size;
    if size < min {
        return Err(Error::Invalid(format!(
            "{} needs images of at least {min}x{min}, got {size}x{size}",
            config.name()
        )));
    }
    Ok(())
}

/// A model crate's error, as the framework's.
fn model_error(e: resnet::Error) -> Error {
    Error::Model(Box::new(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use nets::params::{LayerKind, TensorRole, tensor_infos, trainable_params};

    #[test]
    fn builds_every_architecture_with_exact_counts() {
        let device = Device::default();
        let lenet =
            Network::build(&ModelConfig::lenet_300_100(), 1, 28, 10, &device).expect("lenet");
        assert_eq!(trainable_params(&lenet), 266_610);
        let resnet = Network::build(&ModelConfig::resnet20(), 3, 32, 10, &device).expect("resnet");
        assert_eq!(trainable_params(&resnet), 272_474);
        let vgg = Network::build(&ModelConfig::vgg16(), 3, 32, 10, &device).expect("vgg");
        assert_eq!(trainable_params(&vgg), 14_728_266);
        let grey = Network::build(&ModelConfig::resnet20(), 1, 32, 10, &device).expect("grey");
        assert_eq!(
            grey.forward(Tensor::zeros([1, 1, 32, 32], &device)).dims(),
            [1, 10]
        );
        assert!(Network::build(&ModelConfig::vgg16(), 1, 28, 10, &device).is_err());
    }

    /// burn's `RunningState` keeps a forward's update aside until something syncs it; reading
    /// and rewriting tensors must see it (and a rewrite must not be undone by it later).
    #[test]
    fn running_statistics_are_read_and_written_up_to_date() {
        use nets::params::{map_tensors, tensor_values};
        let device = Device::default().autodiff();
        let net = Network::build(
            &ModelConfig::Resnet { depth: 8, width: 2 },
            1,
            8,
            10,
            &device,
        )
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
        let lenet =
            Network::build(&ModelConfig::lenet_300_100(), 1, 28, 10, &device).expect("lenet");
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
        let resnet = Network::build(&ModelConfig::resnet20(), 3, 32, 10, &device).expect("resnet");
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
}
