//! # VGG for CIFAR-10
//!
//! The CIFAR variant of VGG-16 (Simonyan & Zisserman, 2015) used by Frankle et al. (2020): 13
//! 3x3 conv layers (64, 64, M, 128, 128, M, 256 x3, M, 512 x3, M, 512 x3), each followed by
//! batch normalisation and ReLU, global average pooling and one linear layer to 10 classes.
//! 14,728,266 parameters (convolutions with bias, as in open_lth).

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Linear, LinearConfig, PaddingConfig2d};
use burn::tensor::{Device, Tensor};
use kernels::{BatchNormForward, Conv2dForward};

/// The VGG-16 plan: channel counts, with 0 standing for a 2x2 max pool.
pub const VGG16_PLAN: [usize; 17] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 0, 512, 512, 512, 0, 512, 512, 512,
];

/// Configuration of a CIFAR VGG.
#[derive(Config, Debug)]
pub struct VggConfig {
    /// Channel counts of the conv layers in order; 0 marks a 2x2 max pool.
    #[config(default = "VGG16_PLAN.to_vec()")]
    pub plan: Vec<usize>,
    /// Divides every channel count (1 = the paper's network; 4 = a quarter-width VGG-16 for
    /// small-scale runs).
    #[config(default = 1)]
    pub width_divisor: usize,
    #[config(default = 3)]
    pub in_channels: usize,
    #[config(default = 10)]
    pub num_classes: usize,
}

/// Conv (with bias) + BN + ReLU.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

/// A CIFAR VGG.
#[derive(Module, Debug)]
pub struct Vgg {
    pub layers: Vec<ConvBnRelu>,
    /// `pool_after[i]`: a max pool follows conv layer `i`.
    #[module(skip)]
    pub pool_after: Vec<bool>,
    pub max_pool: MaxPool2d,
    pub pool: AdaptiveAvgPool2d,
    pub fc: Linear,
}

impl VggConfig {
    pub fn vgg16(in_channels: usize) -> Self {
        Self::new().with_in_channels(in_channels)
    }

    pub fn init(&self, device: &Device) -> Vgg {
        let divisor = self.width_divisor.max(1);
        let mut layers = Vec::new();
        let mut pool_after = Vec::new();
        let mut channels = self.in_channels;
        for &entry in &self.plan {
            if entry == 0 {
                if let Some(last) = pool_after.last_mut() {
                    *last = true;
                }
                continue;
            }
            let out = (entry / divisor).max(1);
            layers.push(ConvBnRelu {
                conv: Conv2dConfig::new([channels, out], [3, 3])
                    .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                    .init(device),
                bn: BatchNormConfig::new(out).init(device),
            });
            pool_after.push(false);
            channels = out;
        }
        Vgg {
            layers,
            pool_after,
            max_pool: MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init(),
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(channels, self.num_classes).init(device),
        }
    }
}

impl Vgg {
    /// # Shapes
    ///   - Images `[batch, in_channels, 32, 32]`
    ///   - Output `[batch, num_classes]` (logits)
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_observed(images, &mut |_, _| {})
    }

    /// [`Vgg::forward`], showing `observe` each conv layer's activations after BN and ReLU,
    /// before pooling (`[batch, channels, h, w]`), with the layer's name, `layers.{i}`.
    pub fn forward_observed(
        &self,
        images: Tensor<4>,
        observe: &mut dyn FnMut(String, &Tensor<4>),
    ) -> Tensor<2> {
        let mut x = images;
        for (i, (layer, &pool)) in self.layers.iter().zip(&self.pool_after).enumerate() {
            x = layer.bn.forward_relu_fast(layer.conv.forward_fast(x));
            observe(format!("layers.{i}"), &x);
            if pool {
                x = self.max_pool.forward(x);
            }
        }
        let x = self.pool.forward(x); // [batch, channels, 1, 1]
        self.fc.forward(x.flatten(1, 3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vgg16_parameter_count_and_shape() {
        let device = Device::default();
        let model = VggConfig::vgg16(3).init(&device);
        let conv = |i: usize, o: usize| i * o * 9 + o;
        let convs = conv(3, 64)
            + conv(64, 64)
            + conv(64, 128)
            + conv(128, 128)
            + conv(128, 256)
            + 2 * conv(256, 256)
            + conv(256, 512)
            + 5 * conv(512, 512);
        let bn = 2 * (2 * 64 + 2 * 128 + 3 * 256 + 6 * 512);
        let fc = 512 * 10 + 10;
        assert_eq!(convs + bn + fc, 14_728_266);
        let running_stats = bn;
        assert_eq!(model.num_params() - running_stats, 14_728_266);
        assert_eq!(model.pool_after.iter().filter(|&&p| p).count(), 4);
        let small = VggConfig::vgg16(1).with_width_divisor(8).init(&device);
        assert_eq!(
            small.forward(Tensor::zeros([2, 1, 32, 32], &device)).dims(),
            [2, 10]
        );
    }
}
