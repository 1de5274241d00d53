//! SIMD tiers and run-time dispatch.
//!
//! The loops live once in [`generic`]. `tier_kernels!` instantiates them inside functions compiled
//! with each tier's target features; [`Tier::active`] picks the best tier the CPU has at run time
//! (never a static `target-cpu`), and `NORMCLIP_TIER=portable|avx2|avx512` forces one for tests and
//! benchmarks.

pub mod compensated;
pub mod generic;
#[cfg(target_arch = "x86_64")]
pub mod x86;

use std::sync::OnceLock;

use crate::constraint::SliceRule;
use crate::element::Element;
use crate::error::{Error, Result};

/// A set of CPU features the kernels are compiled for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tier {
    /// The target's baseline: SSE2 on x86-64, NEON on aarch64 (both always present there).
    Portable = 0,
    /// x86-64 with AVX2 and FMA.
    Avx2 = 1,
    /// x86-64 with AVX-512F (and AVX2 and FMA, which every AVX-512 CPU has).
    Avx512 = 2,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Portable, Tier::Avx2, Tier::Avx512];

    pub fn name(self) -> &'static str {
        match self {
            Tier::Portable => {
                if cfg!(target_arch = "aarch64") {
                    "neon"
                } else {
                    "portable"
                }
            }
            Tier::Avx2 => "avx2",
            Tier::Avx512 => "avx512",
        }
    }

    pub fn parse(name: &str) -> Result<Tier> {
        match name.trim().to_ascii_lowercase().as_str() {
            "portable" | "neon" | "sse2" | "baseline" => Ok(Tier::Portable),
            "avx2" => Ok(Tier::Avx2),
            "avx512" => Ok(Tier::Avx512),
            other => Err(Error::range(format!(
                "NORMCLIP_TIER: expected one of auto, portable, avx2, avx512, got {other:?}"
            ))),
        }
    }

    /// Whether this CPU can run the tier.
    pub fn is_supported(self) -> bool {
        match self {
            Tier::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Tier::Avx2 => is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma"),
            #[cfg(target_arch = "x86_64")]
            Tier::Avx512 => Tier::Avx2.is_supported() && is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            Tier::Avx2 | Tier::Avx512 => false,
        }
    }

    /// The best tier of this CPU: AVX-512 where present, else AVX2, else the baseline.
    ///
    /// AVX-512 measured on Intel Xeon (Sapphire Rapids-class, KVM, 2 vCPU; MaxNorm in place, one
    /// thread, the two tiers taking turns in ABBA order, 6 rounds, time AVX-512 / AVX2, median
    /// and interquartile range): over-bound [784,512] 0.88 (0.85-1.06), [512,512] 0.98
    /// (0.92-1.01), [64,64] 0.96 (0.92-0.97); compliant [784,512] 0.91 (0.78-0.93), [512,512]
    /// 0.93 (0.85-1.29), [64,64] 1.01 (1.01-1.03); [100000,10] even; tensors beyond the caches
    /// are memory-bound, the same in both tiers within this shared machine's noise. Half the
    /// vector instructions per element, never slower beyond noise: chosen where the CPU has it.
    pub fn detect() -> Tier {
        if Tier::Avx512.is_supported() {
            Tier::Avx512
        } else if Tier::Avx2.is_supported() {
            Tier::Avx2
        } else {
            Tier::Portable
        }
    }

    /// `NORMCLIP_TIER` if set (and supported), else [`Tier::detect`].
    pub fn from_env() -> Result<Tier> {
        match std::env::var("NORMCLIP_TIER") {
            Ok(name) if !name.trim().is_empty() && name.trim() != "auto" => {
                let tier = Tier::parse(&name)?;
                if !tier.is_supported() {
                    return Err(Error::range(format!(
                        "NORMCLIP_TIER: this CPU does not support {}",
                        tier.name()
                    )));
                }
                Ok(tier)
            }
            _ => Ok(Tier::detect()),
        }
    }

    /// The tier every call uses unless told otherwise, chosen once per process. An unusable
    /// `NORMCLIP_TIER` falls back to detection here; [`Tier::from_env`] reports it as an error.
    pub fn active() -> Tier {
        static ACTIVE: OnceLock<Tier> = OnceLock::new();
        *ACTIVE.get_or_init(|| Tier::from_env().unwrap_or_else(|_| Tier::detect()))
    }
}

/// A norm kernel over a block: `(block, columns or period, scratch, sums)`.
pub type Accumulate<T> = fn(&[T], usize, &mut [T], &mut [<T as Element>::Sum]);

/// The kernels of one tier, as plain function pointers so a call can choose its tier once.
pub struct Kernels<T: Element> {
    pub accumulate_columns: Accumulate<T>,
    pub accumulate_narrow: Accumulate<T>,
    pub sum_squares: fn(&[T]) -> T::Sum,
    /// Each slice's norm from its sum; whether any sum is suspect (`Element::sum_is_suspect`).
    pub norms_of_sums: fn(&[T::Sum], &mut [T]) -> bool,
    /// Each norm replaced by its slice's value under a rule; whether any value is outside the
    /// element type's normal range.
    pub(crate) slice_values: fn(&SliceRule<T>, &mut [T]) -> bool,
    pub largest_columns: fn(&[T], usize, &mut [T], &mut [T]),
    pub largest_run: fn(&[T]) -> (T, T),
    pub multiply_columns: fn(&mut [T], usize, &[T]),
    pub divide_columns: fn(&mut [T], usize, &[T]),
    pub multiply_narrow: fn(&mut [T], &[T]),
    pub divide_narrow: fn(&mut [T], &[T]),
    pub multiply_run: fn(&mut [T], T),
    pub divide_run: fn(&mut [T], T),
    pub non_negative: fn(&mut [T]),
    /// Σ|x| of a run, in f64 (`clip::kernels::abs_sum`).
    pub abs_sum: fn(&[T]) -> f64,
    /// max|x| of a run and whether it holds a NaN.
    pub abs_max: fn(&[T]) -> (f64, bool),
    /// `x = (x · c) / d` over a run (TF's `clip_by_norm`).
    pub mul_div_run: fn(&mut [T], T, T),
    /// `x = (x · c) / d[column]` over rows of `divisors.len()` columns.
    pub mul_div_columns: fn(&mut [T], T, &[T]),
    /// `x = clip(x, lo, hi)` over a run.
    pub clamp: fn(&mut [T], T, T),
    /// `acc += factor · x` (f64 accumulator).
    pub weighted_add: fn(&mut [f64], &[T], f64),
    /// The bandwidth probe's read pass (`probe::sum_squares`).
    #[cfg(feature = "probe")]
    pub probe_sum_squares: fn(&[T]) -> T,
    /// The bandwidth probe's write pass (`probe::scale`).
    #[cfg(feature = "probe")]
    pub probe_scale: fn(&mut [T], T),
}

/// One kernel entry point of one tier: a safe wrapper around the generic loop compiled with the
/// tier's target features.
macro_rules! entry {
    ([$($feature:literal)?] $name:ident ( $($arg:ident : $ty:ty),* ) $(-> $ret:ty)? => $body:expr) => {
        pub fn $name<T: Element>($($arg: $ty),*) $(-> $ret)? {
            $(#[target_feature(enable = $feature)])?
            unsafe fn compiled<T: Element>($($arg: $ty),*) $(-> $ret)? { $body }
            // SAFETY: a tier's functions are reachable only through its table, which
            // `Kernels::for_tier` / `Kernels::active` hand out only for a tier that
            // `Tier::is_supported` confirmed on this CPU.
            unsafe { compiled::<T>($($arg),*) }
        }
    };
}

/// All kernels of one tier, in a module of their own. `$square` is how the tier gets a float64
/// square's exact error (`exact::Fma` with FMA, `exact::Split` without): the same bits either way.
macro_rules! tier_kernels {
    ($module:ident, $square:ident $(, $feature:literal)?) => {
        mod $module {
            use super::generic::{self, Divide, Multiply};
            use crate::clip::kernels as clip;
            use crate::element::Element;
            use crate::exact::$square as Square;

            entry!([$($feature)?] accumulate_columns(block: &[T], cols: usize, scratch: &mut [T], sums: &mut [T::Sum])
                => T::accumulate_columns::<Square>(block, cols, scratch, sums));
            entry!([$($feature)?] accumulate_narrow(block: &[T], period: usize, scratch: &mut [T], sums: &mut [T::Sum])
                => T::accumulate_narrow::<Square>(block, period, scratch, sums));
            entry!([$($feature)?] sum_squares(run: &[T]) -> T::Sum => T::sum_squares::<Square>(run));
            entry!([$($feature)?] norms_of_sums(sums: &[T::Sum], norms: &mut [T]) -> bool
                => generic::norms_of_sums(sums, norms));
            entry!([$($feature)?] slice_values(rule: &crate::constraint::SliceRule<T>, values: &mut [T]) -> bool
                => rule.values_from_norms(values));
            entry!([$($feature)?] largest_columns(block: &[T], cols: usize, largest: &mut [T], flags: &mut [T])
                => generic::largest_columns(block, cols, largest, flags));
            entry!([$($feature)?] largest_run(run: &[T]) -> (T, T) => generic::largest_run(run));
            entry!([$($feature)?] multiply_columns(block: &mut [T], cols: usize, values: &[T])
                => generic::scale_columns::<T, Multiply>(block, cols, values));
            entry!([$($feature)?] divide_columns(block: &mut [T], cols: usize, values: &[T])
                => generic::scale_columns::<T, Divide>(block, cols, values));
            entry!([$($feature)?] multiply_narrow(block: &mut [T], pattern: &[T])
                => generic::scale_narrow::<T, Multiply>(block, pattern));
            entry!([$($feature)?] divide_narrow(block: &mut [T], pattern: &[T])
                => generic::scale_narrow::<T, Divide>(block, pattern));
            entry!([$($feature)?] multiply_run(values: &mut [T], value: T)
                => generic::scale_run::<T, Multiply>(values, value));
            entry!([$($feature)?] divide_run(values: &mut [T], value: T)
                => generic::scale_run::<T, Divide>(values, value));
            entry!([$($feature)?] non_negative(values: &mut [T]) => generic::non_negative(values));
            entry!([$($feature)?] abs_sum(run: &[T]) -> f64 => clip::abs_sum(run));
            entry!([$($feature)?] abs_max(run: &[T]) -> (f64, bool) => clip::abs_max(run));
            entry!([$($feature)?] mul_div_run(run: &mut [T], c: T, d: T) => clip::mul_div_run(run, c, d));
            entry!([$($feature)?] mul_div_columns(block: &mut [T], c: T, divisors: &[T])
                => clip::mul_div_columns(block, c, divisors));
            entry!([$($feature)?] clamp(run: &mut [T], lo: T, hi: T) => clip::clamp(run, lo, hi));
            entry!([$($feature)?] weighted_add(acc: &mut [f64], x: &[T], factor: f64)
                => clip::weighted_add(acc, x, factor));
            #[cfg(feature = "probe")]
            entry!([$($feature)?] probe_sum_squares(data: &[T]) -> T => crate::probe::sum_squares_body(data));
            #[cfg(feature = "probe")]
            entry!([$($feature)?] probe_scale(data: &mut [T], factor: T) => crate::probe::scale_body(data, factor));

            pub const fn kernels<T: Element>() -> super::Kernels<T> {
                super::Kernels {
                    accumulate_columns: accumulate_columns::<T>,
                    accumulate_narrow: accumulate_narrow::<T>,
                    sum_squares: sum_squares::<T>,
                    norms_of_sums: norms_of_sums::<T>,
                    slice_values: slice_values::<T>,
                    largest_columns: largest_columns::<T>,
                    largest_run: largest_run::<T>,
                    multiply_columns: multiply_columns::<T>,
                    divide_columns: divide_columns::<T>,
                    multiply_narrow: multiply_narrow::<T>,
                    divide_narrow: divide_narrow::<T>,
                    multiply_run: multiply_run::<T>,
                    divide_run: divide_run::<T>,
                    non_negative: non_negative::<T>,
                    abs_sum: abs_sum::<T>,
                    abs_max: abs_max::<T>,
                    mul_div_run: mul_div_run::<T>,
                    mul_div_columns: mul_div_columns::<T>,
                    clamp: clamp::<T>,
                    weighted_add: weighted_add::<T>,
                    #[cfg(feature = "probe")]
                    probe_sum_squares: probe_sum_squares::<T>,
                    #[cfg(feature = "probe")]
                    probe_scale: probe_scale::<T>,
                }
            }
        }
    };
}

tier_kernels!(portable, Split);
#[cfg(target_arch = "x86_64")]
tier_kernels!(avx2, Fma, "avx2,fma");
#[cfg(target_arch = "x86_64")]
tier_kernels!(avx512, Fma, "avx512f,avx2,fma");

impl<T: Element> Kernels<T> {
    /// Every tier's table (indexed by `Tier as usize`). Off x86-64 the AVX slots repeat the
    /// baseline; they are never handed out there (`is_supported` is false).
    ///
    /// Only `Element::kernel_tables` (non-generic, in this crate) evaluates this, into one static
    /// per element type: were the tables a generic constant, each crate calling the kernels (the
    /// Node binding, the TF op, the file jobs) would instantiate its own copy of every kernel,
    /// and LLVM does not optimise the copies alike. The addon had two float32 AVX-512
    /// `sum_squares`, one of them a 2-wide loop: a `[16M]` norm pass from Node took 5 ms where
    /// the core's own copy takes 3 (Intel Xeon, Sapphire Rapids-class).
    pub(crate) const fn tables() -> [Kernels<T>; 3] {
        [
            portable::kernels(),
            #[cfg(target_arch = "x86_64")]
            avx2::kernels(),
            #[cfg(target_arch = "x86_64")]
            avx512::kernels(),
            #[cfg(not(target_arch = "x86_64"))]
            portable::kernels(),
            #[cfg(not(target_arch = "x86_64"))]
            portable::kernels(),
        ]
    }

    fn table(tier: Tier) -> &'static Kernels<T> {
        &T::kernel_tables()[tier as usize]
    }

    /// The kernels of `tier`, or an error if this CPU cannot run it.
    pub fn for_tier(tier: Tier) -> Result<&'static Kernels<T>> {
        if !tier.is_supported() {
            return Err(Error::range(format!(
                "tier: this CPU does not support {}",
                tier.name()
            )));
        }
        Ok(Self::table(tier))
    }

    /// The kernels of [`Tier::active`]: what every call uses unless a test or benchmark asks
    /// for a tier. Detection ran once, when the tier was first asked for.
    #[inline]
    pub fn active() -> &'static Kernels<T> {
        Self::table(Tier::active())
    }
}
