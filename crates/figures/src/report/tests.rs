//! The matching rule on the quick report's Resnet-20 (dense 84.47 ± 1.32%, n = 2, 5.2 points
//! short of its 1,800-step run) and on the same network with the length check passed.

use results::{LengthCheck, MeanStd, ModelResults, Results};

use super::findings::matching;

fn quick_resnet20() -> ModelResults {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/results/quick/results.json"
    );
    let text = std::fs::read_to_string(path).expect("the quick results");
    let results: Results = serde_json::from_str(&text).expect("quick results.json parses");
    results
        .models
        .into_iter()
        .find(|m| m.setup.preset == "resnet20")
        .expect("a resnet20 entry")
}

fn at(mean: f64) -> MeanStd {
    MeanStd {
        mean,
        std: 0.2,
        n: 2,
    }
}

fn trained(mut m: ModelResults) -> ModelResults {
    m.length_check = Some(LengthCheck {
        steps: 600,
        test_accuracy: 83.1,
        long_steps: 1800,
        long_test_accuracy: 83.6,
    });
    m
}

#[test]
fn a_trained_dense_network_decides_both_ways() {
    let m = trained(quick_resnet20());
    assert_eq!(matching(&m, at(85.0)), Ok(true));
    assert_eq!(matching(&m, at(80.0)), Ok(false));
    assert!(matching(&m, at(83.1)).is_err(), "within one std of 83.15");
}

#[test]
fn a_short_dense_network_decides_not_matching_only() {
    let m = quick_resnet20();
    let short = m
        .length_check
        .expect("quick has a length check")
        .shortfall();
    assert!(short > 5.0, "{short}");
    assert_eq!(
        matching(&m, at(80.0)),
        Ok(false),
        "below the short dense network"
    );
    let above = matching(&m, at(86.0));
    assert!(
        above
            .as_ref()
            .is_err_and(|why| why.contains("points short")),
        "above the short dense network, below its gain: {above:?}"
    );
    assert_eq!(
        matching(&m, at(84.5 + short + 1.0)),
        Ok(true),
        "above the dense mean plus the longer run's gain"
    );
}

/// The committed medium results (re-read as `render-report` reads them: a NaN written as
/// `null` once made this fail) and the Resnet-20 verdicts its README quotes.
#[test]
fn the_medium_results_decide_resnet20s_lottery_ticket_findings() {
    use super::findings::{Verdict, findings};
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
    let lines = findings(m);
    let verdict = |starts: &str| {
        let hits: Vec<_> = lines
            .iter()
            .filter(|f| f.text.starts_with(starts))
            .collect();
        assert_eq!(hits.len(), 1, "one line starting {starts:?}: {lines:#?}");
        hits[0].verdict.clone()
    };
    let imp = "resnet20, IMP at 16.8% density rewound to";
    assert_eq!(verdict(&format!("{imp} k = 0 ")), Verdict::Agrees);
    assert_eq!(verdict(&format!("{imp} k = 120 ")), Verdict::Differs);
    assert_eq!(
        verdict("resnet20, random pruning at k = 120"),
        Verdict::Agrees
    );
    assert_eq!(
        verdict("resnet20, random reinit at k = 120"),
        Verdict::Agrees
    );
}
