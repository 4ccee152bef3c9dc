//! Batches whose content is a pure function of `(data seed, step)`.

use std::sync::Mutex;

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::{Error, ImageSource, Result, Transform};

/// Domain separators, so the order and augmentation streams never coincide.
const ORDER_STREAM: u64 = 0x006f_7264_6572;
const AUGMENT_STREAM: u64 = 0x6175_676d;

/// Mixes several words into one seed (splitmix64 over the words in order).
pub fn mix_seed(words: &[u64]) -> u64 {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for &w in words {
        state ^= w;
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        state = z ^ (z >> 31);
    }
    state
}

/// A batch of transformed examples, ready to become tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// `[len, C, S, S]`, row-major.
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
    /// `[C, S, S]` of one example.
    pub item_shape: [usize; 3],
}

impl Batch {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Splits the batch into `parts` consecutive micro-batches whose sizes differ by at most
    /// one (fewer when the batch has fewer examples than `parts`).
    pub fn split(self, parts: usize) -> Vec<Batch> {
        let n = self.len();
        let parts = parts.clamp(1, n.max(1));
        if parts == 1 {
            return vec![self];
        }
        let item: usize = self.item_shape.iter().product();
        let (base, extra) = (n / parts, n % parts);
        let mut out = Vec::with_capacity(parts);
        let mut start = 0;
        for p in 0..parts {
            let len = base + usize::from(p < extra);
            out.push(Batch {
                images: self.images[start * item..(start + len) * item].to_vec(),
                labels: self.labels[start..start + len].to_vec(),
                item_shape: self.item_shape,
            });
            start += len;
        }
        out
    }

    /// Images as `[batch, C, S, S]` and labels as `[batch]` (the buffers move, no copy).
    pub fn into_tensors(self, device: &Device) -> (Tensor<4>, Tensor<1, Int>) {
        let n = self.len();
        let [c, h, w] = self.item_shape;
        let images = Tensor::from_data(TensorData::new(self.images, [n, c, h, w]), device);
        let labels = Tensor::from_data(TensorData::new(self.labels, [n]), device);
        (images, labels)
    }
}

/// Builds a batch from the examples at `indices`, each with its own augmentation RNG.
fn build(
    source: &ImageSource,
    transform: &Transform,
    indices: &[usize],
    rng_seed: impl Fn(usize) -> u64 + Sync,
) -> Result<Batch> {
    let item = transform.output_len();
    let mut images = vec![0.0f32; indices.len() * item];
    let mut labels = vec![0i64; indices.len()];
    let work = |(slot, (out, label)): (usize, (&mut [f32], &mut i64))| -> Result<()> {
        let raw = source.get(indices[slot])?;
        if raw.channels != transform.channels() {
            return Err(Error::Invalid(format!(
                "the dataset has {} channel(s) but the transform expects {}",
                raw.channels,
                transform.channels()
            )));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(rng_seed(slot));
        transform.apply(&raw, &mut rng, out);
        *label = raw.label as i64;
        Ok(())
    };
    let pairs = images.chunks_mut(item).zip(labels.iter_mut());
    // Decoding (ImageNet) is worth threads; copying 28x28 bytes is not.
    if is_heavy(transform) {
        pairs
            .enumerate()
            .collect::<Vec<_>>()
            .into_par_iter()
            .try_for_each(work)?;
    } else {
        pairs.enumerate().try_for_each(work)?;
    }
    Ok(Batch {
        images,
        labels,
        item_shape: [transform.channels(), transform.size, transform.size],
    })
}

/// Whether building a batch is worth worker threads (decoding and resampling large images)
/// rather than a loop on the calling thread.
fn is_heavy(transform: &Transform) -> bool {
    transform.output_len() >= 3 * 64 * 64
}

/// A batch being built on a background thread.
type Pending = (u64, std::thread::JoinHandle<Result<Batch>>);

/// Training batches: epoch `e` visits the examples in the order of a permutation seeded by
/// `(seed, e)`; the example at position `p` of epoch `e` is augmented with an RNG seeded by
/// `(seed, e, p)`. Epochs have `ceil(N / batch_size)` iterations; the last, partial batch is
/// kept (as in the paper's framework).
///
/// Large images are decoded and augmented by a pool of worker threads, and
/// [`SeededBatches::batch_and_prefetch`] builds the next step's batch in the background while
/// the caller trains on this one, so an accelerator is not left waiting for the CPU.
#[derive(Clone)]
pub struct SeededBatches {
    inner: std::sync::Arc<BatchesInner>,
}

struct BatchesInner {
    source: ImageSource,
    transform: Transform,
    batch_size: usize,
    seed: u64,
    order: Mutex<Option<(u64, std::sync::Arc<Vec<usize>>)>>,
    next: Mutex<Option<Pending>>,
    /// Build every next batch in the background, not only large images' (for accelerators).
    always_ahead: bool,
}

impl SeededBatches {
    pub fn new(
        source: ImageSource,
        transform: Transform,
        batch_size: usize,
        seed: u64,
    ) -> Result<Self> {
        if batch_size == 0 {
            return Err(Error::Invalid("batch size must be at least 1".into()));
        }
        if source.is_empty() {
            return Err(Error::Invalid("the training set is empty".into()));
        }
        Ok(SeededBatches {
            inner: std::sync::Arc::new(BatchesInner {
                source,
                transform,
                batch_size,
                seed,
                order: Mutex::new(None),
                next: Mutex::new(None),
                always_ahead: false,
            }),
        })
    }

    /// Builds every next batch in the background ([`SeededBatches::batch_and_prefetch`]), not
    /// only large images': for a GPU, whose step is short next to building a batch on the
    /// host. The batches are the same either way.
    pub fn always_ahead(self, on: bool) -> Self {
        let inner = std::sync::Arc::try_unwrap(self.inner).unwrap_or_else(|shared| BatchesInner {
            source: shared.source.clone(),
            transform: shared.transform.clone(),
            batch_size: shared.batch_size,
            seed: shared.seed,
            order: Mutex::new(None),
            next: Mutex::new(None),
            always_ahead: shared.always_ahead,
        });
        SeededBatches {
            inner: std::sync::Arc::new(BatchesInner {
                always_ahead: on,
                ..inner
            }),
        }
    }

    pub fn iterations_per_epoch(&self) -> u64 {
        self.inner.source.len().div_ceil(self.inner.batch_size) as u64
    }

    pub fn dataset_len(&self) -> usize {
        self.inner.source.len()
    }

    /// The batch of `step`, like [`SeededBatches::batch`]; for large images (or always, see
    /// [`SeededBatches::always_ahead`]) it also starts building the batch of `step + 1` on a
    /// background thread, which the next call picks up.
    pub fn batch_and_prefetch(&self, step: u64) -> Result<Batch> {
        if !self.inner.always_ahead && !is_heavy(&self.inner.transform) {
            return self.batch(step);
        }
        let pending = self
            .inner
            .next
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let batch = match pending {
            Some((s, handle)) if s == step => handle
                .join()
                .map_err(|_| Error::Invalid("the batch-building thread panicked".into()))?,
            _ => self.batch(step),
        };
        let ahead = self.clone();
        let handle = std::thread::spawn(move || ahead.batch(step + 1));
        *self.inner.next.lock().unwrap_or_else(|p| p.into_inner()) = Some((step + 1, handle));
        batch
    }

    /// The example order of `epoch`.
    pub fn epoch_order(&self, epoch: u64) -> std::sync::Arc<Vec<usize>> {
        let inner = &self.inner;
        let mut cached = inner.order.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((e, order)) = cached.as_ref()
            && *e == epoch
        {
            return order.clone();
        }
        let mut order: Vec<usize> = (0..inner.source.len()).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(mix_seed(&[
            ORDER_STREAM,
            inner.seed,
            epoch,
        ])));
        let order = std::sync::Arc::new(order);
        *cached = Some((epoch, order.clone()));
        order
    }

    /// Step `step`'s epoch, that epoch's example order, and the range of the order its batch
    /// takes.
    fn place(&self, step: u64) -> (u64, std::sync::Arc<Vec<usize>>, std::ops::Range<usize>) {
        let ipe = self.iterations_per_epoch();
        let (epoch, within) = (step / ipe, (step % ipe) as usize);
        let order = self.epoch_order(epoch);
        let start = within * self.inner.batch_size;
        let end = (start + self.inner.batch_size).min(order.len());
        (epoch, order, start..end)
    }

    /// The training examples (indices into the source) of step `step`'s batch, in order.
    pub fn indices(&self, step: u64) -> Vec<usize> {
        let (_, order, range) = self.place(step);
        order[range].to_vec()
    }

    /// The batch of training step `step` (0-based).
    pub fn batch(&self, step: u64) -> Result<Batch> {
        let (epoch, order, range) = self.place(step);
        let inner = &self.inner;
        let (seed, start) = (inner.seed, range.start);
        build(&inner.source, &inner.transform, &order[range], |slot| {
            mix_seed(&[AUGMENT_STREAM, seed, epoch, (start + slot) as u64])
        })
    }
}

/// Evaluation batches over the first `limit` examples (all when `None`), in dataset order,
/// without augmentation.
pub fn eval_batches<'a>(
    source: &'a ImageSource,
    transform: &'a Transform,
    batch_size: usize,
    limit: Option<usize>,
) -> impl Iterator<Item = Result<Batch>> + 'a {
    let eval = transform.for_eval();
    let n = limit.map_or(source.len(), |l| l.min(source.len()));
    let batch_size = batch_size.max(1);
    (0..n.div_ceil(batch_size)).map(move |b| {
        let indices: Vec<usize> = (b * batch_size..((b + 1) * batch_size).min(n)).collect();
        build(source, &eval, &indices, |_| 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Augmentation, Dataset, RawImage};
    use std::sync::Arc;

    struct Toy(usize);
    impl Dataset<RawImage, Error> for Toy {
        fn get(&self, index: usize) -> Result<RawImage> {
            Ok(RawImage {
                pixels: vec![index as u8; 4],
                channels: 1,
                height: 2,
                width: 2,
                label: index % 10,
            })
        }
        fn len(&self) -> usize {
            self.0
        }
    }

    fn batches(seed: u64) -> SeededBatches {
        let transform = Transform {
            size: 4,
            mean: vec![0.0],
            std: vec![1.0],
            augmentation: Augmentation::CropFlip { padding: 1 },
        };
        SeededBatches::new(Arc::new(Toy(10)), transform, 4, seed).expect("valid")
    }

    #[test]
    fn epochs_cover_every_example_once_with_a_partial_last_batch() {
        let b = batches(1);
        assert_eq!(b.iterations_per_epoch(), 3);
        for epoch in 0..3 {
            let mut labels: Vec<i64> = (0..3)
                .flat_map(|i| b.batch(epoch * 3 + i).expect("batch").labels)
                .collect();
            assert_eq!(b.batch(epoch * 3 + 2).expect("batch").len(), 2);
            labels.sort();
            assert_eq!(labels, (0..10).collect::<Vec<i64>>());
        }
        assert_ne!(b.epoch_order(0), b.epoch_order(1));
    }

    #[test]
    fn same_seed_same_batches_other_seed_other_batches() {
        let (a, a2, c) = (batches(7), batches(7), batches(8));
        for step in [0, 1, 5, 40] {
            assert_eq!(a.batch(step).expect("a"), a2.batch(step).expect("a2"));
        }
        // Reading out of order (as a resumed run does) gives the same batch.
        assert_eq!(a.batch(5).expect("a"), batches(7).batch(5).expect("fresh"));
        assert!((0..6).any(|s| a.batch(s).expect("a") != c.batch(s).expect("c")));
    }

    #[test]
    fn split_keeps_every_example_in_order() {
        let batch = batches(3).batch(0).expect("batch");
        let parts = batch.clone().split(3);
        assert_eq!(
            parts.iter().map(Batch::len).collect::<Vec<_>>(),
            vec![2, 1, 1]
        );
        let labels: Vec<i64> = parts.iter().flat_map(|p| p.labels.clone()).collect();
        let images: Vec<f32> = parts.iter().flat_map(|p| p.images.clone()).collect();
        assert_eq!(
            (labels, images),
            (batch.labels.clone(), batch.images.clone())
        );
        assert_eq!(batch.clone().split(9).len(), 4);
        assert_eq!(batch.split(1).len(), 1);
    }

    #[test]
    fn prefetched_batches_equal_direct_ones() {
        struct Big(usize);
        impl Dataset<RawImage, Error> for Big {
            fn get(&self, index: usize) -> Result<RawImage> {
                Ok(RawImage {
                    pixels: (0..3 * 70 * 70)
                        .map(|i| ((i + index) % 251) as u8)
                        .collect(),
                    channels: 3,
                    height: 70,
                    width: 70,
                    label: index % 10,
                })
            }
            fn len(&self) -> usize {
                self.0
            }
        }
        let transform = Transform {
            size: 64,
            mean: vec![0.5; 3],
            std: vec![0.25; 3],
            augmentation: Augmentation::RandomResizedCropFlip,
        };
        let b = SeededBatches::new(Arc::new(Big(9)), transform.clone(), 4, 5).expect("valid");
        // Small images too when asked to (a GPU's trainer asks).
        let small = Transform {
            size: 8,
            ..transform
        };
        let s = SeededBatches::new(Arc::new(Big(9)), small, 4, 5)
            .expect("valid")
            .always_ahead(true);
        for b in [b, s] {
            // In order (prefetch hits), then a jump (prefetch of another step is discarded).
            for step in [0, 1, 2, 7, 3] {
                assert_eq!(
                    b.batch_and_prefetch(step).expect("prefetched"),
                    b.batch(step).expect("direct")
                );
            }
            assert!(b.inner.next.lock().expect("lock").is_some(), "built ahead");
        }
    }

    #[test]
    fn eval_batches_are_in_order_and_respect_limit() {
        let source: ImageSource = Arc::new(Toy(10));
        let t = Transform {
            size: 2,
            mean: vec![0.0],
            std: vec![1.0],
            augmentation: Augmentation::CropFlip { padding: 1 },
        };
        let all: Vec<Batch> = eval_batches(&source, &t, 4, None)
            .collect::<Result<_>>()
            .expect("eval");
        assert_eq!(
            all.iter().map(Batch::len).collect::<Vec<_>>(),
            vec![4, 4, 2]
        );
        assert_eq!(all[0].labels, vec![0, 1, 2, 3]);
        // No augmentation at evaluation: pixel values are untouched.
        assert!(
            all[1].images[..4]
                .iter()
                .all(|&v| (v - 4.0 / 255.0).abs() < 1e-6)
        );
        let some: Vec<Batch> = eval_batches(&source, &t, 4, Some(5))
            .collect::<Result<_>>()
            .expect("eval");
        assert_eq!(some.iter().map(Batch::len).sum::<usize>(), 5);
    }
}
