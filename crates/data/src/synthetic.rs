//! Small in-memory datasets for tests and benchmarks, with the exact item format of the real
//! loaders.

use rand::{RngCore, SeedableRng};

use crate::{Dataset, Error, RawImage, Result};

/// `channels x side x side` images of uniformly random bytes (labels `index % 10`): the shape
/// of a real dataset without its content, for timing.
pub struct Noise {
    pixels: Vec<u8>,
    shape: [usize; 3],
    len: usize,
}

impl Noise {
    pub fn new(len: usize, channels: usize, side: usize) -> Self {
        let shape = [channels, side, side];
        let mut pixels = vec![0u8; len * shape.iter().product::<usize>()];
        rand_chacha::ChaCha8Rng::seed_from_u64(0).fill_bytes(&mut pixels);
        Noise { pixels, shape, len }
    }
}

impl Dataset<RawImage, Error> for Noise {
    fn get(&self, index: usize) -> Result<RawImage> {
        let size: usize = self.shape.iter().product();
        Ok(RawImage {
            pixels: self.pixels[index * size..(index + 1) * size].to_vec(),
            channels: self.shape[0],
            height: self.shape[1],
            width: self.shape[2],
            label: index % 10,
        })
    }
    fn len(&self) -> usize {
        self.len
    }
}

/// 1 x 8 x 8 grey images whose bright row encodes the label (`index % 4`), over a faint
/// per-example texture: a task a small network learns in a few dozen steps.
pub struct Stripes(pub usize);

impl Dataset<RawImage, Error> for Stripes {
    fn get(&self, index: usize) -> Result<RawImage> {
        let label = index % 4;
        let pixels = (0..64)
            .map(|p| {
                if p / 8 == 2 * label {
                    250
                } else {
                    ((p * 7 + index * 13) % 40) as u8
                }
            })
            .collect();
        Ok(RawImage {
            pixels,
            channels: 1,
            height: 8,
            width: 8,
            label,
        })
    }
    fn len(&self) -> usize {
        self.0
    }
}
