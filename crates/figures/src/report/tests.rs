//! The decision rules of SPEC §7 on made-up numbers (each rule shown deciding, and undecided
//! where a looser rule would decide) and on the committed medium results.

use results::{AccuracyComparison, MeanStd, PooledSpread, TestSet};

use super::findings::{Verdict, findings};
use super::rules::{matching_of, stability};

fn of(values: &[f64]) -> MeanStd {
    MeanStd::of(values)
}

#[test]
fn stability_is_decided_only_when_the_interval_excludes_two_points() {
    assert_eq!(stability(of(&[0.5, 0.7, 0.6]), None), Ok(true));
    assert_eq!(stability(of(&[9.0, 11.0, 10.0]), None), Ok(false));
    // Mean 1.0, sample std 1.0, n = 3: the t-interval [-1.48, 3.48] holds 2.
    let wide = stability(of(&[0.0, 1.0, 2.0]), None);
    assert!(
        wide.as_ref()
            .is_err_and(|why| why.contains("contains 2 pp") && why.contains("about")),
        "{wide:?}"
    );
    // The rule the issue replaced ("more than one std away") would call this unstable:
    // mean 4.5, std 2.12, n = 2 (4.5 - 2 > 2.12), but t(1) makes the interval [-14.6, 23.6].
    assert!(stability(of(&[3.0, 6.0]), None).is_err());
}

#[test]
fn a_single_pair_needs_a_replicate_spread_and_a_margin() {
    let one = of(&[5.8]);
    let none = stability(one, None);
    assert!(
        none.as_ref()
            .is_err_and(|why| why.contains("no replicate spread")),
        "{none:?}"
    );
    let tight = PooledSpread { std: 0.5, df: 8 };
    assert_eq!(
        stability(one, Some(tight)),
        Ok(false),
        "5.8 ± 1.15 excludes 2"
    );
    let loose = PooledSpread { std: 2.0, df: 8 };
    let across = stability(one, Some(loose));
    assert!(
        across
            .as_ref()
            .is_err_and(|why| why.contains("single pair")),
        "5.8 ± 4.6 holds 2: {across:?}"
    );
}

fn comparison(sub: &[f64], dense: &[f64]) -> AccuracyComparison {
    AccuracyComparison {
        subnetwork: of(sub),
        dense: of(dense),
        test_set: TestSet::CurveEndpoints,
    }
}

#[test]
fn matching_is_decided_on_the_welch_interval_against_minus_the_dense_std() {
    let dense = [91.0, 91.5, 92.0, 91.2, 91.8];
    let above = matching_of(comparison(&[92.3, 92.5, 92.4], &dense));
    assert_eq!(above.decided, Ok(true), "{above:?}");
    let below = matching_of(comparison(&[88.0, 88.3, 88.1], &dense));
    assert_eq!(below.decided, Ok(false), "{below:?}");
    // The medium scale's k = 120 (91.25, 91.35 against the five dense networks): the mean is
    // 0.16 below the dense mean, inside one std (0.41), but the interval crosses −std.
    let medium = matching_of(comparison(&[91.25, 91.35], &dense));
    assert!(medium.decided.is_err(), "{medium:?}");
    let d = medium.difference.expect("an interval");
    assert!(d.ci95.lo < medium.threshold && medium.threshold < d.ci95.hi);
}

#[test]
fn matching_needs_a_spread_on_both_sides() {
    let single_dense = matching_of(comparison(&[92.0, 92.1], &[91.0]));
    assert!(
        single_dense
            .decided
            .as_ref()
            .is_err_and(|why| why.contains("single network")),
        "{single_dense:?}"
    );
    let single_sub = matching_of(comparison(&[99.0], &[91.0, 91.5, 92.0]));
    assert!(single_sub.decided.is_err(), "{single_sub:?}");
}

/// The committed medium results (2 inits x 3 data orders), re-read as `render-report` reads
/// them: the dense reference pools every distinct 4,000-step dense network (per init the
/// parent and two children of each of 4 k), each k has six pairs, and the verdicts are the
/// ones the committed REPORT.md prints.
#[test]
fn the_medium_results_read_with_sample_statistics() {
    let path = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/results/medium/results.json"
    ));
    let results = crate::read_results(path).expect("medium results.json reads back");
    let m = results
        .models
        .iter()
        .find(|m| m.setup.preset == "resnet20")
        .expect("a resnet20 entry");
    let dense = m.dense_accuracy.expect("a dense reference");
    assert_eq!(
        dense.n, 18,
        "per init the parent once, 8 other children: {dense:?}"
    );
    assert!((dense.mean - 90.92).abs() < 0.01, "{dense:?}");
    assert!((dense.std - 0.44).abs() < 0.01, "sample std: {dense:?}");
    let lines = findings(m);
    let verdict = |starts: &str| {
        let hits: Vec<_> = lines
            .iter()
            .filter(|f| f.text.starts_with(starts))
            .collect();
        assert_eq!(hits.len(), 1, "one line starting {starts:?}: {lines:#?}");
        hits[0].verdict.clone()
    };
    // Six pairs at k = 0, 76.12 ± 5.19 pp: decided unstable, as the paper.
    assert_eq!(
        verdict("resnet20, dense, k = 0: test instability"),
        Verdict::Agrees
    );
    // Sparse − dense at k = 120 is -0.41 against a threshold of -0.44: undecided.
    let imp = "resnet20, IMP at 16.8% density rewound to";
    assert!(
        matches!(verdict(&format!("{imp} k = 120 ")), Verdict::Undecided(_)),
        "{lines:#?}"
    );
    // 10.69 ± 14.71 pp over six pairs: two of init 1's are above 27 pp, the rest below 2.
    assert!(matches!(
        verdict("resnet20, IMP subnetworks rewound to k = 120"),
        Verdict::Undecided(_)
    ));
}

/// The IMP-level finding on made-up series: three inits per level, level 1 matching and
/// level 2 not; "connected exactly when matching" agrees when the links say the same, differs
/// when a decided link says otherwise, and is undecided on single links without a spread.
#[test]
fn imp_levels_are_judged_connected_exactly_when_matching() {
    use results::{Branch, ImpSeries, Instability, LevelLink, LevelResult, LevelSummary};
    let path = std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/results/medium/results.json"
    ));
    let results = crate::read_results(path).expect("medium results.json reads back");
    let mut m = results.models[0].clone();
    m.dense = None;
    m.sparse.clear();
    let run: results::RunId = "train-00".parse().expect("id");
    let level = |level: usize, density: f64, accuracy: f32| LevelResult {
        level,
        branch: Branch::Imp,
        density,
        layers: vec![],
        test_accuracy: accuracy / 100.0,
        test_loss: 0.3,
        train_accuracy: None,
        run: run.clone(),
    };
    let mut runs = Vec::new();
    for (l, density, accuracies) in [
        (0, 1.0, [91.0, 91.4, 91.2]),
        (1, 0.8, [91.8, 92.0, 91.9]),
        (2, 0.64, [85.0, 85.5, 85.2]),
    ] {
        runs.extend(accuracies.map(|a| level(l, density, a)));
    }
    m.imp = vec![ImpSeries {
        k: 0,
        levels: LevelSummary::of(&runs),
        runs,
    }];
    let links = |per_level: [[f32; 3]; 2]| -> Vec<LevelLink> {
        per_level
            .iter()
            .enumerate()
            .flat_map(|(l, values)| {
                values
                    .iter()
                    .enumerate()
                    .map(move |(init, &test)| LevelLink {
                        k: 0,
                        init_seed: init as u64 + 1,
                        level: l,
                        density: [0.8, 0.64][l],
                        instability: Instability {
                            test,
                            train: None,
                            test_loss: None,
                            train_loss: None,
                        },
                        endpoint_test_errors: [9.0, 9.0],
                    })
            })
            .collect()
    };
    let verdict = |m: &results::ModelResults| {
        super::levels::finding(m)
            .expect("a finding from the links")
            .verdict
    };
    m.level_links = links([[0.3, 0.5, 0.4], [8.0, 9.0, 10.0]]);
    assert_eq!(verdict(&m), Verdict::Agrees);
    // Level 1 is matching but its link is decided unstable: differs.
    m.level_links = links([[8.0, 9.0, 10.0], [8.0, 9.0, 10.0]]);
    assert_eq!(verdict(&m), Verdict::Differs);
    // A step left undecided (mean 2.0, its interval holds 2 pp) beside one that agrees:
    // undecided, saying how many held; beside one that differs: differs.
    m.level_links = links([[0.3, 0.5, 0.4], [1.0, 3.0, 2.0]]);
    assert!(
        matches!(&verdict(&m), Verdict::Undecided(why) if why.contains("1 of 2 steps")),
        "{:?}",
        verdict(&m)
    );
    m.level_links = links([[8.0, 9.0, 10.0], [1.0, 3.0, 2.0]]);
    assert_eq!(verdict(&m), Verdict::Differs);
    // One init per link and no replicate spread: nothing is decided.
    m.level_links.retain(|l| l.init_seed == 1);
    assert!(
        matches!(verdict(&m), Verdict::Undecided(_)),
        "{:?}",
        verdict(&m)
    );
}
