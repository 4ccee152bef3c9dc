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
