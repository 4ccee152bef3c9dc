//! `cargo run --release -p custom-model -- [smoke|quick]`: the example of bringing your own
//! model (see the library docs), on MNIST from `$REWIND_DATA_DIR` (or downloaded into the
//! user cache); its runs go to the store `target/custom-model/runs`, its report to
//! `target/custom-model/report`. Run it twice: the second invocation trains nothing.

use std::path::PathBuf;

use anyhow::Context;
use results::Scale;

fn main() -> anyhow::Result<()> {
    let scale = match std::env::args().nth(1) {
        Some(s) => s
            .parse::<Scale>()
            .ok()
            .filter(|s| matches!(s, Scale::Smoke | Scale::Quick))
            .with_context(|| format!("unknown scale `{s}`: smoke or quick"))?,
        None => Scale::Quick,
    };
    let root = PathBuf::from("target/custom-model");
    let options = custom_model::Options {
        data_dir: data::resolve_data_dir(None),
        allow_download: true,
        store: root.join("runs"),
        out: root.join(scale.as_str()),
        scale,
    };
    let report = custom_model::run(&options)?;
    println!(
        "{} runs in {} ({} of them reused from earlier invocations); report: {}",
        report.runs,
        options.store.display(),
        report.reused,
        report.written.report.display()
    );
    Ok(())
}
