//! The bring-your-own-model example end to end on real MNIST, at a few steps.

#[test]
fn a_model_from_outside_goes_through_instability_analysis_and_imp() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut options =
        custom_model::Options::new(data::resolve_data_dir(None), dir.path().to_path_buf());
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
