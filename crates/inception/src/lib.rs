//! # Inception-v3
//!
//! Inception-v3 of Szegedy et al., "Rethinking the Inception Architecture for Computer Vision"
//! (2016), for 299x299 ImageNet images, laid out as torchvision's `inception_v3` (the layout
//! the paper's PyTorch-era reimplementations use): a convolutional stem, three 35x35
//! Inception-A modules, a reduction, four 17x17 Inception-C modules with factorised 7x7
//! convolutions, a reduction, two 8x8 Inception-E modules, global average pooling, dropout and
//! one linear layer; an auxiliary classifier on the last 17x17 map adds 0.4 x its loss during
//! training. Every convolution is bias-free and followed by BN (epsilon 0.001) and ReLU.
//!
//! Parameter count: 27,161,264 with the auxiliary head (the paper's 27.1M), 23,834,568
//! without it.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{
    AdaptiveAvgPool2d, AdaptiveAvgPool2dConfig, AvgPool2d, AvgPool2dConfig, MaxPool2d,
    MaxPool2dConfig,
};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::{Device, Tensor};
use kernels::{BatchNormForward, Conv2dForward};

/// Weight of the auxiliary classifier's loss in the training loss.
pub const AUX_LOSS_WEIGHT: f32 = 0.4;

/// Side of the 17x17 feature map at the paper's 299x299 input; the auxiliary head's 5x5
/// average pool (stride 3) and 5x5 convolution need at least this much.
pub const AUX_MIN_SIDE: usize = 17;

/// Convolution (no bias) + BN + ReLU: torchvision's `BasicConv2d`.
#[derive(Module, Debug)]
pub struct ConvBnRelu {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

impl ConvBnRelu {
    /// `kernel` and `padding` as `[height, width]`.
    pub fn new(
        channels: [usize; 2],
        kernel: [usize; 2],
        stride: usize,
        padding: [usize; 2],
        device: &Device,
    ) -> Self {
        let [ph, pw] = padding;
        ConvBnRelu {
            conv: Conv2dConfig::new(channels, kernel)
                .with_stride([stride, stride])
                .with_padding(PaddingConfig2d::Explicit(ph, pw, ph, pw))
                .with_bias(false)
                .init(device),
            bn: BatchNormConfig::new(channels[1])
                .with_epsilon(1e-3)
                .init(device),
        }
    }

    /// A square `k x k` convolution.
    pub fn square(
        channels: [usize; 2],
        k: usize,
        stride: usize,
        pad: usize,
        device: &Device,
    ) -> Self {
        Self::new(channels, [k, k], stride, [pad, pad], device)
    }

    /// A `1 x 1` convolution.
    pub fn pointwise(channels: [usize; 2], device: &Device) -> Self {
        Self::square(channels, 1, 1, 0, device)
    }

    /// A `1 x k` convolution padded to keep the size.
    pub fn row(channels: [usize; 2], k: usize, device: &Device) -> Self {
        Self::new(channels, [1, k], 1, [0, k / 2], device)
    }

    /// A `k x 1` convolution padded to keep the size.
    pub fn column(channels: [usize; 2], k: usize, device: &Device) -> Self {
        Self::new(channels, [k, 1], 1, [k / 2, 0], device)
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.bn.forward_relu_fast(self.conv.forward_fast(x))
    }
}

/// Applies `layers` one after the other.
fn chain(layers: &[ConvBnRelu], x: Tensor<4>) -> Tensor<4> {
    layers.iter().fold(x, |x, layer| layer.forward(x))
}

fn avg_pool_3x3() -> AvgPool2d {
    AvgPool2dConfig::new([3, 3])
        .with_strides([1, 1])
        .with_padding(PaddingConfig2d::Explicit(1, 1, 1, 1))
        .init()
}

fn max_pool_3x3_s2() -> MaxPool2d {
    MaxPool2dConfig::new([3, 3]).with_strides([2, 2]).init()
}

/// The 35x35 module: 1x1 | 1x1 -> 5x5 | 1x1 -> 3x3 -> 3x3 | avg pool -> 1x1.
#[derive(Module, Debug)]
pub struct InceptionA {
    pub b1x1: ConvBnRelu,
    pub b5x5_1: ConvBnRelu,
    pub b5x5_2: ConvBnRelu,
    pub b3x3dbl_1: ConvBnRelu,
    pub b3x3dbl_2: ConvBnRelu,
    pub b3x3dbl_3: ConvBnRelu,
    pub pool: AvgPool2d,
    pub b_pool: ConvBnRelu,
}

impl InceptionA {
    pub fn new(inp: usize, pool_features: usize, device: &Device) -> Self {
        InceptionA {
            b1x1: ConvBnRelu::pointwise([inp, 64], device),
            b5x5_1: ConvBnRelu::pointwise([inp, 48], device),
            b5x5_2: ConvBnRelu::square([48, 64], 5, 1, 2, device),
            b3x3dbl_1: ConvBnRelu::pointwise([inp, 64], device),
            b3x3dbl_2: ConvBnRelu::square([64, 96], 3, 1, 1, device),
            b3x3dbl_3: ConvBnRelu::square([96, 96], 3, 1, 1, device),
            pool: avg_pool_3x3(),
            b_pool: ConvBnRelu::pointwise([inp, pool_features], device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.b1x1.forward(x.clone());
        let b = self.b5x5_2.forward(self.b5x5_1.forward(x.clone()));
        let c = self
            .b3x3dbl_3
            .forward(self.b3x3dbl_2.forward(self.b3x3dbl_1.forward(x.clone())));
        let d = self.b_pool.forward(self.pool.forward(x));
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// The 35 -> 17 reduction: 3x3/2 | 1x1 -> 3x3 -> 3x3/2 | max pool/2.
#[derive(Module, Debug)]
pub struct InceptionB {
    pub b3x3: ConvBnRelu,
    pub b3x3dbl_1: ConvBnRelu,
    pub b3x3dbl_2: ConvBnRelu,
    pub b3x3dbl_3: ConvBnRelu,
    pub pool: MaxPool2d,
}

impl InceptionB {
    pub fn new(inp: usize, device: &Device) -> Self {
        InceptionB {
            b3x3: ConvBnRelu::square([inp, 384], 3, 2, 0, device),
            b3x3dbl_1: ConvBnRelu::pointwise([inp, 64], device),
            b3x3dbl_2: ConvBnRelu::square([64, 96], 3, 1, 1, device),
            b3x3dbl_3: ConvBnRelu::square([96, 96], 3, 2, 0, device),
            pool: max_pool_3x3_s2(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.b3x3.forward(x.clone());
        let b = self
            .b3x3dbl_3
            .forward(self.b3x3dbl_2.forward(self.b3x3dbl_1.forward(x.clone())));
        let c = self.pool.forward(x);
        Tensor::cat(vec![a, b, c], 1)
    }
}

/// The 17x17 module with 7x7 convolutions factorised into 1x7 and 7x1.
#[derive(Module, Debug)]
pub struct InceptionC {
    pub b1x1: ConvBnRelu,
    pub b7x7: Vec<ConvBnRelu>,
    pub b7x7dbl: Vec<ConvBnRelu>,
    pub pool: AvgPool2d,
    pub b_pool: ConvBnRelu,
}

impl InceptionC {
    pub fn new(inp: usize, c7: usize, device: &Device) -> Self {
        InceptionC {
            b1x1: ConvBnRelu::pointwise([inp, 192], device),
            b7x7: vec![
                ConvBnRelu::pointwise([inp, c7], device),
                ConvBnRelu::row([c7, c7], 7, device),
                ConvBnRelu::column([c7, 192], 7, device),
            ],
            b7x7dbl: vec![
                ConvBnRelu::pointwise([inp, c7], device),
                ConvBnRelu::column([c7, c7], 7, device),
                ConvBnRelu::row([c7, c7], 7, device),
                ConvBnRelu::column([c7, c7], 7, device),
                ConvBnRelu::row([c7, 192], 7, device),
            ],
            pool: avg_pool_3x3(),
            b_pool: ConvBnRelu::pointwise([inp, 192], device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.b1x1.forward(x.clone());
        let b = chain(&self.b7x7, x.clone());
        let c = chain(&self.b7x7dbl, x.clone());
        let d = self.b_pool.forward(self.pool.forward(x));
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// The 17 -> 8 reduction: 1x1 -> 3x3/2 | 1x1 -> 1x7 -> 7x1 -> 3x3/2 | max pool/2.
#[derive(Module, Debug)]
pub struct InceptionD {
    pub b3x3: Vec<ConvBnRelu>,
    pub b7x7x3: Vec<ConvBnRelu>,
    pub pool: MaxPool2d,
}

impl InceptionD {
    pub fn new(inp: usize, device: &Device) -> Self {
        InceptionD {
            b3x3: vec![
                ConvBnRelu::pointwise([inp, 192], device),
                ConvBnRelu::square([192, 320], 3, 2, 0, device),
            ],
            b7x7x3: vec![
                ConvBnRelu::pointwise([inp, 192], device),
                ConvBnRelu::row([192, 192], 7, device),
                ConvBnRelu::column([192, 192], 7, device),
                ConvBnRelu::square([192, 192], 3, 2, 0, device),
            ],
            pool: max_pool_3x3_s2(),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = chain(&self.b3x3, x.clone());
        let b = chain(&self.b7x7x3, x.clone());
        let c = self.pool.forward(x);
        Tensor::cat(vec![a, b, c], 1)
    }
}

/// The 8x8 module with expanded filter banks (1x3 and 3x1 side by side).
#[derive(Module, Debug)]
pub struct InceptionE {
    pub b1x1: ConvBnRelu,
    pub b3x3_1: ConvBnRelu,
    pub b3x3_2a: ConvBnRelu,
    pub b3x3_2b: ConvBnRelu,
    pub b3x3dbl_1: ConvBnRelu,
    pub b3x3dbl_2: ConvBnRelu,
    pub b3x3dbl_3a: ConvBnRelu,
    pub b3x3dbl_3b: ConvBnRelu,
    pub pool: AvgPool2d,
    pub b_pool: ConvBnRelu,
}

impl InceptionE {
    pub fn new(inp: usize, device: &Device) -> Self {
        InceptionE {
            b1x1: ConvBnRelu::pointwise([inp, 320], device),
            b3x3_1: ConvBnRelu::pointwise([inp, 384], device),
            b3x3_2a: ConvBnRelu::row([384, 384], 3, device),
            b3x3_2b: ConvBnRelu::column([384, 384], 3, device),
            b3x3dbl_1: ConvBnRelu::pointwise([inp, 448], device),
            b3x3dbl_2: ConvBnRelu::square([448, 384], 3, 1, 1, device),
            b3x3dbl_3a: ConvBnRelu::row([384, 384], 3, device),
            b3x3dbl_3b: ConvBnRelu::column([384, 384], 3, device),
            pool: avg_pool_3x3(),
            b_pool: ConvBnRelu::pointwise([inp, 192], device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let a = self.b1x1.forward(x.clone());
        let b = self.b3x3_1.forward(x.clone());
        let b = Tensor::cat(
            vec![self.b3x3_2a.forward(b.clone()), self.b3x3_2b.forward(b)],
            1,
        );
        let c = self.b3x3dbl_2.forward(self.b3x3dbl_1.forward(x.clone()));
        let c = Tensor::cat(
            vec![
                self.b3x3dbl_3a.forward(c.clone()),
                self.b3x3dbl_3b.forward(c),
            ],
            1,
        );
        let d = self.b_pool.forward(self.pool.forward(x));
        Tensor::cat(vec![a, b, c, d], 1)
    }
}

/// The auxiliary classifier on the 17x17x768 map: 5x5/3 average pool, 1x1 conv to 128, 5x5
/// conv to 768, global pool, linear.
#[derive(Module, Debug)]
pub struct AuxHead {
    pub pool: AvgPool2d,
    pub conv0: ConvBnRelu,
    pub conv1: ConvBnRelu,
    pub global: AdaptiveAvgPool2d,
    pub fc: Linear,
}

impl AuxHead {
    pub fn new(inp: usize, num_classes: usize, device: &Device) -> Self {
        AuxHead {
            pool: AvgPool2dConfig::new([5, 5]).with_strides([3, 3]).init(),
            conv0: ConvBnRelu::pointwise([inp, 128], device),
            conv1: ConvBnRelu::square([128, 768], 5, 1, 0, device),
            global: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            fc: LinearConfig::new(768, num_classes).init(device),
        }
    }

    pub fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.conv1.forward(self.conv0.forward(self.pool.forward(x)));
        self.fc.forward(self.global.forward(x).flatten(1, 3))
    }
}

/// Configuration of Inception-v3.
#[derive(Config, Debug)]
pub struct InceptionV3Config {
    #[config(default = 3)]
    pub in_channels: usize,
    #[config(default = 1000)]
    pub num_classes: usize,
    /// Build the auxiliary classifier (the paper's recipe trains with it).
    #[config(default = true)]
    pub aux_logits: bool,
    /// Dropout before the final linear layer.
    #[config(default = 0.5)]
    pub dropout: f64,
}

/// Inception-v3.
#[derive(Module, Debug)]
pub struct InceptionV3 {
    pub stem: Vec<ConvBnRelu>,
    pub stem_pool: MaxPool2d,
    pub stem2: Vec<ConvBnRelu>,
    pub mixed_5: Vec<InceptionA>,
    pub mixed_6a: InceptionB,
    pub mixed_6: Vec<InceptionC>,
    pub aux: Option<AuxHead>,
    pub mixed_7a: InceptionD,
    pub mixed_7: Vec<InceptionE>,
    pub pool: AdaptiveAvgPool2d,
    pub dropout: Dropout,
    pub fc: Linear,
}

impl InceptionV3Config {
    pub fn init(&self, device: &Device) -> InceptionV3 {
        InceptionV3 {
            stem: vec![
                ConvBnRelu::square([self.in_channels, 32], 3, 2, 0, device),
                ConvBnRelu::square([32, 32], 3, 1, 0, device),
                ConvBnRelu::square([32, 64], 3, 1, 1, device),
            ],
            stem_pool: max_pool_3x3_s2(),
            stem2: vec![
                ConvBnRelu::pointwise([64, 80], device),
                ConvBnRelu::square([80, 192], 3, 1, 0, device),
            ],
            mixed_5: vec![
                InceptionA::new(192, 32, device),
                InceptionA::new(256, 64, device),
                InceptionA::new(288, 64, device),
            ],
            mixed_6a: InceptionB::new(288, device),
            mixed_6: [128, 160, 160, 192]
                .into_iter()
                .map(|c7| InceptionC::new(768, c7, device))
                .collect(),
            aux: self
                .aux_logits
                .then(|| AuxHead::new(768, self.num_classes, device)),
            mixed_7a: InceptionD::new(768, device),
            mixed_7: vec![InceptionE::new(1280, device), InceptionE::new(2048, device)],
            pool: AdaptiveAvgPool2dConfig::new([1, 1]).init(),
            dropout: DropoutConfig::new(self.dropout).init(),
            fc: LinearConfig::new(2048, self.num_classes).init(device),
        }
    }
}

impl InceptionV3 {
    /// Logits and, when the network has an auxiliary head and the 17x17 map is at least
    /// [`AUX_MIN_SIDE`] wide (inputs of 299x299 and up), the auxiliary logits.
    ///
    /// # Shapes
    ///   - Images `[batch, in_channels, H, W]` (299x299 in the paper; at least 75x75)
    ///   - Outputs `[batch, num_classes]`
    pub fn forward_with_aux(&self, images: Tensor<4>) -> (Tensor<2>, Option<Tensor<2>>) {
        self.run(images, true)
    }

    /// The logits of the main classifier (the auxiliary head is not computed).
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.run(images, false).0
    }

    fn run(&self, images: Tensor<4>, with_aux: bool) -> (Tensor<2>, Option<Tensor<2>>) {
        let x = self.stem_pool.forward(chain(&self.stem, images));
        let x = self.stem_pool.forward(chain(&self.stem2, x));
        let x = self.mixed_5.iter().fold(x, |x, m| m.forward(x));
        let x = self.mixed_6a.forward(x);
        let x = self.mixed_6.iter().fold(x, |x, m| m.forward(x));
        let [_, _, h, w] = x.dims();
        let aux = self
            .aux
            .as_ref()
            .filter(|_| with_aux && h.min(w) >= AUX_MIN_SIDE)
            .map(|head| head.forward(x.clone()));
        let x = self.mixed_7a.forward(x);
        let x = self.mixed_7.iter().fold(x, |x, m| m.forward(x));
        let x = self.pool.forward(x).flatten(1, 3);
        (self.fc.forward(self.dropout.forward(x)), aux)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::module::{ModuleVisitor, Param};

    /// Trained parameters: every float tensor except BN running statistics.
    fn trainable<M: Module>(model: &M) -> usize {
        #[derive(Default)]
        struct Count {
            names: Vec<String>,
            total: usize,
        }
        impl ModuleVisitor for Count {
            fn enter_module(&mut self, name: &str, _container: &str) {
                self.names.push(name.to_string());
            }
            fn exit_module(&mut self, _name: &str, _container: &str) {
                self.names.pop();
            }
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let name = self.names.last().map(String::as_str).unwrap_or("");
                if !matches!(name, "running_mean" | "running_var") {
                    self.total += param.shape().num_elements();
                }
            }
        }
        let mut count = Count::default();
        model.visit(&mut count);
        count.total
    }

    #[test]
    fn parameter_counts_match_torchvision() {
        let device = Device::default();
        let with_aux = InceptionV3Config::new().init(&device);
        assert_eq!(trainable(&with_aux), 27_161_264);
        let aux = with_aux.aux.as_ref().expect("aux head");
        // 1x1 768->128 + BN, 5x5 128->768 + BN, linear 768->1000.
        let aux_by_hand = 768 * 128 + 256 + 25 * 128 * 768 + 2 * 768 + 768 * 1000 + 1000;
        assert_eq!(trainable(aux), aux_by_hand);
        let without = InceptionV3Config::new()
            .with_aux_logits(false)
            .init(&device);
        assert_eq!(trainable(&without), 23_834_568);
        assert_eq!(27_161_264 - 23_834_568, aux_by_hand);
    }

    #[test]
    fn shapes_and_when_the_aux_head_runs() {
        let device = Device::default();
        let model = InceptionV3Config::new()
            .with_num_classes(7)
            .init(&device)
            .valid();
        // 75x75 is the smallest input: the 17x17 stage is 3x3 there, too small for the head.
        let (logits, aux) = model.forward_with_aux(Tensor::zeros([2, 3, 75, 75], &device));
        assert_eq!(logits.dims(), [2, 7]);
        assert!(aux.is_none());
        let (logits, aux) = model.forward_with_aux(Tensor::zeros([1, 3, 299, 299], &device));
        assert_eq!(logits.dims(), [1, 7]);
        assert_eq!(aux.map(|a| a.dims()), Some([1, 7]));
        assert_eq!(
            model.forward(Tensor::zeros([1, 3, 80, 80], &device)).dims(),
            [1, 7]
        );
    }
}
