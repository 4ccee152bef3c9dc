use crate::plot::{PALETTE, Panel, Reference, Series, render, trim};

#[test]
fn numbers_on_axes_lose_trailing_zeros() {
    assert_eq!(trim(2.0), "2");
    assert_eq!(trim(0.25), "0.25");
    assert_eq!(trim(0.5), "0.5");
    assert_eq!(trim(12.345), "12.3");
    assert_eq!(trim(63000.0), "63000");
}

#[test]
fn a_panel_renders_headless_with_text_lines_and_bands() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("p.png");
    let mut panel = Panel::new("Lenet (test)", "interpolation α", "error (%)");
    panel.series.push(
        Series::new("test", PALETTE[0], vec![(0.0, 2.0), (0.5, 3.0), (1.0, 2.0)])
            .with_band(vec![0.1, 0.4, 0.1]),
    );
    panel.reference = Some(Reference {
        label: "dense".into(),
        value: 2.5,
        band: 0.2,
    });
    render(&path, "Figure 2: a test", &[panel], 1).expect("render");
    let image = image::open(&path).expect("png").to_rgb8();
    assert_eq!(image.dimensions(), (1250, 480));
    let blue = image
        .pixels()
        .filter(|p| p.0 == [PALETTE[0].0, PALETTE[0].1, PALETTE[0].2])
        .count();
    let dark = image
        .pixels()
        .filter(|p| p.0.iter().all(|c| *c < 80))
        .count();
    assert!(blue > 100, "the line is drawn ({blue} pixels)");
    assert!(dark > 500, "text and axes are drawn ({dark} dark pixels)");
}

/// Every figure of the committed quick reproduction, rendered again: every title (the
/// figure's and each panel's) fits its width at the size it is drawn.
#[test]
fn every_title_of_every_figure_fits_its_panel() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../docs/results/quick/results.json");
    let results = crate::read_results(&path).expect("the quick results.json");
    let dir = tempfile::tempdir().expect("tmp");
    let mut overflowing = vec![];
    for &figure in &results.config.figures {
        let layouts =
            crate::render_figure(&results, figure, &dir.path().join("f.png")).expect("render");
        assert!(layouts.len() > 1, "{figure:?} has panels");
        overflowing.extend(layouts.into_iter().filter(|l| !l.fits()).map(|l| {
            format!(
                "{figure:?}: {:?} ({} > {} px)",
                l.lines, l.width, l.available
            )
        }));
    }
    assert!(overflowing.is_empty(), "{}", overflowing.join("\n"));
}

/// The check above can fail: a title with no place to break, wider than its panel at every
/// size, is reported as not fitting.
#[test]
fn a_title_wider_than_its_panel_is_reported() {
    let dir = tempfile::tempdir().expect("tmp");
    let mut panel = Panel::new("W".repeat(200), "x", "y");
    panel
        .series
        .push(Series::new("s", PALETTE[0], vec![(0.0, 1.0), (1.0, 2.0)]));
    let layouts = render(&dir.path().join("p.png"), "short", &[panel], 1).expect("render");
    assert!(layouts[0].fits());
    assert!(!layouts[1].fits(), "{:?}", layouts[1]);
}
