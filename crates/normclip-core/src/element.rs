//! The element types a buffer can hold. Every kernel is written once, generic over [`Element`].

use std::fmt::Debug;
use std::ops::{Add, AddAssign, Div, Mul};

/// `f32` or `f64`. Norms are always accumulated into `f64` (see `kernels`), whatever the element.
pub trait Element:
    Copy
    + Debug
    + Default
    + PartialOrd
    + Send
    + Sync
    + Add<Output = Self>
    + AddAssign
    + Mul<Output = Self>
    + Div<Output = Self>
    + 'static
{
    const ZERO: Self;
    const ONE: Self;
    /// Short name for messages ("float32").
    const NAME: &'static str;
    /// True when squares can overflow long before the f64 accumulator does (f32), so an infinite
    /// norm has to be double-checked in f64.
    const SQUARES_CAN_OVERFLOW: bool;

    fn to_f64(self) -> f64;
    fn from_f64(value: f64) -> Self;
    fn is_nan(self) -> bool;
    fn is_infinite(self) -> bool;
}

impl Element for f32 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NAME: &'static str = "float32";
    const SQUARES_CAN_OVERFLOW: bool = true;

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self as f64
    }
    #[inline(always)]
    fn from_f64(value: f64) -> Self {
        value as f32
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline(always)]
    fn is_infinite(self) -> bool {
        f32::is_infinite(self)
    }
}

impl Element for f64 {
    const ZERO: Self = 0.0;
    const ONE: Self = 1.0;
    const NAME: &'static str = "float64";
    const SQUARES_CAN_OVERFLOW: bool = false;

    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
    #[inline(always)]
    fn from_f64(value: f64) -> Self {
        value
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f64::is_nan(self)
    }
    #[inline(always)]
    fn is_infinite(self) -> bool {
        f64::is_infinite(self)
    }
}

/// A mutable buffer of either element type, as a binding hands one over.
#[derive(Debug)]
pub enum FloatsMut<'a> {
    F32(&'a mut [f32]),
    F64(&'a mut [f64]),
}

/// A read-only buffer of either element type.
#[derive(Debug, Clone, Copy)]
pub enum Floats<'a> {
    F32(&'a [f32]),
    F64(&'a [f64]),
}

impl FloatsMut<'_> {
    pub fn len(&self) -> usize {
        match self {
            FloatsMut::F32(data) => data.len(),
            FloatsMut::F64(data) => data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Floats<'_> {
    pub fn len(&self) -> usize {
        match self {
            Floats::F32(data) => data.len(),
            Floats::F64(data) => data.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
