//! The ImageNet ResNets of He et al. (2016), section 3.4 and Table 1, in the form most code uses
//! today (torchvision's "v1.5": the stride of a down-sampling bottleneck sits on its 3x3
//! convolution). Resnet-50 has 25,557,032 parameters.

use burn::config::Config;
use burn::module::Module;
use burn::nn::PaddingConfig2d;
use burn::nn::pool::{AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use crate::{ConvBn, Error};

/// Channels out of a bottleneck per channel inside it.
pub const EXPANSION: usize = 4;

/// The bottleneck block: 1x1 reduce, 3x3 (carrying the stride), 1x1 expand by
/// [`EXPANSION`], each followed by BN; a 1x1 conv + BN projection where the shape changes.
#[derive(Module, Debug)]
pub struct Bottleneck {
    pub reduce: ConvBn,
    pub conv: ConvBn,
    pub expand: ConvBn,
    pub shortcut: Option<ConvBn>,
}

impl Bottleneck {
    pub fn new(in_channels: usize, width: usize, stride: usize, device: &Device) -> Self {
        let out = width * EXPANSION;
        let shortcut = (stride != 1 || in_channels != out)
            .then(|| ConvBn::new([in_channels, out], 1, stride, device));
        Bottleneck {
            reduce: ConvBn::new([in_channels, width], 1, 1, device),
            conv: ConvBn::new([width, width], 3, stride, device),
            expand: ConvBn::new([width, out], 1, 1, device),
            shortcut,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let out = self.reduce.forward_relu(x.clone());
        let out = self.conv.forward_relu(out);
        let out = self.expand.forward(out);
        let skip = match &self.shortcut {
            Some(projection) => projection.forward(x),
            None => x,
        };
        relu(out + skip)
    }
}

/// Configuration of an ImageNet ResNet built from bottleneck blocks.
#[derive(Config, Debug)]
pub struct ImagenetResnetConfig {
    /// 50, 101 or 152.
    #[config(default = 50)]
    pub depth: usize,
    /// Channels inside the first stage's bottlenecks (64 in the paper); later stages double
    /// it, and the stem has this many channels too.
    #[config(default = 64)]
    pub width: usize,
    #[config(default = 3)]
    pub in_channels: usize,
    #[config(default = 1000)]
    pub num_classes: usize,
}

/// An ImageNet ResNet: 7x7/2 stem, 3x3/2 max pool, four stages of bottlenecks, global average
/// pooling and one linear layer.
#[derive(Module, Debug)]
pub struct ImagenetResnet {
    pub stem: ConvBn,
    pub stem_pool: MaxPool2d,
    pub blocks: Vec<Bottleneck>,
    pub pool: AdaptiveAvgPool2d,
    pub fc: Linear,
}

impl ImagenetResnetConfig {
    /// Resnet-50 for 1000 ImageNet classes.
    pub fn resnet50() -> Self {
        Self::new()
    }

    /// Bottlenecks per stage.
    pub fn stages(&self) -> Result<[usize; 4], Error> {
        match self.depth {
            50 => Ok([3, 4, 6, 3]),
            101 => Ok([3, 4, 23, 3]),
            152 => Ok([3, 8, 36, 3]),
            other => Err(Error::ImagenetDepth(other)),
        }
    }

    pub fn init(&self, device: &Device) -> Result<ImagenetResnet, Error> {
        if self.width == 0 {
            return Err(Error::Width);
        }
        let stages = self.stages()?;
        let mut blocks = Vec::with_capacity(stages.iter().sum());
        let mut channels = self.width;
        for (stage, &n) in stages.iter().enumerate() {
            let width = self.width << stage;
            for b in 0..n {
                let stride = if stage > 0 && b == 0 { 2 } else { 1 };
                blocks.push(Bottleneck::new(channels, width, stride, device));
                channels = width * EXPANSION;
            }
        }
        Ok(ImagenetResnet {
            stem: ConvBn::new([self.in_channels, self.width], 7, 2, device),
            stem_pool: MaxPool2dConfig::new([3, 3])
                .with_strides([2, 2])
                .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
                .init(),
            blocks,
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(channels, self.num_classes).init(device),
        })
    }
}

impl ImagenetResnet {
    /// # Shapes
    ///   - Images `[batch, in_channels, H, W]` (224x224 in the paper; anything from 32x32 works)
    ///   - Output `[batch, num_classes]` (logits)
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let mut x = self.stem_pool.forward(self.stem.forward_relu(images));
        for block in &self.blocks {
            x = block.forward(x);
        }
        let x = self.pool.forward(x);
        self.fc.forward(x.flatten(1, 3))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trainable(model: &ImagenetResnet) -> usize {
        let bn: usize = std::iter::once(&model.stem)
            .chain(model.blocks.iter().flat_map(|b| {
                [
                    Some(&b.reduce),
                    Some(&b.conv),
                    Some(&b.expand),
                    b.shortcut.as_ref(),
                ]
                .into_iter()
                .flatten()
            }))
            .map(|cb| 2 * cb.bn.gamma.shape().num_elements())
            .sum();
        model.num_params() - bn
    }

    /// A bottleneck stage of `n` blocks from `inp` channels at width `w`, counted by hand:
    /// 1x1, 3x3 and 1x1 convs with their BNs, and the projection of the first block.
    fn stage(inp: usize, w: usize, n: usize) -> usize {
        let out = 4 * w;
        let block = |i: usize| i * w + 2 * w + 9 * w * w + 2 * w + w * out + 2 * out;
        block(inp) + (inp * out + 2 * out) + (n - 1) * block(out)
    }

    #[test]
    fn resnet50_has_25_557_032_parameters_and_maps_images_to_logits() {
        let device = Device::default();
        let model = ImagenetResnetConfig::resnet50()
            .init(&device)
            .expect("depth 50");
        let stem = 3 * 64 * 49 + 2 * 64;
        let by_hand = stem
            + stage(64, 64, 3)
            + stage(256, 128, 4)
            + stage(512, 256, 6)
            + stage(1024, 512, 3)
            + (2048 * 1000 + 1000);
        assert_eq!(by_hand, 25_557_032);
        assert_eq!(trainable(&model), 25_557_032);
        assert_eq!(model.blocks.len(), 16);
        // 64x64 images: stem and pool to 16x16, stages to 16, 8, 4, 2.
        let out = model.forward(Tensor::zeros([1, 3, 64, 64], &device));
        assert_eq!(out.dims(), [1, 1000]);
    }

    #[test]
    fn narrow_variant_and_bad_depth() {
        let device = Device::default();
        let small = ImagenetResnetConfig::new()
            .with_width(8)
            .with_num_classes(5)
            .init(&device)
            .expect("narrow");
        assert_eq!(small.fc.weight.dims(), [8 * 8 * 4, 5]);
        let out = small.forward(Tensor::zeros([2, 3, 32, 32], &device));
        assert_eq!(out.dims(), [2, 5]);
        assert!(
            ImagenetResnetConfig::new()
                .with_depth(34)
                .init(&device)
                .is_err()
        );
    }
}
