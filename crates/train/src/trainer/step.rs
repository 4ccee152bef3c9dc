//! One optimiser step: the batch split into micro-batches, dealt to the devices
//! (data-parallel replicas in their own threads), gradients weighted by each share and summed
//! on the training device.

use std::sync::{Mutex, PoisonError};

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor};
use data::{Batch, mix_seed};
use nets::Classifier;

use super::{DROPOUT_STREAM, TrainState, Trainer};
use crate::{Error, Result};

/// burn's random-number generator is one per process (flex: one locked `StdRng`). A model that
/// draws from it (dropout) seeds it and runs its forward pass holding this lock, so that runs
/// training in other threads (the local executor's workers, data-parallel replicas) cannot
/// reseed it or draw from it between the seed and the model's draws.
static DEVICE_RNG: Mutex<()> = Mutex::new(());

/// Runs `f` holding the lock of burn's process-wide random-number generator: building a
/// module draws its initial values from it (before [`nets::initialize`] replaces them), and a
/// build in one thread must not draw between another run's dropout seed and its draws.
pub fn with_device_rng<R>(f: impl FnOnce() -> R) -> R {
    let _held = DEVICE_RNG.lock().unwrap_or_else(PoisonError::into_inner);
    f()
}

impl Trainer {
    /// One optimiser step on the batch of `state.step` at learning rate `lr`; returns the
    /// loss of that batch when `read_loss` (reading it synchronises with the device).
    pub fn step<M: Classifier>(
        &self,
        state: TrainState<M>,
        loss_fn: &CrossEntropyLoss,
        lr: f64,
        read_loss: bool,
    ) -> Result<(TrainState<M>, Option<f32>)> {
        let (state, loss) = self.step_on_device(state, loss_fn, lr)?;
        Ok((state, read_loss.then(|| nets::readback::scalar(loss))))
    }

    /// One optimiser step on the batch of `state.step` at learning rate `lr`, with no read
    /// from the device; returns the loss of that batch as a one-element tensor on the
    /// training device (not tracked by autodiff).
    pub fn step_on_device<M: Classifier>(
        &self,
        mut state: TrainState<M>,
        loss_fn: &CrossEntropyLoss,
        lr: f64,
    ) -> Result<(TrainState<M>, Tensor<1>)> {
        let batch = self.batches.batch_and_prefetch(state.step)?;
        let total = batch.len();
        let micro_batches = self.config.recipe.data.micro_batches.max(1);
        // Each micro-batch's dropout has its own seed, whichever device computes it.
        let (data_seed, step) = (self.config.data_seed, state.step);
        let dropout_seed =
            move |micro: usize| mix_seed(&[DROPOUT_STREAM, data_seed, step, micro as u64]);
        // Micro-batches dealt round-robin to the devices; the first device's share is computed
        // here, the others' on replicas in their own threads.
        let count = self.device_count();
        let mut shares: Vec<Vec<(usize, Batch)>> = vec![vec![]; count];
        for (i, micro) in batch.split(micro_batches).into_iter().enumerate() {
            shares[i % count].push((i, micro));
        }
        let own = shares.remove(0);
        let model = &state.model;
        let mut accumulator = GradientsAccumulator::new();
        let (mut loss, replica_results) = std::thread::scope(|scope| {
            let workers: Vec<_> = self
                .replicas
                .iter()
                .zip(shares)
                .map(|(device, share)| {
                    // An independent copy: its BN statistics must not mix into the model's.
                    let replica = model.valid().fork(device).train();
                    scope.spawn(move || {
                        let loss_fn = CrossEntropyLossConfig::new().init(device);
                        let mut replica_accumulator = GradientsAccumulator::new();
                        let loss = share_gradients(
                            &replica,
                            share,
                            total,
                            &loss_fn,
                            device,
                            &dropout_seed,
                            &mut replica_accumulator,
                        );
                        (replica_accumulator.grads(), loss)
                    })
                })
                .collect();
            let loss = share_gradients(
                model,
                own,
                total,
                loss_fn,
                &self.device,
                &dropout_seed,
                &mut accumulator,
            );
            (
                loss,
                workers.into_iter().map(|w| w.join()).collect::<Vec<_>>(),
            )
        });
        for joined in replica_results {
            let (grads, replica_loss) = joined
                .map_err(|_| Error::Config("a data-parallel worker thread panicked".into()))?;
            accumulator.accumulate(model, grads.to_device(&self.device, model));
            loss = loss + replica_loss.to_device(&self.device);
        }
        let grads = accumulator.grads();
        state.model = state.optimizer.step(lr, state.model, grads);
        state.step += 1;
        Ok((state, loss))
    }

    /// The loss function of training (cross-entropy), on the training device.
    pub fn loss_fn(&self) -> CrossEntropyLoss {
        CrossEntropyLossConfig::new().init(&self.device)
    }
}

/// The training loss of one (micro-)batch: the weighted cross-entropies of the model's
/// training outputs (Inception-v3's auxiliary head included), times `scale`.
fn weighted_loss<M: Classifier>(
    model: &M,
    images: Tensor<4>,
    labels: Tensor<1, burn::tensor::Int>,
    loss_fn: &CrossEntropyLoss,
    scale: f32,
) -> Tensor<1> {
    let mut terms = model
        .forward_train(images.clone())
        .into_iter()
        .map(|(weight, logits)| {
            loss_fn
                .forward(logits, labels.clone())
                .mul_scalar(weight * scale)
        });
    match terms.next() {
        Some(first) => terms.fold(first, |sum, term| sum + term),
        // A model that names no training outputs is trained on its plain logits.
        None => loss_fn
            .forward(model.forward(images), labels)
            .mul_scalar(scale),
    }
}

/// Adds the gradients of `share`'s micro-batches to `accumulator`, each weighted by its share
/// of the `total` examples of the whole batch, so that the sum over all micro-batches is the
/// gradient of the whole batch's mean loss; returns the summed loss, on `device`, unread.
/// Micro-batch `i` draws its dropout from `dropout_seed(i)`.
fn share_gradients<M: Classifier>(
    model: &M,
    share: Vec<(usize, Batch)>,
    total: usize,
    loss_fn: &CrossEntropyLoss,
    device: &Device,
    dropout_seed: &dyn Fn(usize) -> u64,
    accumulator: &mut GradientsAccumulator<M>,
) -> Tensor<1> {
    let mut loss_sum = Tensor::<1>::zeros([1], device);
    for (index, micro) in share {
        let weight = micro.len() as f32 / total as f32;
        let (images, labels) = micro.into_tensors(device);
        let loss = {
            // The lock guards no data: a panic elsewhere while holding it leaves nothing broken.
            let _rng = model.draws_random_numbers().then(|| {
                let held = DEVICE_RNG.lock().unwrap_or_else(PoisonError::into_inner);
                device.seed(dropout_seed(index));
                held
            });
            weighted_loss(model, images, labels, loss_fn, weight)
        };
        loss_sum = loss_sum + loss.clone().detach();
        accumulator.accumulate(model, GradientsParams::from_grads(loss.backward(), model));
    }
    loss_sum
}
