//! `cargo run --release -p custom-model -- [STEPS] [K]`: the example of bringing your own
//! model (see the library docs), on MNIST from `$REWIND_DATA_DIR` (or downloaded into the
//! user cache), its runs in the store `target/custom-model/`. Run it twice: the second
//! invocation trains nothing.

use std::path::PathBuf;

use results::Branch;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut options = custom_model::Options::new(
        data::resolve_data_dir(None),
        PathBuf::from("target/custom-model"),
    );
    if let Some(steps) = args.next() {
        options.steps = steps.parse()?;
    }
    if let Some(k) = args.next() {
        options.k = k.parse()?;
    }
    let report = custom_model::run(&options)?;
    println!(
        "{} runs in {} ({} of them reused from earlier invocations)",
        report.runs,
        options.store.display(),
        report.reused
    );
    println!(
        "instability from k = {} of {} steps: {:.2} pp test error (one pair); after weight \
         matching {:.2} pp ({} of {} units moved)",
        options.k,
        options.steps,
        report.pair.instability.test,
        report.aligned.instability.test,
        report.aligned.alignment.map_or(0, |a| a.moved),
        report.aligned.alignment.map_or(0, |a| a.units),
    );
    for p in &report.pair.curve.points {
        println!("  alpha {:.2}: test error {:.2}%", p.alpha, p.test_error);
    }
    for l in report.levels.iter().filter(|l| l.branch == Branch::Imp) {
        println!(
            "IMP level {}: {:.1}% of weights, test accuracy {:.2}%",
            l.level,
            100.0 * l.density,
            100.0 * l.test_accuracy
        );
    }
    Ok(())
}
