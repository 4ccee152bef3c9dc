//! Which burn backend runs the computation. Cargo features say which backends a build holds:
//! `cuda`, `wgpu` (kernels compiled to WGSL), `vulkan` (wgpu plus cubecl's SPIR-V compiler,
//! which Vulkan devices then use), and the CPU backends (`flex`, the default, and `ndarray`).
//! One binary may hold several GPU backends; `$REWIND_DEVICE` ([`DEVICE_ENV`]) picks the
//! device, and so the backend, at run time.

use burn::tensor::{Device, DeviceKind};

use crate::{Error, Result};

/// Selects the device of a GPU build: `gpu` (the default: CUDA device 0 when the build has
/// `cuda`, else wgpu's best adapter, a high-power GPU first), `cuda:N`, `wgpu` (wgpu's best
/// adapter), `discrete:N`, `integrated:N`, `virtual:N` (wgpu adapters of that type, N-th,
/// default 0), `cpu` (wgpu on a software Vulkan driver such as Mesa's lavapipe). Ignored by CPU
/// builds.
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
            "{DEVICE_ENV}={spec} is not a device of this build ({}): use {}",
            backend_name(),
            [
                cfg!(feature = "cuda").then_some("gpu, cuda:N"),
                cfg!(feature = "wgpu")
                    .then_some("gpu, wgpu, discrete:N, integrated:N, virtual:N, cpu"),
            ]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" or ")
        ))
    };
    #[cfg(feature = "cuda")]
    if matches!(kind.as_str(), "gpu" | "cuda") {
        return Ok(Device::cuda(index));
    }
    #[cfg(feature = "wgpu")]
    {
        let wgpu_kind = match kind.as_str() {
            "gpu" | "default" | "wgpu" => DeviceKind::DefaultDevice,
            "discrete" => DeviceKind::DiscreteGpu(index),
            "integrated" => DeviceKind::IntegratedGpu(index),
            "virtual" => DeviceKind::VirtualGpu(index),
            "cpu" => DeviceKind::Cpu,
            _ => return Err(unknown()),
        };
        return Ok(Device::wgpu(wgpu_kind));
    }
    if is_gpu_build() {
        return Err(unknown());
    }
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
        if let Some(reason) = missing_driver(&device).or_else(|| known_crash(&device)) {
            return Err(reason);
        }
        Ok(nets::readback::scalar(
            burn::tensor::Tensor::<1>::from_floats([1.0f32, 2.0], &device).sum(),
        ))
    }));
    std::panic::set_hook(previous);
    match probe {
        Ok(Ok(3.0)) => Ok(device),
        Ok(Ok(v)) => Err(Error::Config(format!(
            "the {} device {device:?} computed 1 + 2 = {v}",
            backend_name()
        ))),
        Ok(Err(reason)) => Err(Error::Config(reason)),
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

/// A device this build is known to crash on, found before any kernel runs (the crash is in
/// the driver, so it cannot be caught): with `vulkan`, Mesa's lavapipe segfaults creating the
/// pipeline of cubecl's SPIR-V reduce kernels (Mesa 22.3.6, measured 2026-12-02).
fn known_crash(device: &Device) -> Option<String> {
    #[cfg(feature = "vulkan")]
    {
        // Only a wgpu device can be lavapipe; asking a CUDA device for its runtime or identity
        // would open it (and panic where there is no driver).
        if !matches!(
            cube_device(device),
            Some(burn::backend::CubeDevice::Wgpu(_))
        ) || runtime_name(device) != "wgpu<spirv>"
        {
            return None;
        }
        let name = device.as_dispatch().identity()?.name;
        if name.to_ascii_lowercase().contains("llvmpipe") {
            return Some(format!(
                "{name} is Mesa's lavapipe, which crashes compiling the SPIR-V kernels of a \
                 `vulkan` build (measured with Mesa 22.3.6): run lavapipe with a `--features \
                 wgpu` build (WGSL kernels), and this build on a GPU"
            ));
        }
    }
    let _ = device;
    None
}

/// What a CUDA device lacks on this machine before cubecl touches it: the NVIDIA driver's
/// library, which a `cuda` build loads at run time (without it, cubecl's first use panics in a
/// worker thread, the caller sees a `RecvError`, and the message lists 35 file names tried).
fn missing_driver(device: &Device) -> Option<String> {
    #[cfg(feature = "cuda")]
    if matches!(
        cube_device(device),
        Some(burn::backend::CubeDevice::Cuda(_))
    ) {
        let names: &[&str] = if cfg!(windows) {
            &["nvcuda.dll"]
        } else {
            &["libcuda.so.1", "libcuda.so"]
        };
        // SAFETY: loading the driver runs its initialisers, exactly as cubecl's loader would
        // moments later; nothing is called through the handle, which is dropped at once.
        #[allow(unsafe_code)]
        let found = names
            .iter()
            .any(|&name| unsafe { libloading::Library::new(name) }.is_ok());
        if !found {
            return Some(format!(
                "the NVIDIA driver's library ({}) is not on this machine's library path: install \
                 the NVIDIA driver, or add the directory that holds it to LD_LIBRARY_PATH \
                 ({DEVICE_ENV}=cpu runs this build on the CPU)",
                names[0]
            ));
        }
    }
    let _ = device;
    None
}

/// `count` devices of the selected backend, for data-parallel training: GPUs 0..count of the
/// selected device's backend (one device: the selected one); on the CPU backends the same CPU
/// `count` times (the data-parallel code path then runs in `count` threads, which is how it is
/// tested without GPUs).
#[allow(unreachable_code)]
pub fn devices(count: usize) -> Vec<Device> {
    let count = count.max(1);
    let selected = default_device();
    if count == 1 {
        return vec![selected];
    }
    #[cfg(feature = "cuda")]
    if runtime_name(&selected) == "cuda" {
        return (0..count).map(Device::cuda).collect();
    }
    #[cfg(feature = "wgpu")]
    return (0..count)
        .map(|i| Device::wgpu(DeviceKind::DiscreteGpu(i)))
        .collect();
    vec![selected; count]
}

/// The backends this build holds, GPU ones first (e.g. `cuda+vulkan`, `wgpu`, `flex (CPU)`).
pub fn backend_name() -> &'static str {
    const NAMES: [(bool, &str); 5] = [
        (
            cfg!(feature = "cuda") && cfg!(feature = "vulkan"),
            "cuda+vulkan",
        ),
        (
            cfg!(feature = "cuda") && cfg!(feature = "wgpu"),
            "cuda+wgpu",
        ),
        (cfg!(feature = "cuda"), "cuda"),
        (cfg!(feature = "vulkan"), "vulkan"),
        (cfg!(feature = "wgpu"), "wgpu"),
    ];
    match NAMES.iter().find(|(on, _)| *on) {
        Some((_, name)) => name,
        None => cpu_backend_name(),
    }
}

/// The SIMD level the CPU backend's kernels (gemm's and burn-flex's) pick on this CPU at run
/// time: `x86-64-v4` (AVX-512), `x86-64-v3` (AVX2 and FMA), else the architecture's name.
/// Float sums are grouped by the vector width, so CPU trajectories agree bit for bit between
/// machines of one level and differ at float rounding (then chaotically) between levels.
pub fn cpu_simd_level() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        if has!("avx512f")
            && has!("avx512bw")
            && has!("avx512cd")
            && has!("avx512dq")
            && has!("avx512vl")
        {
            return "x86-64-v4";
        }
        if has!("avx2") && has!("fma") {
            return "x86-64-v3";
        }
    }
    std::env::consts::ARCH
}

/// The cubecl device under `device` (through autodiff), when it runs on a GPU backend.
#[cfg(any(feature = "wgpu", feature = "cuda"))]
fn cube_device(device: &Device) -> Option<&burn::backend::CubeDevice> {
    use burn::backend::DispatchDevice;
    let mut dispatch = device.as_dispatch();
    loop {
        match dispatch {
            DispatchDevice::Cube(cube) => return Some(cube),
            DispatchDevice::Autodiff(inner) => dispatch = &**inner,
            #[allow(unreachable_patterns)]
            _ => return None,
        }
    }
}

/// True when `device` is a GPU (a cubecl runtime: cuda, wgpu), autodiff or not. Opens nothing.
pub fn is_gpu(device: &Device) -> bool {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    return cube_device(device).is_some();
    #[allow(unreachable_code)]
    {
        let _ = device;
        false
    }
}

/// The runtime that executes on `device`, as cubecl names it: `cuda`, `wgpu<spirv>` (the
/// `vulkan` feature on a Vulkan device that supports it), `wgpu<wgsl>`; or the CPU backend's
/// name. Opens the device. Recorded with results.
pub fn runtime_name(device: &Device) -> &'static str {
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if let Some(cube) = cube_device(device) {
        return cube.client().name();
    }
    let _ = device;
    cpu_backend_name()
}

/// What decides the bits of a run's numbers on `device` besides its configuration: the
/// runtime, and on the CPU the version of the kernels' summation orders
/// ([`kernels::NUMERICS`]). Recorded in checkpoints: a run is only resumed where this is the
/// same.
pub fn numerics(device: &Device) -> String {
    if kernels::is_flex(device) {
        format!(
            "{}, kernels numerics {}",
            runtime_name(device),
            kernels::NUMERICS
        )
    } else {
        runtime_name(device).to_string()
    }
}

/// The CPU backend of this build.
fn cpu_backend_name() -> &'static str {
    if cfg!(feature = "flex") {
        "flex (CPU)"
    } else if cfg!(feature = "ndarray") {
        "ndarray (CPU)"
    } else {
        "burn default"
    }
}
