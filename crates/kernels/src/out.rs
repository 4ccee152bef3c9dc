//! Output buffers a kernel writes every element of, handed out without zeroing them first.
//!
//! A kernel that fills a `&mut [MaybeUninit<f32>]` writes each element (`MaybeUninit::write`);
//! [`assume_written`] then gives the floats back. In debug builds the buffer starts as NaN, so
//! an element a kernel misses shows up in every test downstream of it; in release builds it
//! is not touched before the kernel writes it (zeroing the outputs of convolutions and batch
//! norm was a tenth of a narrow Resnet-20 step).

use std::mem::{ManuallyDrop, MaybeUninit};

/// `n` floats for a kernel that writes every one of them.
pub(crate) fn uninit(n: usize) -> Vec<MaybeUninit<f32>> {
    let mut v = Vec::with_capacity(n);
    if cfg!(debug_assertions) {
        v.resize(n, MaybeUninit::new(f32::NAN));
    } else {
        v.resize_with(n, MaybeUninit::uninit);
    }
    v
}

/// The floats of `v`.
///
/// # Safety
/// Every element of `v` has been written.
#[allow(unsafe_code)]
pub(crate) unsafe fn assume_written(v: Vec<MaybeUninit<f32>>) -> Vec<f32> {
    let mut v = ManuallyDrop::new(v);
    // SAFETY: `MaybeUninit<f32>` has the size and alignment of `f32`, the allocation is a
    // Vec's of this capacity, and the caller guarantees that every element is initialised.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<f32>(), v.len(), v.capacity()) }
}

/// `s` as floats, zeros written into it first: for the kernels that accumulate into their
/// output, or write it through `&mut [f32]` (gemm).
#[allow(unsafe_code)]
pub(crate) fn zeroed(s: &mut [MaybeUninit<f32>]) -> &mut [f32] {
    for x in s.iter_mut() {
        x.write(0.0);
    }
    // SAFETY: every element was just written, and the layouts are the same.
    unsafe { &mut *(std::ptr::from_mut(s) as *mut [f32]) }
}

/// An initialised buffer handed to a kernel that takes `&mut [MaybeUninit<f32>]`.
///
/// # Safety
/// Nothing may write `MaybeUninit::uninit()` through the returned slice: `s` must still be
/// initialised when the borrow ends (the kernels of this crate only ever write floats).
#[allow(unsafe_code)]
pub(crate) unsafe fn as_uninit(s: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: the layouts are the same; the caller keeps every element initialised.
    unsafe { &mut *(std::ptr::from_mut(s) as *mut [MaybeUninit<f32>]) }
}
