use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, PaddingConfig2d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};
use kernels::{BatchNormForward, Conv2dForward};

/// A convolution without bias followed by batch normalisation.
#[derive(Module, Debug)]
pub struct ConvBn {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ConvBn {
    pub fn new(channels: [usize; 2], kernel: usize, stride: usize, device: &Device) -> Self {
        let pad = kernel / 2;
        ConvBn {
            conv: Conv2dConfig::new(channels, [kernel, kernel])
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(channels[1]).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward_fast(self.conv.forward_fast(x))
    }

    /// `relu(self.forward(x))`, bit for bit, with the ReLU inside the batch norm's kernels.
    pub fn forward_relu(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward_relu_fast(self.conv.forward_fast(x))
    }
}

/// The basic residual block of He et al. (2016): two 3x3 conv-BN layers and a shortcut that is
/// the identity, or a 1x1 conv-BN projection where the shape changes (as in open_lth).
#[derive(Module, Debug)]
pub struct BasicBlock {
    pub conv1: ConvBn,
    pub conv2: ConvBn,
    pub shortcut: Option<ConvBn>,
}

impl BasicBlock {
    pub fn new(in_channels: usize, out_channels: usize, stride: usize, device: &Device) -> Self {
        let shortcut = (stride != 1 || in_channels != out_channels)
            .then(|| ConvBn::new([in_channels, out_channels], 1, stride, device));
        BasicBlock {
            conv1: ConvBn::new([in_channels, out_channels], 3, stride, device),
            conv2: ConvBn::new([out_channels, out_channels], 3, 1, device),
            shortcut,
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.forward_observed(x, &mut |_| {})
    }

    /// [`BasicBlock::forward`], showing `observe` the inner activations (after the first
    /// conv-BN and its ReLU).
    pub fn forward_observed(&self, x: Tensor<4>, observe: &mut dyn FnMut(&Tensor<4>)) -> Tensor<4> {
        let out = self.conv1.forward_relu(x.clone());
        observe(&out);
        let out = self.conv2.forward(out);
        let skip = match &self.shortcut {
            Some(projection) => projection.forward(x),
            None => x,
        };
        relu(out + skip)
    }
}
