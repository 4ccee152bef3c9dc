//! Seeded initialisation as in the paper's framework (open_lth): Kaiming normal (fan-in, ReLU
//! gain) for conv and linear weights, PyTorch's default uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
//! for their biases, BN scale uniform in [0, 1] (open_lth's default; `BnInit::Ones` gives the
//! usual 1) and BN shift 0, running statistics reset to mean 0 and variance 1.
//!
//! Each tensor's values come from a ChaCha stream keyed by the init seed and the tensor's path,
//! drawn on the host: the same seed gives bit-identical weights on every backend, and adding a
//! layer does not change the others.

use std::collections::HashMap;

use burn::module::Module;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use serde::{Deserialize, Serialize};

use crate::params::{LayerKind, TensorInfo, TensorRole, from_vec, map_tensors};

/// How BN scales (`gamma`) start.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BnInit {
    /// Uniform in [0, 1], as open_lth does by default.
    #[default]
    Uniform,
    /// All ones (PyTorch's default).
    Ones,
}

/// An RNG for one tensor of one initialisation.
pub fn tensor_rng(seed: u64, path: &str) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(crate::fnv1a(path.as_bytes()));
    rng
}

/// The initial values of one tensor (host side). `fan_in` is the owning layer's fan-in, for
/// biases.
pub fn initial_values(
    info: &TensorInfo,
    seed: u64,
    bn: BnInit,
    fan_in: Option<usize>,
) -> Option<Vec<f32>> {
    let n = info.numel();
    let mut rng = tensor_rng(seed, &info.path);
    Some(match info.role {
        TensorRole::Weight(LayerKind::Linear | LayerKind::Conv2d) => {
            let std = (2.0 / info.fan_in()?.max(1) as f64).sqrt();
            (0..n)
                .map(|_| (rng.sample::<f64, _>(StandardNormal) * std) as f32)
                .collect()
        }
        TensorRole::Bias(LayerKind::Linear | LayerKind::Conv2d) => {
            let bound = 1.0 / (fan_in?.max(1) as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        }
        TensorRole::BnScale => match bn {
            BnInit::Uniform => (0..n).map(|_| rng.random_range(0.0f32..1.0)).collect(),
            BnInit::Ones => vec![1.0; n],
        },
        TensorRole::BnShift | TensorRole::BnRunningMean => vec![0.0; n],
        TensorRole::BnRunningVar => vec![1.0; n],
        _ => return None,
    })
}

/// Re-draws every tensor of `module` from `seed` (see the module docs). Tensors whose role is
/// not known keep their values.
pub fn initialize<M: Module>(module: M, seed: u64, bn: BnInit) -> M {
    let mut fan_in_of_layer: HashMap<String, usize> = HashMap::new();
    map_tensors(module, |info, tensor| {
        if let Some(f) = info.fan_in() {
            fan_in_of_layer.insert(info.layer().to_string(), f);
        }
        let fan_in = fan_in_of_layer.get(info.layer()).copied();
        match initial_values(info, seed, bn, fan_in) {
            Some(values) => from_vec(values, &tensor.device()),
            None => tensor,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{tensor_values, trainable_params};
    use burn::tensor::Device;

    #[test]
    fn same_seed_same_weights_other_seed_other_weights() {
        let device = Device::default();
        let config = lenet::LenetConfig::new().with_hidden(vec![32]);
        let a = tensor_values(&initialize(config.init(&device), 5, BnInit::Uniform));
        let b = tensor_values(&initialize(config.init(&device), 5, BnInit::Uniform));
        let c = tensor_values(&initialize(config.init(&device), 6, BnInit::Uniform));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn kaiming_statistics_bias_bounds_and_bn() {
        let device = Device::default();
        let model = resnet::CifarResnetConfig::new()
            .with_depth(8)
            .init(&device)
            .expect("depth");
        let model = initialize(model, 1, BnInit::Uniform);
        let mut checked = 0;
        for (info, values) in tensor_values(&model) {
            match info.role {
                TensorRole::Weight(LayerKind::Conv2d) if values.len() > 1000 => {
                    let var = values.iter().map(|v| (*v as f64).powi(2)).sum::<f64>()
                        / values.len() as f64;
                    let expected = 2.0 / info.fan_in().expect("conv") as f64;
                    assert!(
                        (var / expected - 1.0).abs() < 0.1,
                        "{}: {var} vs {expected}",
                        info.path
                    );
                    checked += 1;
                }
                TensorRole::Bias(LayerKind::Linear) => {
                    // fc: fan-in 64, bound 1/8.
                    assert!(values.iter().all(|v| v.abs() <= 0.125));
                }
                TensorRole::BnScale => assert!(values.iter().all(|v| (0.0..1.0).contains(v))),
                TensorRole::BnShift | TensorRole::BnRunningMean => {
                    assert!(values.iter().all(|&v| v == 0.0))
                }
                TensorRole::BnRunningVar => assert!(values.iter().all(|&v| v == 1.0)),
                _ => {}
            }
        }
        assert!(checked >= 2);
        assert_eq!(trainable_params(&model), 78_042);
    }
}
