//! The bring-your-own-model example end to end on real MNIST, at a few steps.

#[test]
fn a_model_from_outside_goes_through_instability_analysis_and_imp() {
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
    // Alpha 1 and 0 are the two children themselves, so the rise is over their mean.
    let points = &report.curve.points;
    assert_eq!(points.len(), 3);
    assert!(report.instability.test >= 0.0);
    // Each round keeps half of the surviving prunable weights; pruned weights stay zero.
    let densities: Vec<f64> = report.levels.iter().map(|l| l.density).collect();
    assert_eq!(densities.len(), 3);
    assert!((densities[1] - 0.5).abs() < 0.01 && (densities[2] - 0.25).abs() < 0.01);
    assert!(report.levels.iter().all(|l| l.nonzero_pruned == 0));
    // 40 steps of SGD are past chance (10%), though far from trained.
    assert!(report.levels[0].test_accuracy > 0.2, "{:?}", report.levels);
    // Rerunning reuses every finished run: same numbers, no training.
    let again = custom_model::run(&options).expect("again");
    assert_eq!(again.levels, report.levels);
    assert_eq!(again.curve, report.curve);
}
