//! The one run-time CPU-feature dispatch point of the elementwise loops
//! (batch norm, ReLU, gradient accumulation, the chunks of
//! `kernels::build`: convolution output copies among them).
//!
//! Rust compiles for the x86-64 baseline (SSE2: four `f32` or two `f64`
//! per instruction). [`wide`] runs a closure inside a function compiled
//! with AVX2 enabled when the CPU has it, so the loops that LLVM inlines
//! into it are vectorised eight `f32` (four `f64`) wide; elsewhere, and on
//! other architectures, the closure runs as it is. The idea is the
//! function-multiversioning of GCC's `target_clones` and of the
//! `multiversion` crate, done by hand for one wrapper.
//!
//! **Results are bit-identical either way.** Only `avx2` is enabled, not
//! `fma`, and Rust never contracts `a * b + c` into a fused multiply-add
//! nor reassociates floating-point operations, so every value is computed
//! by the same IEEE operations (add, multiply, divide, square root,
//! min/max, conversions: each correctly rounded per lane) in the same
//! order; the wider registers only do more lanes at once. The reductions
//! that are vectorised keep their partial sums in explicitly written lanes
//! (`graph::bn_train`), so their order is fixed by the source, not by the
//! vector width. `tests::dispatch_is_bit_identical` and
//! `graph::bn_train::tests::kernels_are_bit_identical_across_the_simd_dispatch`
//! check it, and setting
//! `AISEC_SIMD=baseline` in the environment turns the AVX2 path off (for
//! comparing checksums of whole training runs).

#[cfg(target_arch = "x86_64")]
use std::sync::atomic::{AtomicU8, Ordering};

/// 0: not yet decided; 1: baseline; 2: AVX2.
#[cfg(target_arch = "x86_64")]
static MODE: AtomicU8 = AtomicU8::new(0);

/// Whether [`wide`] takes the AVX2 path on this machine (decided once).
#[cfg(target_arch = "x86_64")]
pub(crate) fn use_avx2() -> bool {
    match MODE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let off = std::env::var("AISEC_SIMD").is_ok_and(|v| v == "baseline");
            let on = !off && std::arch::is_x86_feature_detected!("avx2");
            MODE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
    }
}

/// Runs `f`, compiled for AVX2 where the CPU has it (see the module
/// documentation). Call it around a whole loop, not per value: the closure
/// and what it calls are only widened where LLVM inlines them into the
/// AVX2 wrapper, and a closure handed to rayon runs on other threads
/// outside of it (wrap the per-chunk work instead).
#[inline]
pub(crate) fn wide<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if use_avx2() {
        return avx2::run(f);
    }
    f()
}

/// Defines a function whose body is compiled twice, once for the baseline
/// and once with AVX2, and which runs the AVX2 copy where [`wide`] would:
/// for kernels too large for LLVM to inline into [`wide`]'s wrapper. The
/// generics the body calls (iterator adapters, `#[inline]` helpers, the
/// closures it defines) are inlined into each copy. Arguments are plain
/// `name: Type` pairs; no generic parameters.
macro_rules! widened {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$m])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx2")]
            fn avx2($($arg: $ty),*) $(-> $ret)? $body
            fn base($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            if $crate::simd::use_avx2() {
                // unsafe: `avx2` is compiled with AVX2, which is undefined
                // behaviour on a CPU without it.
                // SAFETY: `use_avx2()` is true only after
                // `is_x86_feature_detected!("avx2")` returned true.
                #[allow(unsafe_code)]
                return unsafe { avx2($($arg),*) };
            }
            base($($arg),*)
        }
    };
}
pub(crate) use widened;

// unsafe: calling a `#[target_feature]` function is unsafe because running
// AVX2 instructions on a CPU without AVX2 is undefined behaviour; `run` is
// only called after `is_x86_feature_detected!("avx2")` returned true.
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod avx2 {
    /// Calls `f` inside a function compiled with AVX2.
    #[inline]
    pub(super) fn run<R>(f: impl FnOnce() -> R) -> R {
        // SAFETY: only reached from `wide` after `use_avx2()` saw
        // `is_x86_feature_detected!("avx2")` return true on this CPU.
        unsafe { inner(f) }
    }

    #[target_feature(enable = "avx2")]
    unsafe fn inner<R>(f: impl FnOnce() -> R) -> R {
        f()
    }
}

/// Tests only: takes the baseline path (`avx2 == false`) or the AVX2 path
/// from now on, for every thread; returns false (and changes nothing) when
/// AVX2 is asked for and the CPU lacks it. Other tests running meanwhile
/// are unaffected, since both paths compute the same bits.
#[cfg(test)]
pub(crate) fn force(avx2: bool) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if avx2 && !std::arch::is_x86_feature_detected!("avx2") {
            return false;
        }
        MODE.store(if avx2 { 2 } else { 1 }, Ordering::Relaxed);
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        !avx2
    }
}

/// Tests only: runs `kernel` on the baseline path and on the AVX2 path and
/// asserts that every output value has the same bits (skipped where the
/// CPU has no AVX2).
#[cfg(test)]
pub(crate) fn assert_same_bits(kernel: impl Fn() -> Vec<Vec<f32>>) {
    let bits = |v: Vec<Vec<f32>>| {
        v.into_iter()
            .map(|x| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    assert!(force(false));
    let base = bits(kernel());
    if force(true) {
        assert_eq!(base, bits(kernel()));
    }
}

#[cfg(test)]
mod tests {
    use super::assert_same_bits;

    /// The elementwise kernels that run under [`super::wide`] agree to
    /// the bit on both paths, including on signed zeros, NaN, infinities
    /// and subnormals, at lengths that are not multiples of the vector
    /// width.
    #[test]
    fn dispatch_is_bit_identical() {
        let mut xs: Vec<f32> = (0..70_001)
            .map(|i| ((i as f32) * 0.618).sin() * 10f32.powi(i % 7 - 3))
            .collect();
        xs.extend([
            0.0,
            -0.0,
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            1e-40,
            -1e-40,
        ]);
        let ys: Vec<f32> = xs.iter().rev().map(|v| v * 0.37 - 0.1).collect();
        assert_same_bits(|| {
            let mut acc = xs.clone();
            crate::kernels::add_assign(&mut acc, &ys);
            vec![
                crate::kernels::relu_fwd(&xs),
                crate::kernels::relu_bwd(&ys, &xs),
                acc,
            ]
        });
    }
}
