//! # Lenet 300-100
//!
//! The fully connected network of LeCun et al. (1998), as used by Frankle & Carbin (2019) and
//! Frankle et al., "Linear Mode Connectivity and the Lottery Ticket Hypothesis" (2020):
//! 784-300-100-10 with ReLU, 266,610 parameters.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::Device;
use burn::tensor::Tensor;
use burn::tensor::activation::relu;

/// Configuration of a fully connected Lenet.
#[derive(Config, Debug)]
pub struct LenetConfig {
    /// Number of input features (pixels of one image, all channels).
    #[config(default = 784)]
    pub input: usize,
    /// Widths of the hidden layers.
    #[config(default = "vec![300, 100]")]
    pub hidden: Vec<usize>,
    #[config(default = 10)]
    pub num_classes: usize,
}

/// A fully connected ReLU network.
#[derive(Module, Debug)]
pub struct Lenet {
    pub hidden: Vec<Linear>,
    pub output: Linear,
}

impl LenetConfig {
    /// The paper's Lenet 300-100 for 28x28 grey-scale images.
    pub fn lenet_300_100() -> Self {
        Self::new()
    }

    /// Returns the initialised model (burn's default initialiser: the experiments re-draw the
    /// weights from a seed, see the `nets` crate).
    pub fn init(&self, device: &Device) -> Lenet {
        let mut width = self.input;
        let hidden = self
            .hidden
            .iter()
            .map(|&h| {
                let layer = LinearConfig::new(width, h).init(device);
                width = h;
                layer
            })
            .collect();
        Lenet {
            hidden,
            output: LinearConfig::new(width, self.num_classes).init(device),
        }
    }
}

impl Lenet {
    /// # Shapes
    ///   - Images `[batch, channels, height, width]` with `channels * height * width = input`
    ///   - Output `[batch, num_classes]` (logits)
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.forward_observed(images, &mut |_, _| {})
    }

    /// [`Lenet::forward`], showing `observe` each hidden layer's activations after its ReLU
    /// (`[batch, units]`) with the layer's name, `hidden.{i}`: the units activation matching
    /// correlates, from the very pass training runs.
    pub fn forward_observed(
        &self,
        images: Tensor<4>,
        observe: &mut dyn FnMut(String, &Tensor<2>),
    ) -> Tensor<2> {
        let mut x: Tensor<2> = images.flatten(1, 3); // [batch, input]
        for (i, layer) in self.hidden.iter().enumerate() {
            x = relu(layer.forward(x));
            observe(format!("hidden.{i}"), &x);
        }
        self.output.forward(x)
    }

    /// Number of input features the first layer expects.
    pub fn input_features(&self) -> usize {
        self.hidden
            .first()
            .unwrap_or(&self.output)
            .weight
            .shape()
            .dims::<2>()[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameter_count_and_shapes() {
        let device = Device::default();
        let model = LenetConfig::lenet_300_100().init(&device);
        // 784*300 + 300 + 300*100 + 100 + 100*10 + 10
        assert_eq!(
            model.num_params(),
            235_200 + 300 + 30_000 + 100 + 1_000 + 10
        );
        assert_eq!(model.num_params(), 266_610);
        let out = model.forward(Tensor::zeros([3, 1, 28, 28], &device));
        assert_eq!(out.dims(), [3, 10]);
        assert_eq!(model.input_features(), 784);
    }
}
