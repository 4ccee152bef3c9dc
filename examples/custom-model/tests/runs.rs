//! The bring-your-own-model example end to end on real MNIST, at a few steps.

use results::Branch;

#[test]
fn a_model_from_outside_goes_through_the_plans_and_the_store() {
    let dir = tempfile::tempdir().expect("tmp");
    // The read-only data beside the repository when $REWIND_DATA_DIR does not say otherwise
    // (as the workspace's other tests find it), else where the binary looks.
    let beside = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
    let data_dir =
        if std::env::var_os(data::DATA_DIR_ENV).is_none() && beside.join("mnist").is_dir() {
            beside
        } else {
            data::resolve_data_dir(None)
        };
    let mut options = custom_model::Options::new(data_dir, dir.path().to_path_buf());
    options.steps = 40;
    options.k = 10;
    options.levels = 2;
    options.points = 3;
    options.test_examples = 500;
    let report = custom_model::run(&options).expect("the example runs");
    // The dense parent, its second child, 2 IMP levels; the pair plain and weight-matched.
    assert_eq!((report.runs, report.reused), (6, 0));
    assert_eq!(report.pair.curve.points.len(), 3);
    assert_eq!(report.instability.pairs.len(), 1);
    assert_eq!(
        report.instability.pairs[0].result.instability,
        report.pair.instability
    );
    assert!(report.pair.instability.test >= 0.0);
    // Weight matching saw the factory's groups: the stream and the inner layer, 16 each.
    let alignment = report.aligned.alignment.expect("aligned");
    assert_eq!(alignment.units, 32);
    // Both curves end at the same two children (permuting b does not change its function).
    let ends = |p: &results::PairResult| p.endpoint_test_errors;
    assert_eq!(ends(&report.aligned), ends(&report.pair));
    // Each round keeps half of the surviving prunable weights.
    let imp: Vec<_> = report
        .levels
        .iter()
        .filter(|l| l.branch == Branch::Imp)
        .collect();
    let densities: Vec<f64> = imp.iter().map(|l| l.density).collect();
    assert_eq!(densities.len(), 3);
    assert!((densities[1] - 0.5).abs() < 0.01 && (densities[2] - 0.25).abs() < 0.01);
    // 40 steps of SGD are past chance (10%), though far from trained.
    assert!(imp[0].test_accuracy > 0.2, "{:?}", report.levels);

    // A second invocation finds every run in the store: same numbers, nothing trained.
    let again = custom_model::run(&options).expect("again");
    assert_eq!((again.runs, again.reused), (6, 6));
    assert_eq!(again.levels, report.levels);
    assert_eq!(again.pair, report.pair);
    assert_eq!(again.aligned, report.aligned);
}
