//! Turning a [`RawImage`] into a normalised `[C, S, S]` float image, with the paper's
//! augmentations drawn from a caller-supplied RNG.

use rand::Rng;
use serde::{Deserialize, Serialize};

pub use results::Augmentation;

use crate::RawImage;

/// The per-example transform: geometry to `size x size`, optional augmentation, per-channel
/// normalisation of pixel values scaled to `[0, 1]`.
///
/// Geometry without augmentation: an image that fits inside `size x size` is zero-padded
/// evenly on every side (how 28x28 MNIST-family images are fed to the 32x32 CIFAR networks:
/// padding with raw value 0, the background colour, before normalisation); an image larger in
/// either side is resized so its shorter side is `size * 8 / 7` and centre-cropped (the
/// ImageNet evaluation transform, 256 then 224).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transform {
    pub size: usize,
    pub mean: Vec<f32>,
    pub std: Vec<f32>,
    pub augmentation: Augmentation,
}

impl Transform {
    pub fn channels(&self) -> usize {
        self.mean.len()
    }

    /// Number of floats one transformed example occupies.
    pub fn output_len(&self) -> usize {
        self.channels() * self.size * self.size
    }

    /// The same transform without augmentation (for evaluation).
    pub fn for_eval(&self) -> Transform {
        Transform {
            augmentation: Augmentation::None,
            ..self.clone()
        }
    }

    /// Writes the transformed `image` into `out` (`[C, size, size]`). `rng` drives the
    /// augmentation; with [`Augmentation::None`] it is not used.
    pub fn apply(&self, image: &RawImage, rng: &mut impl Rng, out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.output_len());
        debug_assert_eq!(image.channels, self.channels());
        match self.augmentation {
            Augmentation::RandomResizedCropFlip => {
                let (y0, x0, h, w) = random_resized_crop(image.height, image.width, rng);
                let flip = rng.random_bool(0.5);
                self.resample(image, (y0 as f32, x0 as f32, h as f32, w as f32), flip, out);
            }
            Augmentation::CropFlip { padding } => {
                // Offsets of the crop inside the image padded by `padding`, then the whole
                // thing is placed like the un-augmented centred image.
                let dy = rng.random_range(0..=2 * padding) as isize - padding as isize;
                let dx = rng.random_range(0..=2 * padding) as isize - padding as isize;
                let flip = rng.random_bool(0.5);
                self.place(image, dy, dx, flip, out);
            }
            Augmentation::None => self.place(image, 0, 0, false, out),
        }
    }

    /// Centres `image` on a `size x size` canvas (padding with zeros), shifted by `(dy, dx)`,
    /// optionally mirrored; images larger than `size` in either side go through the
    /// resize-and-centre-crop path instead (so a 200x300 ImageNet image is resized, not padded).
    fn place(&self, image: &RawImage, dy: isize, dx: isize, flip: bool, out: &mut [f32]) {
        let s = self.size;
        if (image.height > s || image.width > s) && dy == 0 && dx == 0 {
            let short = image.height.min(image.width) as f32;
            let crop = short * 7.0 / 8.0;
            let y0 = (image.height as f32 - crop) / 2.0;
            let x0 = (image.width as f32 - crop) / 2.0;
            self.resample(image, (y0, x0, crop, crop), flip, out);
            return;
        }
        let off_y = (s as isize - image.height as isize) / 2;
        let off_x = (s as isize - image.width as isize) / 2;
        let plane_in = image.height * image.width;
        for c in 0..self.channels() {
            let (mean, std) = (self.mean[c], self.std[c]);
            let zero = (0.0 - mean) / std;
            for y in 0..s {
                let sy = y as isize - off_y + dy;
                for x in 0..s {
                    let xx = if flip { s - 1 - x } else { x };
                    let sx = xx as isize - off_x + dx;
                    let v = if sy >= 0
                        && sx >= 0
                        && (sy as usize) < image.height
                        && (sx as usize) < image.width
                    {
                        let p =
                            image.pixels[c * plane_in + sy as usize * image.width + sx as usize];
                        (p as f32 / 255.0 - mean) / std
                    } else {
                        zero
                    };
                    out[(c * s + y) * s + x] = v;
                }
            }
        }
    }

    /// Bilinear resampling of the box `(y0, x0, h, w)` of `image` to `size x size`.
    fn resample(
        &self,
        image: &RawImage,
        (y0, x0, h, w): (f32, f32, f32, f32),
        flip: bool,
        out: &mut [f32],
    ) {
        let s = self.size;
        let plane_in = image.height * image.width;
        let max_y = (image.height - 1) as f32;
        let max_x = (image.width - 1) as f32;
        for c in 0..self.channels() {
            let (mean, std) = (self.mean[c], self.std[c]);
            let src = &image.pixels[c * plane_in..(c + 1) * plane_in];
            for y in 0..s {
                let fy = (y0 + (y as f32 + 0.5) * h / s as f32 - 0.5).clamp(0.0, max_y);
                let (iy, ty) = (fy.floor() as usize, fy - fy.floor());
                let iy1 = (iy + 1).min(image.height - 1);
                for x in 0..s {
                    let xx = if flip { s - 1 - x } else { x };
                    let fx = (x0 + (xx as f32 + 0.5) * w / s as f32 - 0.5).clamp(0.0, max_x);
                    let (ix, tx) = (fx.floor() as usize, fx - fx.floor());
                    let ix1 = (ix + 1).min(image.width - 1);
                    let at = |yy: usize, xx: usize| src[yy * image.width + xx] as f32;
                    let top = at(iy, ix) * (1.0 - tx) + at(iy, ix1) * tx;
                    let bottom = at(iy1, ix) * (1.0 - tx) + at(iy1, ix1) * tx;
                    let p = top * (1.0 - ty) + bottom * ty;
                    out[(c * s + y) * s + x] = (p / 255.0 - mean) / std;
                }
            }
        }
    }
}

/// The box of torchvision's `RandomResizedCrop` (scale 0.08-1, log-uniform aspect 3/4-4/3, ten
/// tries, then a centre crop of the clamped aspect ratio).
fn random_resized_crop(
    height: usize,
    width: usize,
    rng: &mut impl Rng,
) -> (usize, usize, usize, usize) {
    let area = (height * width) as f32;
    let (log_lo, log_hi) = ((3.0f32 / 4.0).ln(), (4.0f32 / 3.0).ln());
    for _ in 0..10 {
        let target = area * rng.random_range(0.08f32..=1.0);
        let ratio = rng.random_range(log_lo..=log_hi).exp();
        let w = (target * ratio).sqrt().round() as usize;
        let h = (target / ratio).sqrt().round() as usize;
        if w > 0 && h > 0 && w <= width && h <= height {
            let y0 = rng.random_range(0..=height - h);
            let x0 = rng.random_range(0..=width - w);
            return (y0, x0, h, w);
        }
    }
    let ratio = width as f32 / height as f32;
    let (h, w) = if ratio < 3.0 / 4.0 {
        (((width as f32) / (3.0 / 4.0)).round() as usize, width)
    } else if ratio > 4.0 / 3.0 {
        (height, ((height as f32) * (4.0 / 3.0)).round() as usize)
    } else {
        (height, width)
    };
    ((height - h) / 2, (width - w) / 2, h, w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn image(h: usize, w: usize) -> RawImage {
        RawImage {
            pixels: (0..h * w).map(|i| (i % 256) as u8).collect(),
            channels: 1,
            height: h,
            width: w,
            label: 0,
        }
    }

    fn transform(size: usize, augmentation: Augmentation) -> Transform {
        Transform {
            size,
            mean: vec![0.0],
            std: vec![1.0 / 255.0],
            augmentation,
        }
    }

    #[test]
    fn pads_small_images_to_size_with_background() {
        // 2x2 into 4x4: one pixel of padding on each side; std 1/255 maps pixel p to p.
        let t = transform(4, Augmentation::None);
        let mut out = vec![0.0; 16];
        t.apply(
            &image(2, 2),
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
            &mut out,
        );
        #[rustfmt::skip]
        let expected = [0., 0., 0., 0.,
                        0., 0., 1., 0.,
                        0., 2., 3., 0.,
                        0., 0., 0., 0.];
        assert_eq!(out, expected);
    }

    #[test]
    fn normalises_per_channel() {
        let t = Transform {
            size: 1,
            mean: vec![0.5, 0.0],
            std: vec![0.5, 2.0],
            augmentation: Augmentation::None,
        };
        let img = RawImage {
            pixels: vec![255, 51],
            channels: 2,
            height: 1,
            width: 1,
            label: 0,
        };
        let mut out = vec![0.0; 2];
        t.apply(
            &img,
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
            &mut out,
        );
        assert!(
            (out[0] - 1.0).abs() < 1e-6 && (out[1] - 0.1).abs() < 1e-6,
            "{out:?}"
        );
    }

    #[test]
    fn crop_flip_is_a_shifted_possibly_mirrored_window() {
        let t = transform(4, Augmentation::CropFlip { padding: 1 });
        let img = image(4, 4);
        let mut seen_flip = false;
        let mut seen_shift = false;
        for seed in 0..50 {
            let mut out = vec![0.0; 16];
            t.apply(
                &img,
                &mut rand_chacha::ChaCha8Rng::seed_from_u64(seed),
                &mut out,
            );
            // Every non-zero value is an original pixel, and rows stay rows.
            let row_of = |v: f32| (v as usize) / 4;
            for y in 0..4 {
                let rows: Vec<usize> = (0..4)
                    .map(|x| out[y * 4 + x])
                    .filter(|&v| v > 0.0)
                    .map(row_of)
                    .collect();
                assert!(rows.windows(2).all(|w| w[0] == w[1]));
            }
            seen_flip |= out[5] > out[6] && out[6] > 0.0;
            seen_shift |= out[0] > 0.0 || out[15] == 0.0;
        }
        assert!(seen_flip && seen_shift);
    }

    #[test]
    fn large_images_are_resized_and_centre_cropped() {
        let t = transform(2, Augmentation::None);
        let img = RawImage {
            pixels: vec![100; 64],
            channels: 1,
            height: 8,
            width: 8,
            label: 0,
        };
        let mut out = vec![0.0; 4];
        t.apply(
            &img,
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
            &mut out,
        );
        assert!(out.iter().all(|&v| (v - 100.0).abs() < 1e-3), "{out:?}");
        // Shorter than the crop but wider: resized too (its shorter side to 2 * 8 / 7).
        let wide = RawImage {
            pixels: vec![50; 12],
            channels: 1,
            height: 1,
            width: 12,
            label: 0,
        };
        let mut out = vec![0.0; 4];
        t.apply(
            &wide,
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(0),
            &mut out,
        );
        assert!(out.iter().all(|&v| (v - 50.0).abs() < 1e-3), "{out:?}");
        let rrc = transform(3, Augmentation::RandomResizedCropFlip);
        let mut out = vec![0.0; 9];
        rrc.apply(
            &img,
            &mut rand_chacha::ChaCha8Rng::seed_from_u64(3),
            &mut out,
        );
        assert!(out.iter().all(|&v| (v - 100.0).abs() < 1e-3), "{out:?}");
    }
}
