//! Figures and report of a reproduction (`rewind reproduce`, `cargo xtask reproduce-all`).
//!
//! Reads the [`Results`] of a reproduction (the `results` crate: no burn, so a report can be
//! re-rendered from `results.json` without building the training code) and writes
//! one PNG per figure of the paper (one panel per network, as in the paper) and `REPORT.md`:
//! every figure, the measured numbers beside the paper's, the scale and every cut, the data
//! actually used, backend, git commit and times. Text is rendered with the font embedded
//! from `assets/` through plotters' pure-Rust path: no fontconfig, no system fonts.

mod figs;
mod figure;
mod panels;
mod plot;
mod report;
mod scale;

use std::path::{Path, PathBuf};

pub use results::Results;

pub use figs::{figure_name, model_label};
pub use figure::{render_figure, series_names};

/// Errors of rendering.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("drawing a figure failed: {0}")]
    Plot(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] results::Error),
    #[error("{0}")]
    Invalid(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What [`write_report`] wrote.
#[derive(Debug, Clone)]
pub struct Written {
    pub figures: Vec<PathBuf>,
    pub report: PathBuf,
    pub results: PathBuf,
}

/// Reads a `results.json` written by [`write_report`], its summaries recomputed from the
/// records with this version's statistics ([`Results::resummarise`]).
pub fn read_results(path: &Path) -> Result<Results> {
    let bytes = std::fs::read(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: e,
    })?;
    let mut results = Results::from_json(&bytes).map_err(|e| {
        Error::Invalid(format!(
            "{} is not the results.json of a reproduction: {e}",
            path.display()
        ))
    })?;
    results.resummarise();
    Ok(results)
}

/// Writes `results.json`, one PNG per requested figure and `REPORT.md` into `dir`.
pub fn write_report(results: &Results, dir: &Path) -> Result<Written> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let json = serde_json::to_vec_pretty(results).map_err(|e| Error::Invalid(e.to_string()))?;
    let results_path = dir.join("results.json");
    results::write_atomic(&results_path, &json)?;
    let mut figures = Vec::new();
    for &figure in &results.config.figures {
        let path = dir.join(format!("{}.png", figure.as_str()));
        // Draw into a temporary file and rename: a figure is whole or absent.
        let tmp = dir.join(format!(".{}.tmp.png", figure.as_str()));
        render_figure(results, figure, &tmp)?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
        figures.push(path);
    }
    let report = dir.join("REPORT.md");
    results::write_atomic(&report, report::markdown(results).as_bytes())?;
    Ok(Written {
        figures,
        report,
        results: results_path,
    })
}

#[cfg(test)]
mod tests;
