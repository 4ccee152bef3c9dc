//! A small layer over plotters: a panel with lines, std bands and markers.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{Error, Result};

static FONT: &[u8] = include_bytes!("../../../assets/DejaVuSans.ttf");
const FAMILY: &str = "sans-serif";

/// Registers the embedded font (once per process).
pub fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .map_err(|_| Error::Plot("the embedded font could not be loaded".into()));
    });
    result
}

/// The colours of the paper's figures, in series order.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
];

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    /// (x, mean).
    pub points: Vec<(f64, f64)>,
    /// Standard deviation at each point (a shaded band); empty for none.
    pub std: Vec<f64>,
    pub dashed: bool,
    pub markers: bool,
}

impl Series {
    pub fn new(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            color,
            points,
            std: vec![],
            dashed: false,
            markers: false,
        }
    }

    pub fn with_std(mut self, std: Vec<f64>) -> Series {
        self.std = std;
        self
    }

    pub fn dashed(mut self) -> Series {
        self.dashed = true;
        self
    }

    pub fn markers(mut self) -> Series {
        self.markers = true;
        self
    }
}

/// A horizontal reference line with a band (e.g. the dense network's accuracy ± std).
#[derive(Debug, Clone)]
pub struct Reference {
    pub label: String,
    pub value: f64,
    pub std: f64,
}

/// One chart.
pub struct Panel {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub series: Vec<Series>,
    pub reference: Option<Reference>,
    /// Formats x tick labels (for transformed axes).
    pub x_format: Option<Box<dyn Fn(f64) -> String>>,
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    /// Number of x tick labels.
    pub x_labels: usize,
    pub legend: SeriesLabelPosition,
}

impl Panel {
    pub fn new(title: impl Into<String>, x_desc: &str, y_desc: &str) -> Panel {
        Panel {
            title: title.into(),
            x_desc: x_desc.into(),
            y_desc: y_desc.into(),
            series: vec![],
            reference: None,
            x_format: None,
            x_range: None,
            y_range: None,
            x_labels: 8,
            legend: SeriesLabelPosition::UpperRight,
        }
    }

    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let xs = self
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0));
        let (mut x0, mut x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        if x1 - x0 < 1e-9 {
            (x0, x1) = (x0 - 0.5, x1 + 0.5);
        }
        let pad = 0.03 * (x1 - x0);
        let x = self.x_range.unwrap_or((x0 - pad, x1 + pad));
        let mut ys: Vec<f64> = Vec::new();
        for s in &self.series {
            for (i, p) in s.points.iter().enumerate() {
                let sd = s.std.get(i).copied().unwrap_or(0.0);
                ys.extend([p.1 - sd, p.1 + sd]);
            }
        }
        if let Some(r) = &self.reference {
            ys.extend([r.value - r.std, r.value + r.std]);
        }
        let ys: Vec<f64> = ys.into_iter().filter(|y| y.is_finite()).collect();
        let (mut y0, mut y1) = ys
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &y| {
                (a.min(y), b.max(y))
            });
        if !y0.is_finite() {
            (y0, y1) = (0.0, 1.0);
        }
        if y1 - y0 < 1e-6 {
            (y0, y1) = (y0 - 1.0, y1 + 1.0);
        }
        // Head room above the data for the legend (upper right), so it never hides a line.
        let entries = self.series.len() + usize::from(self.reference.is_some());
        let pad = 0.08 * (y1 - y0);
        let head = pad + (y1 - y0) * 0.09 * entries as f64;
        let y = self.y_range.unwrap_or((y0 - pad, y1 + head));
        (x, y)
    }

    /// Draws the panel into `area`.
    pub fn draw(&self, area: &DrawingArea<BitMapBackend<'_>, Shift>) -> Result<()> {
        let ((x0, x1), (y0, y1)) = self.ranges();
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, (FAMILY, 20))
            .margin(12)
            .x_label_area_size(48)
            .y_label_area_size(62)
            .build_cartesian_2d(x0..x1, y0..y1)
            .map_err(plot)?;
        let format = |x: &f64| match &self.x_format {
            Some(f) => f(*x),
            None => trim(*x),
        };
        chart
            .configure_mesh()
            .x_desc(&self.x_desc)
            .y_desc(&self.y_desc)
            .x_labels(self.x_labels)
            .y_labels(8)
            .x_label_formatter(&format)
            .y_label_formatter(&|y| trim(*y))
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(plot)?;
        if let Some(r) = &self.reference {
            let grey = RGBColor(90, 90, 90);
            if r.std > 0.0 {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, r.value - r.std), (x1, r.value + r.std)],
                        grey.mix(0.15).filled(),
                    )))
                    .map_err(plot)?;
            }
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x0, r.value), (x1, r.value)],
                    8,
                    5,
                    grey.stroke_width(2),
                ))
                .map_err(plot)?
                .label(&r.label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 22, y)], grey.stroke_width(2))
                });
        }
        for s in &self.series {
            if s.points.is_empty() {
                continue;
            }
            if s.std.len() == s.points.len() && s.std.iter().any(|v| *v > 0.0) {
                let upper = s.points.iter().zip(&s.std).map(|(p, sd)| (p.0, p.1 + sd));
                let lower = s
                    .points
                    .iter()
                    .zip(&s.std)
                    .rev()
                    .map(|(p, sd)| (p.0, p.1 - sd));
                let polygon: Vec<(f64, f64)> = upper.chain(lower).collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        polygon,
                        s.color.mix(0.18).filled(),
                    )))
                    .map_err(plot)?;
            }
            let style = s.color.stroke_width(2);
            let color = s.color;
            let anno = if s.dashed {
                chart
                    .draw_series(DashedLineSeries::new(s.points.clone(), 8, 5, style))
                    .map_err(plot)?
            } else {
                chart
                    .draw_series(LineSeries::new(s.points.clone(), style))
                    .map_err(plot)?
            };
            anno.label(&s.label).legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 22, y)], color.stroke_width(2))
            });
            if s.markers || s.points.len() == 1 {
                chart
                    .draw_series(s.points.iter().map(|p| Circle::new(*p, 4, color.filled())))
                    .map_err(plot)?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.5))
            .label_font((FAMILY, 14))
            .position(self.legend.clone())
            .draw()
            .map_err(plot)?;
        Ok(())
    }
}

/// A number without trailing zeros.
pub fn trim(x: f64) -> String {
    if x.abs() >= 1000.0 || x == x.round() {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        let s = format!("{x:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn plot(e: impl std::fmt::Debug) -> Error {
    Error::Plot(format!("{e:?}"))
}

/// Draws `panels` on a grid with `columns` columns under a figure title and writes the PNG.
pub fn render(path: &Path, title: &str, panels: &[Panel], columns: usize) -> Result<()> {
    register_font()?;
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    // Wide enough for the figure title on one line.
    let (w, h) = ((520 * columns as u32).max(1250), 400 * rows as u32 + 50);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(plot)?;
    let root = root.titled(title, (FAMILY, 24)).map_err(plot)?;
    let areas = root.split_evenly((rows, columns));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        panel.draw(area)?;
    }
    root.present().map_err(plot)?;
    Ok(())
}
