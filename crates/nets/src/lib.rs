//! The framework's model-agnostic layer: what it needs of any network, and how it reaches into
//! any burn module by parameter path. The paper's networks themselves are in `paper-networks`,
//! which this crate does not know.
//!
//! * [`params`]: walk or rewrite every tensor of a module (parameters and BN buffers) with its
//!   path (`blocks.3.conv1.conv.weight`) and role (conv weight, linear bias, BN scale, ...).
//! * [`readback`]: every device-to-host read of the framework, counted per thread.
//! * [`init`]: the paper's framework's initialisation (Kaiming normal weights, BN scale uniform
//!   in [0, 1]) drawn from an init seed, independent of backend and of traversal order.
//! * [`Classifier`]: the trait a network implements to be trained, pruned and interpolated.
//! * [`ModelConfig`]: which network to build, as serialisable data (the paper's architectures
//!   with their size knobs, or one of your own), with each one's [`Architecture`] (image size,
//!   unpruned layers, BN, permutation symmetry) stated in one place.
//! * [`activations`]: the taps activation matching reads.
//!
//! **Invariant:** nothing here knows about pruning, interpolation or experiments.

pub mod activations;
mod architecture;
pub mod init;
mod model_config;
pub mod params;
pub mod readback;

pub use architecture::{Architecture, ImageSize, Symmetry};
pub use init::{BnInit, initialize};
pub use model_config::ModelConfig;

use burn::module::Module;
use burn::tensor::Tensor;

/// An image classifier the framework can train, prune and interpolate: any burn module with a
/// forward pass from images to logits. Implement it for your own model to use it with the
/// trainer, the `sparsity` crate and the `lmc` crate.
pub trait Classifier: Module + burn::module::ModuleDisplay + 'static {
    /// `[batch, channels, height, width]` images to `[batch, classes]` logits.
    fn forward(&self, images: Tensor<4>) -> Tensor<2>;

    /// The logits the training loss is made of, each with its weight in the loss. Models
    /// with auxiliary classifiers (Inception-v3) add theirs; the default is the main logits
    /// with weight 1.
    fn forward_train(&self, images: Tensor<4>) -> Vec<(f32, Tensor<2>)> {
        vec![(1.0, self.forward(images))]
    }

    /// Whether the training forward pass draws from the device's random-number generator
    /// (dropout). burn keeps one generator per process, so the trainer seeds it and runs such
    /// a forward pass under a lock, or runs training in other threads could draw each other's
    /// numbers. The default, `true`, is right for any model; one that draws nothing may say
    /// `false` and train concurrently without the lock.
    fn draws_random_numbers(&self) -> bool {
        true
    }
}

/// A classifier the trainer can build on its own from a recipe's [`ModelConfig`]: what
/// `train::Trainer::build_model`, `run` and `load_state` need. The paper's networks implement
/// it (`paper_networks::Network`); a network of your own can, or goes through
/// `Trainer::run_from` with a builder of its own.
pub trait FromConfig: Classifier + Sized {
    /// `config` for `channels x size x size` images and `num_classes` classes, with any
    /// weights (the trainer draws them from the run's init seed).
    fn from_config(
        config: &ModelConfig,
        channels: usize,
        size: usize,
        num_classes: usize,
        device: &burn::tensor::Device,
    ) -> Result<Self>;
}

/// FNV-1a, a stable 64-bit hash (the per-tensor RNG stream of [`init`], config hashes).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Errors building a network or reading its activations.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model crate's own error (a depth that is not `6n + 2`, say).
    #[error(transparent)]
    Model(Box<dyn std::error::Error + Send + Sync>),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
