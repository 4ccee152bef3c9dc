//! Device-to-host reads, counted.
//!
//! On a GPU every read (`into_scalar`, `into_data`, `to_data`) waits for the device's queue to
//! drain, so one read per training step serialises the GPU with the host. The framework's
//! reads all go through this module (clippy's `disallowed-methods` rejects burn's read
//! methods elsewhere, `clippy.toml`), which counts them per thread: a test can then assert
//! that a training step between two scheduled reads makes none.
//!
//! On burn's CPU backend a read is a copy in memory, but it is counted the same way: the
//! count is about the code path, which is the same on every backend.

use std::cell::Cell;

use burn::tensor::{Int, Tensor, TensorData};

thread_local! {
    static READS: Cell<u64> = const { Cell::new(0) };
}

/// Device-to-host reads made so far on the calling thread.
pub fn reads_on_this_thread() -> u64 {
    READS.with(Cell::get)
}

fn counted(read: impl FnOnce() -> TensorData) -> TensorData {
    READS.with(|n| n.set(n.get() + 1));
    read()
}

/// All values of a tensor, in row-major order.
#[allow(clippy::disallowed_methods)] // the one place reads happen
pub fn data<const D: usize>(tensor: Tensor<D>) -> TensorData {
    counted(|| tensor.into_data())
}

/// All values of an integer tensor, in row-major order.
#[allow(clippy::disallowed_methods)] // the one place reads happen
pub fn int_data<const D: usize>(tensor: Tensor<D, Int>) -> TensorData {
    counted(|| tensor.into_data())
}

/// A float tensor's values as `f32`, in row-major order.
pub fn values<const D: usize>(tensor: Tensor<D>) -> Vec<f32> {
    data(tensor)
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
}

/// The value of a one-element float tensor (NaN if it has none).
pub fn scalar(tensor: Tensor<1>) -> f32 {
    values(tensor).first().copied().unwrap_or(f32::NAN)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_read_is_counted_on_its_thread() {
        let device = burn::tensor::Device::flex();
        let before = reads_on_this_thread();
        let t = Tensor::<1>::from_floats([1.0, 2.0, 3.0], &device);
        let sum = t.clone().sum();
        assert_eq!(reads_on_this_thread(), before, "no read without a call");
        assert_eq!(scalar(sum), 6.0);
        assert_eq!(values(t), vec![1.0, 2.0, 3.0]);
        assert_eq!(reads_on_this_thread(), before + 2);
        let other = std::thread::spawn(reads_on_this_thread)
            .join()
            .expect("thread");
        assert_eq!(other, 0, "counted per thread");
    }
}
