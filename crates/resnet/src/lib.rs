//! # Residual networks
//!
//! The CIFAR-10 ResNets of He et al., "Deep Residual Learning for Image Recognition" (2016),
//! section 4.2: a 3x3 stem, three stages of `n` basic blocks with 16, 32 and 64 channels (x
//! width factor), global average pooling and one linear layer; depth `6n + 2`. Resnet-20 is
//! `n = 3` and has 272,474 parameters with the 1x1 conv + BN projection shortcuts of the paper's
//! framework (open_lth), which the paper rounds to 274K.
//!
//! The ImageNet ResNets of the same paper ([`imagenet`]): Resnet-50 (25,557,032 parameters) and
//! its deeper siblings, built from bottleneck blocks on the same [`ConvBn`] unit.

mod block;
pub mod imagenet;

pub use block::{BasicBlock, ConvBn};
pub use imagenet::{Bottleneck, ImagenetResnet, ImagenetResnetConfig};

use burn::config::Config;
use burn::module::Module;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

/// Configuration of a CIFAR-style ResNet.
#[derive(Config, Debug)]
pub struct CifarResnetConfig {
    /// Total depth `6n + 2` (20, 32, 44, 56, 110, ...).
    #[config(default = 20)]
    pub depth: usize,
    /// Channels of the first stage (16 in the paper); later stages double it.
    #[config(default = 16)]
    pub width: usize,
    /// Input channels: 3 for CIFAR-10, 1 for the MNIST family.
    #[config(default = 3)]
    pub in_channels: usize,
    #[config(default = 10)]
    pub num_classes: usize,
}

/// A CIFAR-style ResNet.
#[derive(Module, Debug)]
pub struct CifarResnet {
    pub stem: ConvBn,
    pub blocks: Vec<BasicBlock>,
    pub pool: AdaptiveAvgPool2d,
    pub fc: Linear,
}

/// Errors in a ResNet configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("CIFAR ResNet depth must be 6n + 2 with n >= 1, got {0}")]
    Depth(usize),
    #[error("ImageNet ResNet depth must be 50, 101 or 152, got {0}")]
    ImagenetDepth(usize),
    #[error("ResNet width must be at least 1")]
    Width,
}

impl CifarResnetConfig {
    /// Resnet-20 for `in_channels`-channel 32x32 images and 10 classes.
    pub fn resnet20(in_channels: usize) -> Self {
        Self::new().with_in_channels(in_channels)
    }

    pub fn blocks_per_stage(&self) -> Result<usize, Error> {
        if self.depth < 8 || !(self.depth - 2).is_multiple_of(6) {
            return Err(Error::Depth(self.depth));
        }
        Ok((self.depth - 2) / 6)
    }

    pub fn init(&self, device: &Device) -> Result<CifarResnet, Error> {
        let n = self.blocks_per_stage()?;
        let mut blocks = Vec::with_capacity(3 * n);
        let mut channels = self.width;
        for stage in 0..3 {
            let out = self.width << stage;
            for b in 0..n {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                blocks.push(BasicBlock::new(channels, out, stride, device));
                channels = out;
            }
        }
        Ok(CifarResnet {
            stem: ConvBn::new([self.in_channels, self.width], 3, 1, device),
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(channels, self.num_classes).init(device),
        })
    }
}

impl CifarResnet {
    /// # Shapes
    ///   - Images `[batch, in_channels, 32, 32]` (any size divisible by 4 works)
    ///   - Output `[batch, num_classes]` (logits)
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_observed(images, &mut |_, _| {})
    }

    /// [`CifarResnet::forward`], showing `observe` the activations of every group of units
    /// weight and activation matching permute (`[batch, channels, h, w]`, after ReLU): each
    /// block's inner units, `blocks.{b}.conv1`, and the residual stream, `stream.{s}`, whose
    /// index moves on at every projection shortcut (the identity shortcuts tie a stage's
    /// outputs to one permutation).
    pub fn forward_observed(
        &self,
        images: Tensor<4>,
        observe: &mut dyn FnMut(String, &Tensor<4>),
    ) -> Tensor<2> {
        let mut x = self.stem.forward_relu(images);
        let mut stream = 0;
        observe(format!("stream.{stream}"), &x);
        for (b, block) in self.blocks.iter().enumerate() {
            x = block.forward_observed(x, &mut |inner| observe(format!("blocks.{b}.conv1"), inner));
            if block.shortcut.is_some() {
                stream += 1;
            }
            observe(format!("stream.{stream}"), &x);
        }
        let x = self.pool.forward(x); // [batch, channels, 1, 1]
        self.fc.forward(x.flatten(1, 3)) // [batch, num_classes]
    }

    pub fn in_channels(&self) -> usize {
        self.stem.conv.weight.shape().dims::<4>()[1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Trainable parameters: weights and biases, BN gamma/beta; running statistics excluded.
    fn trainable(model: &CifarResnet) -> usize {
        let bn_buffers: usize = std::iter::once(&model.stem)
            .chain(model.blocks.iter().flat_map(|b| {
                [Some(&b.conv1), Some(&b.conv2), b.shortcut.as_ref()]
                    .into_iter()
                    .flatten()
            }))
            .map(|cb| 2 * cb.bn.gamma.shape().num_elements())
            .sum();
        model.num_params() - bn_buffers
    }

    #[test]
    fn resnet20_parameter_count_and_shape() {
        let device = Device::default();
        let model = CifarResnetConfig::resnet20(3)
            .init(&device)
            .expect("valid depth");
        // Stem 3*16*9 + BN 32. Stage 1: 3 blocks x 2 x (16*16*9 + 32).
        let stem = 432 + 32;
        let stage1 = 3 * 2 * (2304 + 32);
        // Stage 2: first block 16->32 (4608 + 64), 32->32 (9216 + 64), projection (512 + 64);
        // two more blocks of 2 x (9216 + 64).
        let stage2 = (4608 + 64) + (9216 + 64) + (512 + 64) + 2 * 2 * (9216 + 64);
        // Stage 3: 32->64 (18432 + 128), 64->64 (36864 + 128), projection (2048 + 128), two
        // more blocks of 2 x (36864 + 128).
        let stage3 = (18432 + 128) + (36864 + 128) + (2048 + 128) + 2 * 2 * (36864 + 128);
        let fc = 64 * 10 + 10;
        assert_eq!(stem + stage1 + stage2 + stage3 + fc, 272_474);
        assert_eq!(trainable(&model), 272_474);
        let out = model.forward(Tensor::zeros([2, 3, 32, 32], &device));
        assert_eq!(out.dims(), [2, 10]);
        let grey = CifarResnetConfig::resnet20(1)
            .init(&device)
            .expect("valid depth");
        assert_eq!(
            grey.forward(Tensor::zeros([2, 1, 32, 32], &device)).dims(),
            [2, 10]
        );
        assert_eq!(grey.in_channels(), 1);
    }

    #[test]
    fn bad_depth_is_an_error() {
        assert!(
            CifarResnetConfig::new()
                .with_depth(21)
                .init(&Device::default())
                .is_err()
        );
    }
}
