//! Figures and report of a reproduction (`rewind reproduce`, `cargo xtask reproduce-all`).
//!
//! Reads the [`experiments::reproduce::Results`] of a run of the experiment plan and writes
//! one PNG per figure of the paper (one panel per network, as in the paper) and `REPORT.md`:
//! every figure, the measured numbers beside the paper's, the scale and every cut, the data
//! actually used, backend, git commit and times. Text is rendered with the font embedded
//! from `assets/` through plotters' pure-Rust path: no fontconfig, no system fonts.

mod figs;
mod paper;
mod plot;
mod report;

use std::path::{Path, PathBuf};

use experiments::reproduce::Results;

pub use figs::{figure_name, model_label, render_figure, series_names};
pub use paper::{PAPER, PaperRow};

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
    Train(#[from] train::Error),
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

/// Writes `results.json`, one PNG per requested figure and `REPORT.md` into `dir`.
pub fn write_report(results: &Results, dir: &Path) -> Result<Written> {
    std::fs::create_dir_all(dir).map_err(|e| Error::Io {
        path: dir.to_path_buf(),
        source: e,
    })?;
    let json = serde_json::to_vec_pretty(results).map_err(|e| Error::Invalid(e.to_string()))?;
    let results_path = dir.join("results.json");
    train::write_atomic(&results_path, &json)?;
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
    train::write_atomic(&report, report::markdown(results).as_bytes())?;
    Ok(Written {
        figures,
        report,
        results: results_path,
    })
}

#[cfg(test)]
mod tests;
