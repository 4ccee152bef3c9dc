//! Which burn backend runs the computation, chosen by cargo feature: `cuda`, then `wgpu`,
//! then the CPU backends (`flex`, the default, then `ndarray`). Which device of a GPU backend
//! is used is chosen at run time by `$REWIND_DEVICE` ([`DEVICE_ENV`]).

use burn::tensor::{Device, DeviceKind};

use crate::{Error, Result};

/// Selects the device of a GPU build: `gpu` (the default: wgpu's best adapter, a high-power
/// GPU first; CUDA device 0), `discrete:N`, `integrated:N`, `virtual:N` (wgpu adapters of that
/// type, N-th, default 0), `cpu` (wgpu on a software Vulkan driver such as Mesa's lavapipe),
/// `cuda:N`. Ignored by CPU builds.
pub const DEVICE_ENV: &str = "REWIND_DEVICE";

/// Parses a [`DEVICE_ENV`] value for the backend of this build.
#[allow(unreachable_code, unused_variables)]
pub fn parse_device(spec: &str) -> Result<Device> {
    let spec = spec.trim().to_ascii_lowercase();
    let (kind, index) = match spec.split_once(':') {
        Some((k, i)) => (
            k.to_string(),
            i.parse::<usize>().map_err(|_| {
                Error::Config(format!("{DEVICE_ENV}={spec}: `{i}` is not a device index"))
            })?,
        ),
        None => (spec.clone(), 0),
    };
    let unknown = || {
        Error::Config(format!(
            "{DEVICE_ENV}={spec} is not a device of the {} backend: use gpu, discrete:N, \
             integrated:N, virtual:N or cpu (wgpu), cuda:N (cuda)",
            backend_name()
        ))
    };
    #[cfg(feature = "cuda")]
    return match kind.as_str() {
        "gpu" | "cuda" | "discrete" => Ok(Device::cuda(index)),
        _ => Err(unknown()),
    };
    #[cfg(feature = "wgpu")]
    return Ok(Device::wgpu(match kind.as_str() {
        "gpu" | "default" => DeviceKind::DefaultDevice,
        "discrete" => DeviceKind::DiscreteGpu(index),
        "integrated" => DeviceKind::IntegratedGpu(index),
        "virtual" => DeviceKind::VirtualGpu(index),
        "cpu" => DeviceKind::Cpu,
        _ => return Err(unknown()),
    }));
    let _ = (kind, index, DeviceKind::Cpu, unknown);
    Ok(cpu_device())
}

#[allow(unreachable_code)]
fn cpu_device() -> Device {
    #[cfg(feature = "flex")]
    return Device::flex();
    #[cfg(feature = "ndarray")]
    return Device::ndarray();
    Device::default()
}

/// The device `$REWIND_DEVICE` selects (the default device of the build when unset).
pub fn selected_device() -> Result<Device> {
    match std::env::var(DEVICE_ENV) {
        Ok(spec) if !spec.trim().is_empty() => parse_device(&spec),
        _ => parse_device("gpu"),
    }
}

/// The device of the backend selected at compile time (and by `$REWIND_DEVICE`; an invalid
/// value falls back to the default device with a warning: [`check_device`] reports it as an
/// error up front).
pub fn default_device() -> Device {
    selected_device().unwrap_or_else(|e| {
        tracing::warn!("{e}; using the default device");
        parse_device("gpu").unwrap_or_else(|_| cpu_device())
    })
}

/// True when this build trains on a GPU backend (`wgpu` or `cuda`).
pub fn is_gpu_build() -> bool {
    cfg!(any(feature = "wgpu", feature = "cuda"))
}

/// Checks that the selected device exists and computes: the first tensor on a GPU device finds
/// its adapter or driver, and burn panics when there is none; this turns that into one error
/// that says what to do. Call before any work.
pub fn check_device() -> Result<Device> {
    let device = selected_device()?;
    if !is_gpu_build() {
        return Ok(device);
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let probe = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        nets::readback::scalar(burn::tensor::Tensor::<1>::from_floats([1.0f32, 2.0], &device).sum())
    }));
    std::panic::set_hook(previous);
    match probe {
        Ok(3.0) => Ok(device),
        Ok(v) => Err(Error::Config(format!(
            "the {} device {device:?} computed 1 + 2 = {v}",
            backend_name()
        ))),
        Err(panic) => {
            let reason = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(Error::Config(format!(
                "no usable {} device ({device:?}): {reason}. For wgpu install a Vulkan driver \
                 (a GPU's, or Mesa's lavapipe: Debian `mesa-vulkan-drivers`, then \
                 {DEVICE_ENV}=cpu); for cuda the NVIDIA driver. See the README, \"Backends\".",
                backend_name()
            )))
        }
    }
}

/// `count` devices of the backend selected at compile time, for data-parallel training: GPUs
/// 0..count with `cuda` or `wgpu` (one device: the selected one); on the CPU backends the same
/// CPU `count` times (the data-parallel code path then runs in `count` threads, which is how it
/// is tested without GPUs).
#[allow(unreachable_code)]
pub fn devices(count: usize) -> Vec<Device> {
    let count = count.max(1);
    if count == 1 {
        return vec![default_device()];
    }
    #[cfg(feature = "cuda")]
    return (0..count).map(Device::cuda).collect();
    #[cfg(feature = "wgpu")]
    return (0..count)
        .map(|i| Device::wgpu(DeviceKind::DiscreteGpu(i)))
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
