//! Which burn backend runs the computation, chosen by cargo feature: `cuda`, then `wgpu`,
//! then the CPU backends (`flex`, the default, then `ndarray`).

use burn::tensor::Device;

/// The device of the backend selected at compile time.
#[allow(unreachable_code)]
pub fn default_device() -> Device {
    #[cfg(feature = "cuda")]
    return Device::cuda(0usize);
    #[cfg(feature = "wgpu")]
    return Device::wgpu(burn::tensor::DeviceKind::DefaultDevice);
    #[cfg(feature = "flex")]
    return Device::flex();
    #[cfg(feature = "ndarray")]
    return Device::ndarray();
    Device::default()
}

/// `count` devices of the backend selected at compile time, for data-parallel training: GPUs
/// 0..count with `cuda` or `wgpu`; on the CPU backends the same CPU `count` times (the
/// data-parallel code path then runs in `count` threads, which is how it is tested without
/// GPUs).
#[allow(unreachable_code)]
pub fn devices(count: usize) -> Vec<Device> {
    let count = count.max(1);
    #[cfg(feature = "cuda")]
    return (0..count).map(Device::cuda).collect();
    #[cfg(feature = "wgpu")]
    return (0..count)
        .map(|i| {
            if count == 1 {
                Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)
            } else {
                Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(i))
            }
        })
        .collect();
    vec![default_device(); count]
}

/// The name of that backend, recorded with results.
#[allow(unreachable_code)]
pub fn backend_name() -> &'static str {
    #[cfg(feature = "cuda")]
    return "cuda";
    #[cfg(feature = "wgpu")]
    return "wgpu";
    #[cfg(feature = "flex")]
    return "flex (CPU)";
    #[cfg(feature = "ndarray")]
    return "ndarray (CPU)";
    "burn default"
}
