//! Re-renders the figures and `REPORT.md` of a reproduction from its `results.json`, without
//! building burn: `cargo run -p figures --bin render-report -- reports/quick/results.json
//! [OUT_DIR]` (default: the directory of the JSON file).

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1).map(PathBuf::from);
    let Some(json) = args.next() else {
        eprintln!("usage: render-report RESULTS_JSON [OUT_DIR]");
        return ExitCode::FAILURE;
    };
    let out = args.next().unwrap_or_else(|| {
        json.parent()
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("."))
    });
    let rendered = figures::read_results(&json).and_then(|r| figures::write_report(&r, &out));
    match rendered {
        Ok(written) => {
            println!(
                "{} figures and {} in {}",
                written.figures.len(),
                written.report.display(),
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
