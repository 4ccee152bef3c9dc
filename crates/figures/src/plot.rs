//! A small layer over plotters: a panel with lines, interval bands and markers.

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::scale::YScale;
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

/// The legend entry of the shaded bands.
pub const BAND_LABEL: &str = "shaded: 95% t-interval of the mean";

/// One line of a panel.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub color: RGBColor,
    /// (x, mean).
    pub points: Vec<(f64, f64)>,
    /// Half-width of the 95% interval of the mean at each point (a shaded band); empty for none.
    pub band: Vec<f64>,
    pub dashed: bool,
    pub markers: bool,
    /// Line width in pixels (2 unless set: wider lines drawn first stay visible around the
    /// narrower lines that lie on them).
    pub width: u32,
}

impl Series {
    pub fn new(label: impl Into<String>, color: RGBColor, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            color,
            points,
            band: vec![],
            dashed: false,
            markers: false,
            width: 2,
        }
    }

    pub fn with_band(mut self, band: Vec<f64>) -> Series {
        self.band = band;
        self
    }

    pub fn dashed(mut self) -> Series {
        self.dashed = true;
        self
    }

    pub fn width(mut self, width: u32) -> Series {
        self.width = width;
        self
    }

    pub fn markers(mut self) -> Series {
        self.markers = true;
        self
    }
}

/// A horizontal reference line with a band (the dense network's accuracy and its 95% interval).
#[derive(Debug, Clone)]
pub struct Reference {
    pub label: String,
    pub value: f64,
    /// Half-width of the band.
    pub band: f64,
}

/// One chart.
pub struct Panel {
    pub title: String,
    pub x_desc: String,
    pub y_desc: String,
    pub series: Vec<Series>,
    pub reference: Option<Reference>,
    /// A horizontal threshold drawn dotted, with its legend entry (the 2-pp "stable" line).
    pub threshold: Option<(f64, String)>,
    /// Ticks at these x positions with these labels (the measured points of a transformed
    /// axis); `None`: evenly spaced ticks.
    pub x_ticks: Option<Vec<(f64, String)>>,
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    /// The y axis starts at 0 (errors and instabilities: a zoomed axis makes noise look like
    /// structure).
    pub y_from_zero: bool,
    pub y_scale: YScale,
    pub legend: SeriesLabelPosition,
}

/// How a title was laid out: its lines, font size, the widest line's width and the width
/// available (the panel's, less its margins).
#[derive(Debug, Clone, PartialEq)]
pub struct TitleLayout {
    pub lines: Vec<String>,
    pub size: u32,
    pub width: u32,
    pub available: u32,
}

impl TitleLayout {
    pub fn fits(&self) -> bool {
        self.width <= self.available
    }
}

/// Splits `title` in two at the break nearest its middle (", ", " (", else a space).
fn two_lines(title: &str) -> Vec<String> {
    let middle = title.len() / 2;
    let best = |pattern: &str| {
        title
            .match_indices(pattern)
            .map(|(i, _)| i)
            .min_by_key(|&i| i.abs_diff(middle))
    };
    let cut = best(", ")
        .map(|i| (i + 1, i + 2))
        .or_else(|| best(" (").map(|i| (i, i + 1)))
        .or_else(|| best(" ").map(|i| (i, i + 1)));
    match cut {
        Some((end, start)) => vec![title[..end].to_string(), title[start..].to_string()],
        None => vec![title.to_string()],
    }
}

/// The largest of a few sizes at which `title` fits `available` pixels on one line, else on
/// two; the smallest size on two lines when nothing fits (the figures' test then fails).
fn fit_title(
    area: &DrawingArea<BitMapBackend<'_>, Shift>,
    title: &str,
    sizes: &[u32],
    available: u32,
) -> Result<TitleLayout> {
    let width = |lines: &[String], size: u32| -> Result<u32> {
        let style: TextStyle = (FAMILY, size).into_font().into();
        let mut widest = 0;
        for line in lines {
            widest = widest.max(area.estimate_text_size(line, &style).map_err(plot)?.0);
        }
        Ok(widest)
    };
    let candidates = [vec![title.to_string()], two_lines(title)];
    let mut last = None;
    for lines in &candidates {
        for &size in sizes {
            let w = width(lines, size)?;
            let layout = TitleLayout {
                lines: lines.clone(),
                size,
                width: w,
                available,
            };
            if layout.fits() {
                return Ok(layout);
            }
            last = Some(layout);
        }
    }
    last.ok_or_else(|| Error::Plot("no title sizes given".into()))
}

/// Draws a fitted title centred at the top of `area`; returns the area below it.
fn draw_title<'a>(
    area: &DrawingArea<BitMapBackend<'a>, Shift>,
    layout: &TitleLayout,
) -> Result<DrawingArea<BitMapBackend<'a>, Shift>> {
    let line = layout.size + 4;
    let height = line * layout.lines.len() as u32 + 10;
    let (top, body) = area.split_vertically(height);
    let centre = (area.dim_in_pixel().0 / 2) as i32;
    let style = (FAMILY, layout.size)
        .into_font()
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Top));
    for (i, text) in layout.lines.iter().enumerate() {
        top.draw(&Text::new(
            text.as_str(),
            (centre, 6 + (i as u32 * line) as i32),
            style.clone(),
        ))
        .map_err(plot)?;
    }
    Ok(body)
}

/// A linear axis over `range` whose ticks are exactly `ticks`.
struct TickedAxis {
    range: std::ops::Range<f64>,
    ticks: Vec<f64>,
}

impl Ranged for TickedAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = (self.range.end - self.range.start).max(f64::MIN_POSITIVE);
        let t = (value - self.range.start) / span;
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, _hint: Hint) -> Vec<f64> {
        self.ticks
            .iter()
            .copied()
            .filter(|t| self.range.contains(t) || *t == self.range.end)
            .collect()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

/// "Nice" evenly spaced ticks over `[x0, x1]`: multiples of 1, 2 or 5 times a power of ten.
pub(crate) fn even_ticks(x0: f64, x1: f64, count: usize) -> Vec<f64> {
    let span = (x1 - x0).abs().max(1e-12);
    let raw = span / count.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let first = (x0 / step).ceil() as i64;
    let last = (x1 / step).floor() as i64;
    (first..=last).map(|i| i as f64 * step).collect()
}

/// Legend gaps of a swatch in the line's style: two segments, touching (solid) or apart.
fn swatch_gap(dashed: bool) -> (i32, i32) {
    if dashed { (8, 14) } else { (11, 11) }
}

impl Panel {
    pub fn new(title: impl Into<String>, x_desc: &str, y_desc: &str) -> Panel {
        Panel {
            title: title.into(),
            x_desc: x_desc.into(),
            y_desc: y_desc.into(),
            series: vec![],
            reference: None,
            threshold: None,
            x_ticks: None,
            x_range: None,
            y_range: None,
            y_from_zero: false,
            y_scale: YScale::Linear,
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
                let sd = s.band.get(i).copied().unwrap_or(0.0);
                ys.extend([p.1 - sd, p.1 + sd]);
            }
        }
        if let Some(r) = &self.reference {
            ys.extend([r.value - r.band, r.value + r.band]);
        }
        if let Some((t, _)) = &self.threshold {
            ys.push(*t);
        }
        if self.y_from_zero {
            ys.push(0.0);
        }
        // Percentages (errors, accuracies, instabilities in points) live in [0, 100]: an
        // interval band past either end is drawn cut there, never stretching the axis.
        let percent = self.is_percent();
        let ys: Vec<f64> = ys
            .into_iter()
            .filter(|y| y.is_finite())
            .map(|y| if percent { y.clamp(0.0, 100.0) } else { y })
            .map(|y| self.y_scale.place(y))
            .collect();
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
        let entries = self.series.len()
            + usize::from(self.reference.is_some())
            + usize::from(self.threshold.is_some());
        let pad = 0.08 * (y1 - y0);
        let head = pad + (y1 - y0) * 0.09 * entries as f64;
        let bottom = if self.y_from_zero && y0 >= 0.0 {
            0.0
        } else {
            y0 - pad
        };
        let top = if percent {
            (y1 + head).min(self.y_scale.place(100.0))
        } else {
            y1 + head
        };
        let y = self.y_range.unwrap_or((bottom, top));
        (x, y)
    }

    /// A y axis in percent or percentage points.
    fn is_percent(&self) -> bool {
        self.y_desc.contains("(%)") || self.y_desc.contains("(pp)")
    }

    /// The y axis's description, saying so when the axis does not start at 0.
    fn y_caption(&self, y0: f64) -> String {
        if self.is_percent() && y0 > 0.0 {
            format!("{}, axis from {}", self.y_desc, trim(y0))
        } else {
            format!("{}{}", self.y_desc, self.y_scale.caption())
        }
    }

    /// Draws the panel into `area`; returns how its title was laid out.
    pub fn draw(&self, area: &DrawingArea<BitMapBackend<'_>, Shift>) -> Result<TitleLayout> {
        let ((x0, x1), (y0, y1)) = self.ranges();
        let title = fit_title(
            area,
            &self.title,
            &[20, 18, 16],
            area.dim_in_pixel().0.saturating_sub(2 * MARGIN),
        )?;
        let body = draw_title(area, &title)?;
        let ticks: Vec<(f64, String)> = match &self.x_ticks {
            Some(t) => t.clone(),
            None => even_ticks(x0, x1, 8)
                .into_iter()
                .map(|x| (x, trim(x)))
                .collect(),
        };
        let positions: Vec<f64> = ticks.iter().map(|t| t.0).collect();
        let y_ticks = self.y_scale.ticks(y0, y1);
        let ty = |y: f64| self.y_scale.place(y);
        let mut chart = ChartBuilder::on(&body)
            .margin(MARGIN)
            .margin_top(2)
            .x_label_area_size(48)
            .y_label_area_size(62)
            .build_cartesian_2d(
                TickedAxis {
                    range: x0..x1,
                    ticks: positions,
                },
                TickedAxis {
                    range: y0..y1,
                    ticks: y_ticks.iter().map(|t| t.0).collect(),
                },
            )
            .map_err(plot)?;
        let format = |x: &f64| {
            ticks
                .iter()
                .find(|t| (t.0 - x).abs() <= 1e-9 * (1.0 + x.abs()))
                .map_or_else(|| trim(*x), |t| t.1.clone())
        };
        chart
            .configure_mesh()
            .x_desc(&self.x_desc)
            .y_desc(self.y_caption(y0))
            .x_labels(ticks.len().max(1))
            .y_labels(y_ticks.len().max(1))
            .x_label_formatter(&format)
            .y_label_formatter(&|y| {
                y_ticks
                    .iter()
                    .find(|t| (t.0 - y).abs() <= 1e-9 * (1.0 + y.abs()))
                    .map_or_else(|| trim(*y), |t| t.1.clone())
            })
            .label_style((FAMILY, 14))
            .axis_desc_style((FAMILY, 15))
            .light_line_style(WHITE.mix(0.0))
            .draw()
            .map_err(plot)?;
        if let Some((value, label)) = &self.threshold {
            let grey = RGBColor(120, 120, 120);
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x0, ty(*value)), (x1, ty(*value))],
                    2,
                    4,
                    grey.stroke_width(1),
                ))
                .map_err(plot)?
                .label(label)
                .legend(move |(x, y)| {
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (4, 0)], grey.stroke_width(1))
                        + PathElement::new(vec![(9, 0), (13, 0)], grey.stroke_width(1))
                        + PathElement::new(vec![(18, 0), (22, 0)], grey.stroke_width(1))
                });
        }
        if let Some(r) = &self.reference {
            let grey = RGBColor(90, 90, 90);
            if r.band > 0.0 {
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0, ty(r.value - r.band)), (x1, ty(r.value + r.band))],
                        grey.mix(0.15).filled(),
                    )))
                    .map_err(plot)?;
            }
            chart
                .draw_series(DashedLineSeries::new(
                    vec![(x0, ty(r.value)), (x1, ty(r.value))],
                    8,
                    5,
                    grey.stroke_width(2),
                ))
                .map_err(plot)?
                .label(&r.label)
                .legend(move |(x, y)| {
                    let (a, b) = swatch_gap(true);
                    EmptyElement::at((x, y))
                        + PathElement::new(vec![(0, 0), (a, 0)], grey.stroke_width(2))
                        + PathElement::new(vec![(b, 0), (22, 0)], grey.stroke_width(2))
                });
        }
        for s in &self.series {
            if s.points.is_empty() {
                continue;
            }
            if s.band.len() == s.points.len() && s.band.iter().any(|v| *v > 0.0) {
                let upper = s
                    .points
                    .iter()
                    .zip(&s.band)
                    .map(|(p, sd)| (p.0, ty(p.1 + sd)));
                let lower = s
                    .points
                    .iter()
                    .zip(&s.band)
                    .rev()
                    .map(|(p, sd)| (p.0, ty(p.1 - sd)));
                let polygon: Vec<(f64, f64)> = upper.chain(lower).collect();
                chart
                    .draw_series(std::iter::once(Polygon::new(
                        polygon,
                        s.color.mix(0.18).filled(),
                    )))
                    .map_err(plot)?;
            }
            let style = s.color.stroke_width(s.width);
            let color = s.color;
            let points: Vec<(f64, f64)> = s.points.iter().map(|p| (p.0, ty(p.1))).collect();
            let anno = if s.dashed {
                chart
                    .draw_series(DashedLineSeries::new(points.clone(), 8, 5, style))
                    .map_err(plot)?
            } else {
                chart
                    .draw_series(LineSeries::new(points.clone(), style))
                    .map_err(plot)?
            };
            let (a, b) = swatch_gap(s.dashed);
            anno.label(&s.label).legend(move |(x, y)| {
                EmptyElement::at((x, y))
                    + PathElement::new(vec![(0, 0), (a, 0)], color.stroke_width(2))
                    + PathElement::new(vec![(b, 0), (22, 0)], color.stroke_width(2))
            });
            if s.markers || s.points.len() == 1 {
                chart
                    .draw_series(points.iter().map(|p| Circle::new(*p, 4, color.filled())))
                    .map_err(plot)?;
            }
        }
        let banded = self.reference.as_ref().is_some_and(|r| r.band > 0.0)
            || self
                .series
                .iter()
                .any(|s| s.band.len() == s.points.len() && s.band.iter().any(|v| *v > 0.0));
        if banded {
            let grey = RGBColor(90, 90, 90);
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())
                .map_err(plot)?
                .label(BAND_LABEL)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 22, y + 5)], grey.mix(0.25).filled())
                });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.5))
            .label_font((FAMILY, 14))
            .position(self.legend.clone())
            .draw()
            .map_err(plot)?;
        Ok(title)
    }
}

/// Pixels between a panel's edge and its chart.
const MARGIN: u32 = 12;

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
/// Returns how every title was laid out (the figure's first, then each panel's).
pub fn render(
    path: &Path,
    title: &str,
    panels: &[Panel],
    columns: usize,
) -> Result<Vec<TitleLayout>> {
    register_font()?;
    let columns = columns.clamp(1, panels.len().max(1));
    let rows = panels.len().div_ceil(columns).max(1);
    let (w, h) = ((520 * columns as u32).max(1250), 420 * rows as u32 + 60);
    let root = BitMapBackend::new(path, (w, h)).into_drawing_area();
    root.fill(&WHITE).map_err(plot)?;
    let heading = fit_title(&root, title, &[24, 22, 20], w - 2 * MARGIN)?;
    let body = draw_title(&root, &heading)?;
    let mut layouts = vec![heading];
    let areas = body.split_evenly((rows, columns));
    for (panel, area) in panels.iter().zip(areas.iter()) {
        layouts.push(panel.draw(area)?);
    }
    root.present().map_err(plot)?;
    Ok(layouts)
}
