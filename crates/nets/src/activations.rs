//! Hidden activations of a network, named by the permutation group their units belong to
//! (the names of `align::PermutationSpec`): what activation matching correlates.

use burn::tensor::Tensor;
use burn::tensor::activation::relu;

use crate::{Error, Network, Result};

/// One place where a group's units can be observed: `[samples, units]` (a conv layer's
/// activations give one sample per image and position).
pub struct Tap {
    pub group: String,
    pub values: Tensor<2>,
}

/// `[batch, channels, h, w]` as `[batch * h * w, channels]`: a conv layer's activations as
/// one sample of its units per image and position (what activation matching correlates).
pub fn per_position(x: Tensor<4>) -> Tensor<2> {
    let [b, c, h, w] = x.dims();
    x.swap_dims(1, 3).reshape([b * w * h, c])
}

impl Network {
    /// The post-ReLU activations of every hidden layer on `images` (use the model's `valid()`
    /// copy for BN in evaluation mode): Lenet's `hidden.{i}`, VGG's `layers.{i}` (before max
    /// pooling), and for the CIFAR Resnets every output of a residual stream (`stream.{s}`:
    /// the stem and each block writing to it) and each block's inner layer
    /// (`blocks.{b}.conv1`).
    pub fn activations(&self, images: Tensor<4>) -> Result<Vec<Tap>> {
        let mut taps = Vec::new();
        let mut tap = |group: String, values: Tensor<2>| taps.push(Tap { group, values });
        match self {
            Network::Lenet(m) => {
                let mut x: Tensor<2> = images.flatten(1, 3);
                for (i, layer) in m.hidden.iter().enumerate() {
                    x = relu(layer.forward(x));
                    tap(format!("hidden.{i}"), x.clone());
                }
            }
            Network::Vgg(m) => {
                let mut x = images;
                for (i, (layer, &pool)) in m.layers.iter().zip(&m.pool_after).enumerate() {
                    x = relu(layer.bn.forward(layer.conv.forward(x)));
                    tap(format!("layers.{i}"), per_position(x.clone()));
                    if pool {
                        x = m.max_pool.forward(x);
                    }
                }
            }
            Network::Resnet(m) => {
                let mut x = relu(m.stem.forward(images));
                let mut stream = 0;
                tap(format!("stream.{stream}"), per_position(x.clone()));
                for (b, block) in m.blocks.iter().enumerate() {
                    let inner = relu(block.conv1.forward(x.clone()));
                    tap(format!("blocks.{b}.conv1"), per_position(inner.clone()));
                    let skip = match &block.shortcut {
                        Some(projection) => {
                            stream += 1;
                            projection.forward(x)
                        }
                        None => x,
                    };
                    x = relu(block.conv2.forward(inner) + skip);
                    tap(format!("stream.{stream}"), per_position(x.clone()));
                }
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
