//! The bring-your-own-model example end to end on real MNIST, at smoke scale.

use results::{Figure, Scale};

#[test]
fn a_model_from_outside_goes_through_reproduce_and_its_report() {
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
    let options = custom_model::Options {
        data_dir,
        allow_download: true,
        store: dir.path().join("runs"),
        out: dir.path().join("report"),
        scale: Scale::Smoke,
    };
    let report = custom_model::run(&options).expect("the example runs");
    assert_eq!(report.reused, 0);
    assert!(report.runs > 20, "{} runs", report.runs);
    let model = &report.results.models[0];
    assert_eq!(model.setup.network.model, custom_model::NAME);
    assert!(model.setup.network.paper.is_none());
    // The dense analysis at k = 0 and 10, IMP's levels, the baselines, alignment.
    let dense = model.dense.as_ref().expect("dense instability");
    assert_eq!(dense.per_k.iter().map(|k| k.k).collect::<Vec<_>>(), [0, 10]);
    let imp = &model.imp[0];
    assert!(imp.levels.len() > 2);
    assert!(model.aligned.iter().any(|a| {
        a.summary
            .pairs
            .iter()
            .any(|p| p.result.alignment.is_some_and(|r| r.units == 32))
    }));
    // Every figure of the scale drawn (all but the opt-in ones, asked for by name), and the
    // report names the network.
    assert_eq!(
        report.written.figures.len(),
        Figure::ALL.iter().filter(|f| !f.is_opt_in()).count()
    );
    let text = std::fs::read_to_string(&report.written.report).expect("report");
    assert!(text.contains("Small ResNet"), "{text}");

    // A second invocation finds every run in the store: same numbers, nothing trained.
    let again = custom_model::run(&options).expect("again");
    assert_eq!((again.runs, again.reused), (report.runs, report.runs));
    assert_eq!(again.results.models, report.results.models);
}
