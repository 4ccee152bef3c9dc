//! What the framework needs to know of a network beyond its layers, stated once per network
//! ([`crate::ModelConfig::architecture`]): the images it takes, the layers pruning leaves
//! alone, whether it has BN, and the permutation symmetries weight matching may use.

/// The facts of one architecture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Architecture {
    /// The image side it is fed, given the dataset's native side.
    pub image_size: ImageSize,
    /// The smallest image side it can take.
    pub min_image_size: usize,
    /// Layers (parameter paths without `.weight`) that the paper's framework leaves unpruned
    /// by default. Paths of a `paper_networks::Network` start with its variant:
    /// `Lenet.hidden.0.weight`.
    pub unpruned_layers: Vec<String>,
    /// Whether it normalises with BN (whose statistics can then be re-estimated along an
    /// interpolation path).
    pub batch_norm: bool,
    /// Its hidden units' permutation symmetries, read by `align::PermutationSpec::of`.
    pub symmetry: Symmetry,
}

/// The image side a network is fed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageSize {
    /// The dataset's own.
    Native,
    /// The dataset's, zero-padded up to this side where smaller.
    AtLeast(usize),
    /// Always this side (crops of ImageNet-style images).
    Fixed(usize),
}

impl ImageSize {
    /// The side for a dataset of `native`-sided images.
    pub fn for_native(self, native: usize) -> usize {
        match self {
            ImageSize::Native => native,
            ImageSize::AtLeast(side) => native.max(side),
            ImageSize::Fixed(side) => side,
        }
    }
}

/// Which hidden units can be permuted without changing the function, by the shape of the
/// network's tensor paths.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Symmetry {
    /// Each hidden layer of a fully connected chain (Lenet).
    FullyConnected,
    /// Each conv + BN layer of a plain conv chain (VGG).
    ConvChain,
    /// One group per residual stream, tied across the identity shortcuts, and one per inner
    /// layer of each block, named here (the ResNets).
    Residual { inner: &'static [&'static str] },
    /// None the framework knows (Inception-v3; a network of your own states its spec through
    /// its model factory).
    Unknown,
}
