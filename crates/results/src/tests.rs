use super::*;

#[test]
fn run_ids_round_trip_as_strings_and_reject_other_names() {
    let id: RunId = "train-0123456789abcdef".parse().expect("id");
    assert_eq!(id.kind(), JobKind::Train);
    assert!(id.is_training());
    assert_eq!(id.to_string(), "train-0123456789abcdef");
    let json = serde_json::to_string(&id).expect("json");
    assert_eq!(json, "\"train-0123456789abcdef\"");
    assert_eq!(serde_json::from_str::<RunId>(&json).expect("parse"), id);
    let pair: RunId = "pair-00ff".parse().expect("pair");
    assert!(!pair.is_training());
    for bad in ["", "train", "train-", "imp-00ff", "train-xyz", "pair_00ff"] {
        assert!(
            matches!(bad.parse::<RunId>(), Err(Error::Unknown { .. })),
            "{bad}"
        );
    }
}

#[test]
fn names_parse_from_their_command_line_spelling() {
    for s in Scale::ALL {
        assert_eq!(s.as_str().parse::<Scale>().expect("scale"), s);
    }
    for f in Figure::ALL {
        assert_eq!(f.as_str().parse::<Figure>().expect("figure"), f);
    }
    assert_eq!("App-B".parse::<Figure>().expect("appb"), Figure::AppB);
    for d in DatasetName::ALL {
        assert_eq!(d.as_str().parse::<DatasetName>().expect("dataset"), d);
    }
    for b in Branch::ALL {
        assert_eq!(b.as_str().parse::<Branch>().expect("branch"), b);
        assert_eq!(serde_json::to_value(b).expect("json"), b.as_str());
    }
    let err = "cifar1000".parse::<DatasetName>().expect_err("unknown");
    assert!(err.to_string().contains("cifar100, svhn"), "{err}");
    assert!("huge".parse::<Scale>().is_err());
}

#[test]
fn every_dataset_has_its_own_row_and_consistent_shapes() {
    for d in DatasetName::ALL {
        let spec = d.spec();
        assert_eq!(spec.name, d, "row of {d} is out of order");
        assert_eq!(serde_json::to_value(d).expect("json"), spec.id);
        assert!(spec.classes >= 2 && spec.train_examples > 0 && spec.test_examples > 0);
        assert_eq!(spec.mean.len(), spec.channels, "{d}");
        assert_eq!(spec.std.len(), spec.channels, "{d}");
        assert!(spec.std.iter().all(|&s| s > 0.0), "{d}");
        assert!(
            spec.stored_side.is_some() || spec.crop_side.is_some(),
            "{d}"
        );
    }
    assert_eq!(DatasetName::Cifar100.num_classes(), 100);
    assert_eq!(DatasetName::Svhn.num_classes(), 10);
    assert_eq!(DatasetName::Imagenet.num_classes(), 1000);
    assert_eq!(
        Augmentation::default_for(DatasetName::Svhn),
        Augmentation::None,
        "flips change digits"
    );
}

#[test]
fn a_registered_dataset_is_named_serialised_and_parsed_like_a_built_in_one() {
    let record = DatasetRecord {
        id: "test-shapes".into(),
        title: "Shapes".into(),
        classes: 4,
        channels: 1,
        stored_side: Some(16),
        crop_side: None,
        train_examples: 40,
        test_examples: 8,
        mean: vec![0.5],
        std: vec![0.25],
        augmentation: Augmentation::None,
        files: "train/ and test/".into(),
        fingerprint: "0123456789abcdef".into(),
    };
    let name = record.register().expect("registers");
    assert!(name.is_own() && !DatasetName::Mnist.is_own());
    assert_eq!((name.spec().id, name.spec().name), ("test-shapes", name));
    assert_eq!((name.num_classes(), name.title()), (4, "Shapes"));
    assert_eq!(format!("{name:?}"), "DatasetName(test-shapes)");
    assert_eq!(record.register().expect("again"), name);
    assert_eq!(DatasetRecord::of(name), record);
    let json = serde_json::to_string(&name).expect("json");
    assert_eq!(json, "\"test-shapes@0123456789abcdef\"");
    assert_eq!(
        serde_json::from_str::<DatasetName>(&json).expect("back"),
        name
    );
    assert_eq!("test-shapes".parse::<DatasetName>().expect("by id"), name);
    // What was written of other data under that id is not this dataset.
    let err = "test-shapes@fedcba9876543210"
        .parse::<DatasetName>()
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("has changed since this was written"),
        "{err}"
    );
    assert!(DatasetName::known().contains(&name));
    let refused = [
        (
            DatasetRecord {
                classes: 5,
                ..record.clone()
            },
            "one description per id",
        ),
        (
            DatasetRecord {
                id: "mnist".into(),
                ..record.clone()
            },
            "a built-in dataset",
        ),
        (
            DatasetRecord {
                id: "My Shapes".into(),
                ..record.clone()
            },
            "rename it",
        ),
        (
            DatasetRecord {
                id: "-x".into(),
                ..record.clone()
            },
            "rename it",
        ),
        (
            DatasetRecord {
                id: "test-other".into(),
                mean: vec![0.5, 0.5],
                ..record.clone()
            },
            "mean has 2 and std 1 values for 1 channel(s)",
        ),
        (
            DatasetRecord {
                id: "test-other".into(),
                mean: vec![f32::NAN],
                ..record.clone()
            },
            "mean is not finite",
        ),
        (
            DatasetRecord {
                id: "test-other".into(),
                std: vec![0.0],
                ..record.clone()
            },
            "std must be positive",
        ),
        (
            DatasetRecord {
                id: "test-other".into(),
                classes: 1,
                ..record.clone()
            },
            "at least 2",
        ),
    ];
    for (bad, expected) in refused {
        let err = bad.register().unwrap_err();
        assert!(err.to_string().contains(expected), "{bad:?}: {err}");
    }
    let err = serde_json::from_str::<DatasetName>("\"test-unregistered\"").unwrap_err();
    assert!(err.to_string().contains("dataset.toml"), "{err}");
}

#[test]
fn built_in_names_and_augmentations_serialise_as_run_identities_always_had_them() {
    let names: Vec<String> = DatasetName::ALL
        .iter()
        .map(|d| serde_json::to_string(d).expect("json"))
        .collect();
    assert_eq!(
        names,
        [
            "\"mnist\"",
            "\"fashion-mnist\"",
            "\"cifar10\"",
            "\"cifar100\"",
            "\"svhn\"",
            "\"imagenet\""
        ]
    );
    let augmentations: Vec<String> = [
        Augmentation::None,
        Augmentation::CropFlip { padding: 4 },
        Augmentation::RandomResizedCropFlip,
    ]
    .iter()
    .map(|a| serde_json::to_string(a).expect("json"))
    .collect();
    assert_eq!(
        augmentations,
        [
            r#"{"kind":"none"}"#,
            r#"{"kind":"crop-flip","padding":4}"#,
            r#"{"kind":"random-resized-crop-flip"}"#
        ]
    );
}

#[test]
fn instability_is_the_rise_above_the_mean_of_the_endpoints() {
    let point = |alpha, test, train, test_loss| CurvePoint {
        alpha,
        test_error: test,
        train_error: train,
        test_loss,
        train_loss: None,
    };
    let curve = ErrorCurve {
        points: vec![
            point(0.0, 2.0, Some(1.0), Some(0.5)),
            point(0.5, 9.0, Some(4.0), Some(1.25)),
            point(1.0, 4.0, Some(3.0), Some(0.25)),
        ],
        bn_policy: BnPolicy::Interpolate,
    };
    // max 9 - (2 + 4) / 2 = 6; train: 4 - (1 + 3) / 2 = 2; test loss 1.25 - (0.5 + 0.25) / 2.
    assert_eq!(
        curve.instability(),
        Instability {
            test: 6.0,
            train: Some(2.0),
            test_loss: Some(0.875),
            train_loss: None,
        }
    );
    assert_eq!(curve.worst_test_error(), Some(9.0));
    assert!(MeanStd::of(&[]).mean.is_nan());
}

#[test]
fn a_summary_counts_each_child_once() {
    let pair = |seeds: [u64; 2], errors: [f32; 2], test: f32| PairRecord {
        init_seed: 1,
        k: 5,
        data_seeds: seeds,
        result: PairResult {
            curve: ErrorCurve {
                points: vec![],
                bn_policy: BnPolicy::Interpolate,
            },
            instability: Instability {
                test,
                train: None,
                test_loss: None,
                train_loss: None,
            },
            l2: L2Distance {
                prunable: 1.0,
                all_parameters: 2.0,
            },
            endpoint_test_errors: errors,
            wall_seconds: 0.0,
            alignment: None,
        },
        throughout: vec![],
    };
    // Three children (seeds 1, 2, 3) in three pairs: accuracy over 3 values, not 6.
    let summary = InstabilitySummary::of(vec![
        pair([1, 2], [10.0, 20.0], 1.0),
        pair([1, 3], [10.0, 30.0], 2.0),
        pair([2, 3], [20.0, 30.0], 3.0),
    ]);
    let k = summary.at(5).expect("k = 5");
    assert_eq!(k.child_test_accuracy.n, 3);
    assert!((k.child_test_accuracy.mean - 80.0).abs() < 1e-9);
    assert!((k.test_instability.mean - 2.0).abs() < 1e-9);
    assert!(k.train_instability.is_none());
}

#[test]
fn a_failed_write_reports_the_write_and_leaves_no_temporary() {
    let dir = tempfile::tempdir().expect("tmp");
    let ok = dir.path().join("a.json");
    write_atomic(&ok, b"{}").expect("write");
    assert_eq!(std::fs::read(&ok).expect("read"), b"{}");
    // A directory where the file should go: the rename fails after the data was written.
    let blocked = dir.path().join("blocked");
    std::fs::create_dir_all(blocked.join("inside")).expect("dir");
    let err = write_atomic(&blocked, b"data").expect_err("cannot replace a directory");
    assert!(matches!(err, Error::Write { .. }));
    assert!(err.to_string().starts_with("could not write"), "{err}");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains(".tmp")),
        "temporaries left: {names:?}"
    );
}

#[test]
fn substitutions_parse_as_paper_equals_used() {
    assert_eq!(
        parse_substitute("cifar10=fashion-mnist").expect("valid"),
        (DatasetName::Cifar10, DatasetName::FashionMnist)
    );
    let err = parse_substitute("cifar10").expect_err("no =");
    assert!(err.to_string().contains("PAPER=USED"), "{err}");
    assert!(parse_substitute("cifar10=stl10").is_err());
}

#[test]
fn statistics_use_the_sample_std_and_student_t() {
    use crate::{Difference, N_SEARCH_LIMIT, PooledSpread, n_needed, t_quantile};
    let close = |a: f64, b: f64| (a - b).abs() < 1e-3;
    // Tables of Student's t, 97.5% quantile.
    assert!(close(t_quantile(1.0), 12.706), "{}", t_quantile(1.0));
    assert!(close(t_quantile(4.0), 2.776));
    assert!(close(t_quantile(30.0), 2.042));
    let ms = MeanStd::of(&[1.0, 3.0]);
    assert!(close(ms.std, 2f64.sqrt()), "divides by n - 1: {ms:?}");
    let ci = ms.ci95.expect("n = 2 has an interval");
    assert!(
        close(ci.lo, 2.0 - 12.706) && close(ci.hi, 2.0 + 12.706),
        "{ci:?}"
    );
    assert!(MeanStd::of(&[5.0]).ci95.is_none());
    // Welch: a = [1, 2, 3] (s² 1), b = [2, 4, 6, 8] (s² 6.67): se² = 1/3 + 1.667 = 2,
    // df = 4 / ((1/3)² / 2 + (5/3)² / 3) = 4.075.
    let d = Difference::welch(
        &MeanStd::of(&[1.0, 2.0, 3.0]),
        &MeanStd::of(&[2.0, 4.0, 6.0, 8.0]),
    )
    .expect("both have a spread");
    assert!(
        close(d.value, -3.0) && (d.df - 4.075).abs() < 0.001,
        "{d:?}"
    );
    assert!(close(d.ci95.half_width(), t_quantile(d.df) * 2f64.sqrt()));
    // Pooled over groups by their degrees of freedom; single values carry none.
    let pooled = PooledSpread::of(&[
        MeanStd::of(&[0.0, 2.0]),
        MeanStd::of(&[1.0, 1.0, 4.0]),
        MeanStd::of(&[7.0]),
    ])
    .expect("two groups with a spread");
    assert_eq!(pooled.df, 3);
    assert!(close(pooled.std, ((2.0 + 6.0) / 3f64).sqrt()), "{pooled:?}");
    // Spread 1, gap 1: t(5)/sqrt(6) = 1.05 is too wide, t(6)/sqrt(7) = 0.925 is not.
    assert_eq!(n_needed(1.0, 1.0, 1), Some(7));
    assert_eq!(n_needed(1.0, 0.0, 1), None);
    assert_eq!(n_needed(1.0, 1e-4, 1), None, "past {N_SEARCH_LIMIT}");
}

#[test]
fn the_dense_reference_counts_the_parent_once() {
    let pair = |k: u64, errors: [f32; 2]| PairRecord {
        init_seed: 1,
        k,
        data_seeds: [1, 2],
        result: PairResult {
            curve: ErrorCurve {
                points: vec![],
                bn_policy: BnPolicy::Interpolate,
            },
            instability: Instability {
                test: 0.0,
                train: None,
                test_loss: None,
                train_loss: None,
            },
            l2: L2Distance {
                prunable: 0.0,
                all_parameters: 0.0,
            },
            endpoint_test_errors: errors,
            wall_seconds: 0.0,
            alignment: None,
        },
        throughout: vec![],
    };
    // Seed 1 is the parents' data order: the child is the parent continued at every k.
    let summary = InstabilitySummary::of(vec![pair(0, [10.0, 11.0]), pair(40, [10.0, 12.0])]);
    let mut accuracies = distinct_dense_accuracies(&summary, 1);
    accuracies.sort_by(f64::total_cmp);
    assert_eq!(accuracies, vec![88.0, 89.0, 90.0]);
    assert_eq!(
        distinct_dense_accuracies(&summary, 7).len(),
        4,
        "no parent among them"
    );
}

#[test]
fn the_n_a_welch_comparison_needs_is_more_than_it_has() {
    use crate::{Difference, n_needed_welch};
    let a = MeanStd::of(&[91.25, 91.35]);
    let b = MeanStd::of(&[91.0, 91.5, 92.0, 91.2, 91.8]);
    let gap = 0.3;
    let n = n_needed_welch(&a, &b, gap).expect("reachable");
    assert!(n > a.n);
    let grown = |m: &MeanStd, n: usize| MeanStd::from_parts(m.mean, m.std, m.n.max(n));
    let at = |n| Difference::welch(&grown(&a, n), &grown(&b, n)).expect("spreads");
    assert!(at(n).ci95.half_width() < gap && at(n - 1).ci95.half_width() >= gap);
}
