//! What a network asks of the CPU and what the CPU can give: the multiply-adds of the
//! convolutions that run through [`crate::conv2d`] on this thread ([`count_conv_macs`]), and
//! the floating-point peak of this machine's cores, measured with the widest fused
//! multiply-add the CPU has ([`measure_peak`]).

use std::cell::Cell;
use std::time::Instant;

thread_local! {
    static CONV_MACS: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Runs `f` and returns what it returned with the multiply-adds of every convolution
/// [`crate::conv2d`] computed on this thread meanwhile (`N·O·C·kh·kw·OH·OW` each, forward only;
/// any backend). Calls nest: an inner count is added to the outer one.
pub fn count_conv_macs<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let outer = CONV_MACS.with(|c| c.replace(Some(0)));
    let result = f();
    let macs = CONV_MACS.with(|c| c.replace(outer)).unwrap_or(0);
    if let Some(outer) = outer {
        CONV_MACS.with(|c| c.set(Some(outer + macs)));
    }
    (result, macs)
}

/// Adds one convolution to the count, when one is being taken on this thread.
pub(crate) fn record_conv(x: [usize; 4], weight: [usize; 4], out: [usize; 2]) {
    CONV_MACS.with(|c| {
        if let Some(total) = c.get() {
            let [batch, ..] = x;
            let [o, channels, kh, kw] = weight;
            let macs = [batch, o, channels, kh, kw, out[0], out[1]]
                .iter()
                .map(|&v| v as u64)
                .product::<u64>();
            c.set(Some(total + macs));
        }
    });
}

/// The floating-point peak of this machine, measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Peak {
    /// The instructions measured: `avx512f`, `avx2+fma` or `portable`.
    pub isa: &'static str,
    /// Threads that ran the loop at once.
    pub threads: usize,
    /// Single-precision GFLOP/s of all threads together (a fused multiply-add counts 2).
    pub gflops: f64,
}

/// Runs independent fused multiply-adds on `threads` threads at once for about `millis` ms
/// and returns the rate: the most this CPU computes in `f32` with the widest vector unit it
/// has. A loaded machine measures less.
pub fn measure_peak(threads: usize, millis: u64) -> Peak {
    let threads = threads.max(1);
    let isa = simd::best();
    // Calibrate the length of one round on one thread, then time every thread together.
    let mut iters = 1_000_000u64;
    loop {
        let start = Instant::now();
        std::hint::black_box(simd::run(isa, iters));
        let ms = start.elapsed().as_secs_f64() * 1e3;
        if ms > 20.0 || iters > 1 << 40 {
            iters = ((iters as f64) * millis as f64 / ms.max(1e-3)).max(1.0) as u64;
            break;
        }
        iters *= 4;
    }
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| std::hint::black_box(simd::run(isa, iters)));
        }
    });
    let secs = start.elapsed().as_secs_f64();
    let flop = threads as f64 * iters as f64 * simd::flop_per_iter(isa) as f64;
    Peak {
        isa: isa.name(),
        threads,
        gflops: flop / secs / 1e9,
    }
}

mod simd {
    /// Independent accumulators: enough to cover the latency of a multiply-add on two ports.
    const CHAINS: usize = 12;

    #[derive(Clone, Copy)]
    pub(super) enum Isa {
        #[cfg(target_arch = "x86_64")]
        Avx512,
        #[cfg(target_arch = "x86_64")]
        Avx2,
        Portable,
    }

    impl Isa {
        pub(super) fn name(self) -> &'static str {
            match self {
                #[cfg(target_arch = "x86_64")]
                Isa::Avx512 => "avx512f",
                #[cfg(target_arch = "x86_64")]
                Isa::Avx2 => "avx2+fma",
                Isa::Portable => "portable",
            }
        }
    }

    pub(super) fn best() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::arch::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
            {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }

    pub(super) fn flop_per_iter(isa: Isa) -> u64 {
        let lanes = match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => 16,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => 8,
            Isa::Portable => 8,
        };
        (CHAINS * lanes * 2) as u64
    }

    pub(super) fn run(isa: Isa, iters: u64) -> f32 {
        match isa {
            // SAFETY: `best` returned these only where the CPU reports the features.
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Isa::Avx512 => unsafe { x86::fma512(iters) },
            #[cfg(target_arch = "x86_64")]
            #[allow(unsafe_code)]
            Isa::Avx2 => unsafe { x86::fma256(iters) },
            Isa::Portable => portable(iters),
        }
    }

    fn portable(iters: u64) -> f32 {
        let mut acc = [[1.0f32; 8]; CHAINS];
        for _ in 0..iters {
            for chain in acc.iter_mut() {
                for v in chain.iter_mut() {
                    *v = v.mul_add(0.999_999, 1e-7);
                }
            }
        }
        acc.iter().flatten().sum()
    }

    #[cfg(target_arch = "x86_64")]
    #[allow(unsafe_code)]
    mod x86 {
        use std::arch::x86_64::*;

        use super::CHAINS;

        #[target_feature(enable = "avx512f")]
        pub(super) unsafe fn fma512(iters: u64) -> f32 {
            let mut acc = [_mm512_set1_ps(1.0); CHAINS];
            let (b, c) = (_mm512_set1_ps(0.999_999), _mm512_set1_ps(1e-7));
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = _mm512_fmadd_ps(*a, b, c);
                }
            }
            let sum = acc
                .iter()
                .fold(_mm512_setzero_ps(), |s, a| _mm512_add_ps(s, *a));
            _mm512_reduce_add_ps(sum)
        }

        #[target_feature(enable = "avx2,fma")]
        pub(super) unsafe fn fma256(iters: u64) -> f32 {
            let mut acc = [_mm256_set1_ps(1.0); CHAINS];
            let (b, c) = (_mm256_set1_ps(0.999_999), _mm256_set1_ps(1e-7));
            for _ in 0..iters {
                for a in acc.iter_mut() {
                    *a = _mm256_fmadd_ps(*a, b, c);
                }
            }
            let sum = acc
                .iter()
                .fold(_mm256_setzero_ps(), |s, a| _mm256_add_ps(s, *a));
            let mut lanes = [0.0f32; 8];
            // SAFETY: `lanes` holds the 8 floats the store writes.
            unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
            lanes.iter().sum()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a peak measurement computes, checked without a clock (its rate is a benchmark's
    /// business: `rewind bench`): every vector loop this CPU runs gives the scalar loop's
    /// value, and the FLOP it is credited with are its lanes' multiply-adds.
    #[test]
    fn the_peak_loops_compute_what_they_are_credited_with() {
        let iters = 1000;
        // One lane of the loop: a <- a * 0.999999 + 1e-7, fused, from 1.
        let lane = (0..iters).fold(1.0f32, |a, _| a.mul_add(0.999_999, 1e-7));
        let isa = simd::best();
        let lanes = simd::flop_per_iter(isa) / 2 / 12;
        let expected = lane * (12 * lanes) as f32;
        let got = simd::run(isa, iters);
        assert!(
            (got - expected).abs() <= 1e-5 * expected,
            "{}: {got} vs {expected}",
            isa.name()
        );
        let portable = simd::run(simd::Isa::Portable, iters);
        assert!(
            (portable - lane * 96.0).abs() <= 1e-5 * portable,
            "{portable}"
        );
        assert_eq!(simd::flop_per_iter(simd::Isa::Portable), 12 * 8 * 2);
        let peak = measure_peak(2, 1);
        assert_eq!((peak.threads, peak.isa), (2, isa.name()));
    }
}
