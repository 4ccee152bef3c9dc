//! What a [`crate::runs::Runner`] needs of a network: a [`ModelFactory`] builds it from the
//! recipe's `nets::ModelConfig` and says how alignment may permute it. `paper::PaperNetworks`
//! builds every network of the paper; implement the trait once for your own network to send
//! it through the same plans, store, executors and summaries (see `examples/custom-model`).

use align::{PermutationSpec, activation_matching};
use burn::tensor::{Device, Tensor};
use nets::activations::Tap;
use nets::{Classifier, ModelConfig};

/// The images a network is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputShape {
    pub channels: usize,
    /// Side of the square images.
    pub size: usize,
    pub num_classes: usize,
}

/// Builds the networks of a family: everything the runner knows of an architecture.
pub trait ModelFactory: Send + Sync {
    type Model: Classifier;

    /// `config` (the recipe's model) for `input`, with any weights: the runner draws them
    /// from the run's init seed (`nets::initialize`) or loads them from a checkpoint.
    fn build(
        &self,
        config: &ModelConfig,
        input: InputShape,
        device: &Device,
    ) -> nets::Result<Self::Model>;

    /// The hidden units weight and activation matching may permute in `model`, built from
    /// `config`. The default reads them from the tensor paths for the architecture's
    /// symmetry (`align::PermutationSpec::of`, which knows Lenet, VGG and the Resnets, and
    /// refuses other networks with one message).
    fn permutation_spec(
        &self,
        config: &ModelConfig,
        model: &Self::Model,
    ) -> align::Result<PermutationSpec> {
        PermutationSpec::of(model, &config.architecture().symmetry)
    }

    /// The activations of every permutation group on `images` (the model in evaluation
    /// mode), for activation matching. The default has none: activation matching is
    /// refused for the network.
    fn activations(&self, model: &Self::Model, images: Tensor<4>) -> nets::Result<Vec<Tap>> {
        let _ = (model, images);
        Err(nets::Error::Invalid(format!(
            "no activation taps for `{}`: implement ModelFactory::activations to use \
             activation matching",
            std::any::type_name::<Self::Model>()
        )))
    }
}

/// Activation matching of `b` to `a` with `factory`'s taps.
pub(crate) fn match_activations<F: ModelFactory>(
    factory: &F,
    spec: &PermutationSpec,
    a: &F::Model,
    b: &F::Model,
    batches: Vec<Tensor<4>>,
) -> align::Result<align::Matching> {
    activation_matching(spec, a, b, batches, |m, images| {
        factory.activations(m, images)
    })
}
