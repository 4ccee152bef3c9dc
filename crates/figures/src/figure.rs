//! One figure drawn: its panels ([`crate::panels`]) rendered to a PNG, and the series it
//! holds. The modules depend one way: `figure` → `panels` → `figs` → `plot`; the report uses
//! `figs` for names alone.

use std::path::Path;

use results::{Figure, Results};

use crate::Result;
use crate::figs::figure_name;
use crate::plot::{Panel, TitleLayout, render};

/// Renders one figure of `results` to `path` (PNG); returns how its titles were laid out.
pub fn render_figure(results: &Results, figure: Figure, path: &Path) -> Result<Vec<TitleLayout>> {
    let mut panels = crate::panels::panels(results, figure);
    if panels.is_empty() {
        let mut p = Panel::new(
            "no network of this reproduction has data for this figure",
            "",
            "",
        );
        p.series.clear();
        panels.push(p);
    }
    let columns = if figure == Figure::Fig7 { 2 } else { 3 };
    let title = format!(
        "{} (scale: {})",
        figure_name(figure),
        results.config.scale.as_str()
    );
    render(path, &title, &panels, columns)
}

/// The series a figure holds, by panel (for tests and the report).
pub fn series_names(results: &Results, figure: Figure) -> Vec<(String, Vec<String>)> {
    crate::panels::panels(results, figure)
        .into_iter()
        .map(|p| {
            (
                p.title.clone(),
                p.series
                    .iter()
                    .filter(|s| !s.points.is_empty())
                    .map(|s| s.label.clone())
                    .collect(),
            )
        })
        .collect()
}
