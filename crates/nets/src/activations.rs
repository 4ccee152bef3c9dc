//! Hidden activations of a network, named by the permutation group their units belong to
//! (the names of `align::PermutationSpec`): what activation matching correlates. A network
//! says where its taps are (the paper's: `paper_networks::Network::activations`).

use burn::tensor::Tensor;

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
