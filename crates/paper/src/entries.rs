//! The table: one entry per network of the paper, in Table 1 order.

use data::{Augmentation, DatasetName};
use nets::{BnInit, ModelConfig};
use results::KUnit;
use train::{DataConfig, LrSchedule, OptimizerConfig, Recipe, Steps};

use experiments::registry::{
    Cut, Entry, EvalCut, ImageCut, KChoice, PaperBaseline, PaperKs, PaperNumbers, Pruning,
};

const CIFAR_KS: PaperKs = PaperKs {
    values: &[0, 25, 100, 500, 2000, 10_000],
    unit: KUnit::Iterations,
    stable_from: 2000,
};

/// Resnet-50 and Inception-v3 have a linear epoch axis: dense networks become stable around
/// epoch 18-20, sparse ones (rewinding) from about epoch 4.
const IMAGENET_KS: PaperKs = PaperKs {
    values: &[0, 2, 4, 6, 10, 14, 20],
    unit: KUnit::Epochs,
    stable_from: 20,
};

/// Every smoke cut but the architecture and length: a pipeline check.
const SMOKE: Cut = Cut {
    model: None,
    images: None,
    note: None,
    substitute_own_augmentation: false,
    steps: Some(16),
    imp_rounds: None,
    dense_ks: KChoice::ZeroQuarter,
    sparse_ks: KChoice::ZeroQuarter,
    baseline_ks: None,
    eval: EvalCut {
        every: None,
        train_subset: 200,
        test_subset: Some(200),
        curve_subset: None,
        batch_size: 200,
        points: 5,
    },
    eval_notes: &["accuracy on 200 test and train examples, 5 interpolation points"],
    throughout_divisor: 2,
    length_check: None,
};

/// The quick scale of the conv nets: short runs, evaluated on 2,000 examples, with the dense
/// network also trained for 3x the length to show how far from trained the cut leaves it.
const QUICK_CONV: Cut = Cut {
    model: None,
    images: None,
    note: None,
    substitute_own_augmentation: false,
    steps: Some(300),
    imp_rounds: None,
    dense_ks: KChoice::ZeroStableLast,
    sparse_ks: KChoice::ZeroStable,
    baseline_ks: None,
    eval: EvalCut {
        every: Some(200),
        train_subset: 2000,
        test_subset: Some(2000),
        curve_subset: None,
        batch_size: 1000,
        points: 12,
    },
    eval_notes: &[
        "accuracy on the first 2,000 test and train examples",
        "12 interpolation points instead of 30",
    ],
    throughout_divisor: 4,
    length_check: Some(3),
};

/// Lenet trains in about a minute: the whole length, the whole test set, 30 points.
const LENET_QUICK: Cut = Cut {
    model: None,
    images: None,
    note: None,
    substitute_own_augmentation: false,
    steps: None,
    imp_rounds: None,
    dense_ks: KChoice::Listed(&[0, 100, 2000]),
    // Stable at k = 0 already: rewinding adds little to its story.
    sparse_ks: KChoice::Listed(&[0]),
    baseline_ks: None,
    eval: EvalCut {
        every: Some(4000),
        train_subset: 10_000,
        test_subset: None,
        curve_subset: None,
        batch_size: 1000,
        points: 30,
    },
    eval_notes: &[],
    throughout_divisor: 8,
    length_check: None,
};

const RESNET20_QUICK: Cut = Cut {
    model: Some(|| ModelConfig::Resnet {
        depth: 20,
        width: 8,
    }),
    note: Some(
        "Resnet-20 at half width (8/16/32 channels) for 600 steps: the pilot in docs/results/pilots found this width and length unstable at k = 0 (58 pp) and stable from 5% of training, and at 0.25 s a step on 2 cores its 22 trainings fill the quick budget",
    ),
    steps: Some(600),
    ..QUICK_CONV
};

/// The medium scale of Resnet-20: narrower than quick but long enough that the dense network
/// is within about a point of 3x its length (docs/results/pilots), so that IMP's "matching"
/// is measured against a trained network. k at 0, 1, 3 and 10% of training; IMP rewound to
/// 0 and to 3% (the paper's stable k, 2,000 of 63,000 iterations, scaled).
const RESNET20_MEDIUM: Cut = Cut {
    model: Some(|| ModelConfig::Resnet {
        depth: 20,
        width: 4,
    }),
    images: None,
    note: Some(
        "Resnet-20 at quarter width (4/8/16 channels) for 4,000 steps, 0.155 s a step on 2 cores: the pilots in docs/results/pilots measured its dense network 1.27 points short of 12,000 steps (Fashion-MNIST without augmentation), the closest to 3x the length the budget reached",
    ),
    // Fashion-MNIST as the paper trains MNIST: with CIFAR's crop-flip the pilots stay 1.8-1.9
    // points short of 3x the length, without it 1.3 (and unstable at k = 0 still).
    substitute_own_augmentation: true,
    steps: Some(4000),
    imp_rounds: None,
    dense_ks: KChoice::Fractions(&[0.0, 0.01, 0.03, 0.10]),
    sparse_ks: KChoice::Fractions(&[0.0, 0.03]),
    // The paper's claim for the baselines is at the rewind k; k = 0 adds 6 trainings.
    baseline_ks: Some(KChoice::Fractions(&[0.03])),
    // Every accuracy a verdict compares on the whole test set, the paper's 30 points (#41).
    eval: EvalCut {
        every: Some(1000),
        train_subset: 2000,
        test_subset: None,
        curve_subset: None,
        batch_size: 1000,
        points: 30,
    },
    eval_notes: &[
        "accuracy and interpolation curves on the whole test set; train error on the first 2,000 train examples",
    ],
    throughout_divisor: 4,
    length_check: Some(3),
};

const RESNET20_SMOKE: Cut = Cut {
    model: Some(|| ModelConfig::Resnet { depth: 8, width: 4 }),
    note: Some("Resnet-8 at width 4 instead of Resnet-20"),
    ..SMOKE
};

const VGG16_QUICK: Cut = Cut {
    model: Some(|| ModelConfig::Vgg16 { width_divisor: 8 }),
    note: Some(
        "VGG-16 at 1/8 width (8..64 channels) for 600 steps: 0.11 s a step on 2 cores for its 28 trainings; 1/16 width would leave ~800 weights at IMP's 1.4% density",
    ),
    steps: Some(600),
    ..QUICK_CONV
};

const VGG16_SMOKE: Cut = Cut {
    model: Some(|| ModelConfig::Vgg16 { width_divisor: 16 }),
    note: Some("VGG-16 at 1/16 width"),
    ..SMOKE
};

/// A CIFAR-10 recipe of Table 1: batch 128, 63K iterations (160 epochs), SGD with momentum
/// 0.9 and weight decay 1e-4, learning rate x0.1 at 32K and 48K, optional 30K warmup.
fn cifar(name: &str, model: ModelConfig, lr: f64, warmup: bool) -> Recipe {
    Recipe {
        name: name.to_string(),
        model,
        data: DataConfig::new(
            DatasetName::Cifar10,
            128,
            Augmentation::default_for(DatasetName::Cifar10),
        ),
        training_steps: Steps::iterations(63_000),
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        },
        schedule: LrSchedule {
            warmup: warmup.then_some(Steps::iterations(30_000)),
            milestones: vec![Steps::iterations(32_000), Steps::iterations(48_000)],
            ..LrSchedule::constant(lr)
        },
        bn_init: BnInit::Uniform,
    }
}

/// ImageNet in batches of 1024 as `micro_batches` pieces (one per GPU of a node, or
/// accumulated on one), SGD with momentum 0.9 and weight decay 1e-4.
fn imagenet(
    name: &str,
    model: ModelConfig,
    micro_batches: usize,
    epochs: u64,
    schedule: LrSchedule,
) -> Recipe {
    Recipe {
        name: name.to_string(),
        model,
        data: DataConfig {
            micro_batches,
            ..DataConfig::new(
                DatasetName::Imagenet,
                1024,
                Augmentation::default_for(DatasetName::Imagenet),
            )
        },
        training_steps: Steps::epochs(epochs),
        optimizer: OptimizerConfig::Sgd {
            momentum: 0.9,
            weight_decay: 1e-4,
            nesterov: false,
        },
        schedule,
        bn_init: BnInit::Ones,
    }
}

/// Random pruning and reinitialisation in the paper's Figure 7 for the conv nets: unstable and
/// not matching at every rewind k.
const CONV_RANDOM_PRUNING: PaperBaseline = PaperBaseline {
    stable: Some(false),
    matching: false,
    words: "random pruning: neither stable nor matching at any rewind k",
};
const CONV_REINIT: PaperBaseline = PaperBaseline {
    words: "random reinitialisation: neither stable nor matching at any rewind k",
    ..CONV_RANDOM_PRUNING
};

/// A CIFAR-10 network of Table 1; the k's are iterations of 63K. The low-rate and warmup
/// variants are stable and matching from k = 0.
const fn cifar_paper(
    accuracy: (f64, f64),
    density: f64,
    stable_at_init: bool,
    stable_from: (&'static str, u64),
    matching_from: (&'static str, u64),
) -> PaperNumbers {
    PaperNumbers {
        dataset: DatasetName::Cifar10,
        accuracy,
        density,
        stable_at_init,
        stable_from: stable_from.0,
        imp_matching_at_init: stable_at_init,
        matching_from: matching_from.0,
        stable_from_fraction: stable_from.1 as f64 / 63_000.0,
        matching_from_fraction: Some(matching_from.1 as f64 / 63_000.0),
        stable_after_fraction: before_on_grid(CIFAR_KS.values, stable_from.1, 63_000),
        matching_after_fraction: before_on_grid(CIFAR_KS.values, matching_from.1, 63_000),
        random_pruning: CONV_RANDOM_PRUNING,
        reinit: CONV_REINIT,
    }
}

/// The grid value before `k` (the last k the paper measured below its onset) as a fraction of
/// `total`; `None` for the first grid value.
const fn before_on_grid(grid: &[u64], k: u64, total: u64) -> Option<f64> {
    let mut i = 0;
    let mut before = None;
    while i < grid.len() {
        if grid[i] < k {
            before = Some(grid[i] as f64 / total as f64);
        }
        i += 1;
    }
    before
}

/// The paper's networks, in Table 1 order.
pub const ENTRIES: &[Entry] = &[
    Entry {
        name: "lenet",
        title: "Lenet 300-100",
        recipe: || Recipe {
            name: "lenet".into(),
            model: ModelConfig::lenet_300_100(),
            data: DataConfig::new(DatasetName::Mnist, 60, Augmentation::None),
            training_steps: Steps::iterations(24_000),
            optimizer: OptimizerConfig::Adam { weight_decay: 0.0 },
            schedule: LrSchedule::constant(1.2e-3),
            bn_init: BnInit::Uniform,
        },
        pruning: Pruning::rounds_of_20_percent(15), // 3.5%
        ks: PaperKs {
            stable_from: 0,
            ..CIFAR_KS
        },
        paper: Some(PaperNumbers {
            dataset: DatasetName::Mnist,
            accuracy: (98.3, 0.1),
            density: 3.5,
            stable_at_init: true,
            stable_from: "0",
            imp_matching_at_init: true,
            matching_from: "0",
            stable_from_fraction: 0.0,
            matching_from_fraction: Some(0.0),
            stable_after_fraction: None,
            matching_after_fraction: None,
            random_pruning: PaperBaseline {
                stable: None,
                matching: false,
                words: "random pruning: not matching; its instability shows a small rise only",
            },
            reinit: PaperBaseline {
                stable: None,
                matching: false,
                words: "random reinitialisation: not matching; its instability shows a small \
                        rise only",
            },
        }),
        in_quick_set: true,
        smoke: Cut {
            steps: Some(60),
            ..SMOKE
        },
        quick: LENET_QUICK,
        // Quick's cut: a medium reproduction reuses quick's Lenet runs of init 1, orders 1 and 2.
        medium: Some(LENET_QUICK),
    },
    Entry {
        name: "resnet20",
        title: "Resnet-20",
        recipe: || cifar("resnet20", ModelConfig::resnet20(), 0.1, false),
        pruning: Pruning::rounds_of_20_percent(8), // 16.8%
        ks: CIFAR_KS,
        paper: Some(cifar_paper(
            (91.7, 0.1),
            16.8,
            false,
            ("~2000 it (3%)", 2000),
            ("~500 it", 500),
        )),
        in_quick_set: true,
        smoke: RESNET20_SMOKE,
        quick: RESNET20_QUICK,
        medium: Some(RESNET20_MEDIUM),
    },
    Entry {
        name: "resnet20-low",
        title: "Resnet-20 Low",
        recipe: || cifar("resnet20-low", ModelConfig::resnet20(), 0.01, false),
        pruning: Pruning::rounds_of_20_percent(11), // 8.6%
        ks: CIFAR_KS,
        paper: Some(cifar_paper((88.8, 0.1), 8.6, true, ("0", 0), ("0", 0))),
        in_quick_set: false,
        smoke: RESNET20_SMOKE,
        quick: RESNET20_QUICK,
        medium: None,
    },
    Entry {
        name: "resnet20-warmup",
        title: "Resnet-20 Warmup",
        recipe: || cifar("resnet20-warmup", ModelConfig::resnet20(), 0.03, true),
        pruning: Pruning::rounds_of_20_percent(12), // 6.9%
        ks: CIFAR_KS,
        paper: Some(cifar_paper((89.7, 0.3), 6.9, true, ("0", 0), ("0", 0))),
        in_quick_set: false,
        smoke: RESNET20_SMOKE,
        quick: RESNET20_QUICK,
        medium: None,
    },
    Entry {
        name: "vgg16",
        title: "VGG-16",
        recipe: || cifar("vgg16", ModelConfig::vgg16(), 0.1, false),
        pruning: Pruning::rounds_of_20_percent(19), // 1.4% (Table 1: 1.5%)
        ks: CIFAR_KS,
        paper: Some(cifar_paper(
            (93.7, 0.1),
            1.5,
            false,
            ("~2000 it (3%)", 2000),
            ("~1000 it", 1000),
        )),
        in_quick_set: true,
        smoke: VGG16_SMOKE,
        quick: VGG16_QUICK,
        medium: None,
    },
    Entry {
        name: "vgg16-low",
        title: "VGG-16 Low",
        recipe: || cifar("vgg16-low", ModelConfig::vgg16(), 0.01, false),
        pruning: Pruning::rounds_of_20_percent(13), // 5.5%
        ks: CIFAR_KS,
        paper: Some(cifar_paper((91.7, 0.1), 5.5, true, ("0", 0), ("0", 0))),
        in_quick_set: false,
        smoke: VGG16_SMOKE,
        quick: VGG16_QUICK,
        medium: None,
    },
    Entry {
        name: "vgg16-warmup",
        title: "VGG-16 Warmup",
        recipe: || cifar("vgg16-warmup", ModelConfig::vgg16(), 0.1, true),
        pruning: Pruning::rounds_of_20_percent(19), // 1.4% (Table 1: 1.5%)
        ks: CIFAR_KS,
        paper: Some(cifar_paper((93.4, 0.1), 1.5, true, ("0", 0), ("0", 0))),
        in_quick_set: false,
        smoke: VGG16_SMOKE,
        quick: VGG16_QUICK,
        medium: None,
    },
    Entry {
        name: "resnet50",
        title: "Resnet-50",
        // 90 epochs, lr 0.4 with a 5-epoch warmup, x0.1 at epochs 30, 60 and 80; batch 1024
        // as 4 micro-batches of 256.
        recipe: || {
            imagenet(
                "resnet50",
                ModelConfig::resnet50(),
                4,
                90,
                LrSchedule {
                    warmup: Some(Steps::epochs(5)),
                    milestones: vec![Steps::epochs(30), Steps::epochs(60), Steps::epochs(80)],
                    ..LrSchedule::constant(0.4)
                },
            )
        },
        pruning: Pruning::one_shot_to(0.3),
        ks: IMAGENET_KS,
        paper: Some(PaperNumbers {
            dataset: DatasetName::Imagenet,
            accuracy: (76.1, 0.1),
            density: 30.0,
            stable_at_init: false,
            stable_from: "~epoch 18-20 (20%)",
            imp_matching_at_init: false,
            matching_from: "~epoch 4",
            stable_from_fraction: 18.0 / 90.0,
            matching_from_fraction: Some(4.0 / 90.0),
            // The grid of Figure 3 (epochs 0, 2, 4, 6, 10, 14, 20).
            stable_after_fraction: Some(14.0 / 90.0),
            matching_after_fraction: Some(2.0 / 90.0),
            random_pruning: CONV_RANDOM_PRUNING,
            reinit: CONV_REINIT,
        }),
        in_quick_set: false,
        smoke: Cut {
            model: Some(|| ModelConfig::ImagenetResnet {
                depth: 50,
                width: 4,
            }),
            images: Some(ImageCut {
                size: 64,
                batch: 16,
            }),
            note: Some("Resnet-50 at width 4 (of 64), 64x64 crops, batch 16 instead of 1024"),
            ..SMOKE
        },
        quick: Cut {
            model: Some(|| ModelConfig::ImagenetResnet {
                depth: 50,
                width: 16,
            }),
            images: Some(ImageCut {
                size: 112,
                batch: 128,
            }),
            note: Some("Resnet-50 at width 16 (of 64), 112x112 crops, batch 128 instead of 1024"),
            ..QUICK_CONV
        },
        medium: None,
    },
    Entry {
        name: "inception-v3",
        title: "Inception-v3",
        // 171 epochs, lr 0.03 decaying linearly to 0.005; 299x299 crops in 8 micro-batches
        // of 128.
        recipe: || {
            imagenet(
                "inception-v3",
                ModelConfig::inception_v3(),
                8,
                171,
                LrSchedule {
                    final_lr: Some(0.005),
                    ..LrSchedule::constant(0.03)
                },
            )
        },
        pruning: Pruning::one_shot_to(0.3),
        ks: IMAGENET_KS,
        paper: Some(PaperNumbers {
            dataset: DatasetName::Imagenet,
            accuracy: (78.1, 0.1),
            density: 30.0,
            stable_at_init: false,
            stable_from: "~epoch 18-20 (20%)",
            imp_matching_at_init: false,
            matching_from: "with rewinding (k not stated)",
            stable_from_fraction: 0.2,
            matching_from_fraction: None,
            stable_after_fraction: None,
            matching_after_fraction: None,
            random_pruning: CONV_RANDOM_PRUNING,
            reinit: CONV_REINIT,
        }),
        in_quick_set: false,
        smoke: Cut {
            images: Some(ImageCut {
                size: 75,
                batch: 16,
            }),
            note: Some(
                "Inception-v3 on 75x75 crops (auxiliary head inactive below 299), batch 16 instead of 1024",
            ),
            ..SMOKE
        },
        quick: Cut {
            images: Some(ImageCut {
                size: 150,
                batch: 128,
            }),
            note: Some(
                "Inception-v3 on 150x150 crops (auxiliary head inactive below 299), batch 128 instead of 1024",
            ),
            ..QUICK_CONV
        },
        medium: None,
    },
];
