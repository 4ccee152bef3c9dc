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
            .with_std(vec![0.1, 0.4, 0.1]),
    );
    panel.reference = Some(Reference {
        label: "dense".into(),
        value: 2.5,
        std: 0.2,
    });
    render(&path, "Figure 2: a test", &[panel], 1).expect("render");
    let image = image::open(&path).expect("png").to_rgb8();
    assert_eq!(image.dimensions(), (1250, 450));
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
