//! The paper's numbers (SPEC.md sections 3 and 5) that the report compares against.

/// What the paper reports for one Table 1 network.
#[derive(Debug, Clone, Copy)]
pub struct PaperRow {
    pub preset: &'static str,
    pub network: &'static str,
    pub dataset: &'static str,
    /// Test accuracy (%) mean and std.
    pub accuracy: (f64, f64),
    /// Table 1 IMP density (%).
    pub density: f64,
    pub stable_at_init: bool,
    /// The k from which the network is stable (instability < 2 points).
    pub stable_from: &'static str,
    /// IMP without rewinding (k = 0) finds a matching subnetwork at the Table 1 density.
    pub imp_matching_at_init: bool,
    /// The rewind step from which IMP subnetworks are matching.
    pub matching_from: &'static str,
}

pub const PAPER: [PaperRow; 9] = [
    PaperRow {
        preset: "lenet",
        network: "Lenet 300-100",
        dataset: "MNIST",
        accuracy: (98.3, 0.1),
        density: 3.5,
        stable_at_init: true,
        stable_from: "0",
        imp_matching_at_init: true,
        matching_from: "0",
    },
    PaperRow {
        preset: "resnet20",
        network: "Resnet-20",
        dataset: "CIFAR-10",
        accuracy: (91.7, 0.1),
        density: 16.8,
        stable_at_init: false,
        stable_from: "~2000 it (3%)",
        imp_matching_at_init: false,
        matching_from: "~500 it",
    },
    PaperRow {
        preset: "resnet20-low",
        network: "Resnet-20 Low",
        dataset: "CIFAR-10",
        accuracy: (88.8, 0.1),
        density: 8.6,
        stable_at_init: true,
        stable_from: "0",
        imp_matching_at_init: true,
        matching_from: "0",
    },
    PaperRow {
        preset: "resnet20-warmup",
        network: "Resnet-20 Warmup",
        dataset: "CIFAR-10",
        accuracy: (89.7, 0.3),
        density: 6.9,
        stable_at_init: true,
        stable_from: "0",
        imp_matching_at_init: true,
        matching_from: "0",
    },
    PaperRow {
        preset: "vgg16",
        network: "VGG-16",
        dataset: "CIFAR-10",
        accuracy: (93.7, 0.1),
        density: 1.5,
        stable_at_init: false,
        stable_from: "~2000 it (3%)",
        imp_matching_at_init: false,
        matching_from: "~1000 it",
    },
    PaperRow {
        preset: "vgg16-low",
        network: "VGG-16 Low",
        dataset: "CIFAR-10",
        accuracy: (91.7, 0.1),
        density: 5.5,
        stable_at_init: true,
        stable_from: "0",
        imp_matching_at_init: true,
        matching_from: "0",
    },
    PaperRow {
        preset: "vgg16-warmup",
        network: "VGG-16 Warmup",
        dataset: "CIFAR-10",
        accuracy: (93.4, 0.1),
        density: 1.5,
        stable_at_init: true,
        stable_from: "0",
        imp_matching_at_init: true,
        matching_from: "0",
    },
    PaperRow {
        preset: "resnet50",
        network: "Resnet-50",
        dataset: "ImageNet",
        accuracy: (76.1, 0.1),
        density: 30.0,
        stable_at_init: false,
        stable_from: "~epoch 18-20 (20%)",
        imp_matching_at_init: false,
        matching_from: "~epoch 4",
    },
    PaperRow {
        preset: "inception-v3",
        network: "Inception-v3",
        dataset: "ImageNet",
        accuracy: (78.1, 0.1),
        density: 30.0,
        stable_at_init: false,
        stable_from: "~epoch 18-20 (20%)",
        imp_matching_at_init: false,
        matching_from: "with rewinding (k not stated)",
    },
];

pub fn row(preset: &str) -> Option<&'static PaperRow> {
    PAPER.iter().find(|r| r.preset == preset)
}
