//! `cargo run --release -p custom-model -- [STEPS] [K]`: the example of bringing your own
//! model (see the library docs), on MNIST from `$REWIND_DATA_DIR` (or downloaded into the
//! user cache), runs under `target/custom-model/`.

use std::path::PathBuf;

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
        "instability from k = {} of {} steps: {:.2} pp test error",
        options.k, options.steps, report.instability.test
    );
    for p in &report.curve.points {
        println!("  alpha {:.2}: test error {:.2}%", p.alpha, p.test_error);
    }
    for l in &report.levels {
        println!(
            "IMP level {}: {:.1}% of weights, test accuracy {:.2}%",
            l.level,
            100.0 * l.density,
            100.0 * l.test_accuracy
        );
    }
    Ok(())
}
