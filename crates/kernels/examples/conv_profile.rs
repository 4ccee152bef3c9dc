//! Times the convolution kernels on the shapes of Resnet-20 and VGG-16 (batch 128, 32x32):
//! forward, input gradient and weight gradient of each distinct layer, in ms and GFLOP/s.
//!
//! `RAYON_NUM_THREADS=2 cargo run --release -p kernels --example conv_profile [resnet20|vgg16]`
//!
//! A narrower cut: `resnet20@4` (base width 4, channels 4, 8, 16) or `vgg16@8` (every width
//! divided by 8); the input keeps its 3 channels.

use std::time::Instant;

use kernels::conv::{self, ConvShape};

/// (in channels, out channels, input side, kernel, stride, layers of this shape in the network)
type Layer = (usize, usize, usize, usize, usize, usize);

const RESNET20: &[Layer] = &[
    (3, 16, 32, 3, 1, 1),
    (16, 16, 32, 3, 1, 6),
    (16, 32, 32, 3, 2, 1),
    (16, 32, 32, 1, 2, 1),
    (32, 32, 16, 3, 1, 5),
    (32, 64, 16, 3, 2, 1),
    (32, 64, 16, 1, 2, 1),
    (64, 64, 8, 3, 1, 5),
];

const VGG16: &[Layer] = &[
    (3, 64, 32, 3, 1, 1),
    (64, 64, 32, 3, 1, 1),
    (64, 128, 16, 3, 1, 1),
    (128, 128, 16, 3, 1, 1),
    (128, 256, 8, 3, 1, 1),
    (256, 256, 8, 3, 1, 2),
    (256, 512, 4, 3, 1, 1),
    (512, 512, 4, 3, 1, 2),
    (512, 512, 2, 3, 1, 3),
];

fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let network = std::env::args().nth(1).unwrap_or_else(|| "resnet20".into());
    let (name, cut) = network.split_once('@').unwrap_or((&network, ""));
    let layers = if name == "vgg16" { VGG16 } else { RESNET20 };
    // Channels are multiplied by `num / den`: resnet20@w has base width w of 16, vgg16@d is 1/d.
    let (num, den) = match (name, cut.parse::<usize>()) {
        ("vgg16", Ok(d)) => (1, d),
        (_, Ok(w)) => (w, 16),
        _ => (1, 1),
    };
    let narrow = |channels: usize| {
        if channels == 3 {
            3
        } else {
            channels * num / den
        }
    };
    let batch = 128;
    println!(
        "| layer | count | forward ms | GFLOP/s | input grad ms | GFLOP/s | weight grad ms | GFLOP/s |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let mut total = [0.0f64; 3];
    for &(c, o, side, k, s, count) in layers {
        let (c, o) = (narrow(c), narrow(o));
        let pad = k / 2;
        let shape = ConvShape::new(
            [batch, c, side, side],
            [o, c, k, k],
            [s, s],
            [(pad, pad); 2],
        );
        let flop = 2.0 * (batch * o * shape.patch() * shape.pixels()) as f64;
        let x: Vec<f32> = (0..batch * c * side * side)
            .map(|i| (i % 7) as f32 * 0.1)
            .collect();
        let w: Vec<f32> = (0..o * shape.patch())
            .map(|i| (i % 5) as f32 * 0.1)
            .collect();
        let dy: Vec<f32> = (0..batch * o * shape.pixels())
            .map(|i| (i % 3) as f32 * 0.1)
            .collect();
        let mut y = vec![0.0; dy.len()];
        let mut dx = vec![0.0; x.len()];
        let mut dw = vec![0.0; w.len()];
        let ms = [
            median_ms(|| conv::forward(&shape, &x, &w, None, &mut y)),
            median_ms(|| conv::backward_input(&shape, &w, &dy, &mut dx)),
            median_ms(|| conv::backward_weight(&shape, &x, &dy, &mut dw)),
        ];
        for (t, m) in total.iter_mut().zip(ms) {
            *t += m * count as f64;
        }
        let g = |ms: f64| flop / ms / 1e6;
        println!(
            "| {c}->{o} {side}x{side} k{k} s{s} | {count} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} |",
            ms[0],
            g(ms[0]),
            ms[1],
            g(ms[1]),
            ms[2],
            g(ms[2])
        );
    }
    println!(
        "\n{network}, every conv layer once (batch {batch}): forward {:.1} ms, input grad {:.1} ms, weight grad {:.1} ms, total {:.1} ms",
        total[0],
        total[1],
        total[2],
        total.iter().sum::<f64>()
    );
}
