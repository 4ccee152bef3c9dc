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
    let err = "cifar100".parse::<DatasetName>().expect_err("unknown");
    assert!(err.to_string().contains("cifar10"), "{err}");
    assert!("huge".parse::<Scale>().is_err());
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
    let ms = MeanStd::of(&[1.0, 3.0]);
    assert_eq!((ms.mean, ms.std, ms.n), (2.0, 1.0, 2));
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
    assert!(parse_substitute("cifar10=svhn").is_err());
}
