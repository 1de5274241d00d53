//! Element types as stored in files, and their conversion to and from the compute types.
//!
//! Everything but float64 is computed in float32 (as Keras and tfjs compute float16 and bfloat16
//! weights after casting them up) and written back in the stored type, rounded to nearest even.

use half::{bf16, f16};

/// Byte order of multi-byte elements (NumPy files may be big-endian; everything else is little).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    Little,
    Big,
}

/// How elements are stored.
#[derive(Debug, Clone, PartialEq)]
pub enum DType {
    F16(Order),
    BF16(Order),
    F32(Order),
    F64(Order),
    /// tfjs' affine quantization: `value = q * scale + min`, q unsigned of 1 or 2 bytes.
    Quantized {
        bytes: u8,
        scale: f64,
        min: f64,
    },
    /// Any other type (integers, booleans, fp8, …): its name and element size in bytes, copied as
    /// bytes and never given a norm.
    Other {
        name: String,
        size: usize,
    },
}

impl DType {
    pub fn size(&self) -> usize {
        match self {
            DType::F16(_) | DType::BF16(_) => 2,
            DType::F32(_) => 4,
            DType::F64(_) => 8,
            DType::Quantized { bytes, .. } => *bytes as usize,
            DType::Other { size, .. } => *size,
        }
    }

    /// Whether norms can be taken (a floating-point or dequantized type).
    pub fn is_float(&self) -> bool {
        !matches!(self, DType::Other { .. })
    }

    /// Whether it can be written from computed values.
    pub fn is_writable(&self) -> bool {
        matches!(
            self,
            DType::F16(_) | DType::BF16(_) | DType::F32(_) | DType::F64(_)
        )
    }

    /// Whether values are computed in float64 (only for float64 storage).
    pub fn computes_in_f64(&self) -> bool {
        matches!(self, DType::F64(_))
    }

    pub fn name(&self) -> String {
        match self {
            DType::F16(_) => "float16".into(),
            DType::BF16(_) => "bfloat16".into(),
            DType::F32(_) => "float32".into(),
            DType::F64(_) => "float64".into(),
            DType::Quantized { bytes: 1, .. } => "uint8 (quantized)".into(),
            DType::Quantized { .. } => "uint16 (quantized)".into(),
            DType::Other { name, .. } => name.clone(),
        }
    }

    /// Whether the bytes are the host's own f32/f64 representation (read straight into the buffer).
    pub(crate) fn is_native<T: Compute>(&self) -> bool {
        let little = cfg!(target_endian = "little");
        match self {
            DType::F32(Order::Little) => T::IS_F32 && little,
            DType::F32(Order::Big) => T::IS_F32 && !little,
            DType::F64(Order::Little) => !T::IS_F32 && little,
            DType::F64(Order::Big) => !T::IS_F32 && !little,
            _ => false,
        }
    }
}

/// The compute types: f32 and f64, as normclip-core's elements.
pub trait Compute: normclip_core::Element {
    const IS_F32: bool;
    fn from_f32(value: f32) -> Self;
    fn to_f32(self) -> f32;
    /// The buffer's memory as bytes (both types have no padding and no invalid bit patterns).
    fn as_bytes_mut(values: &mut [Self]) -> &mut [u8];
    fn as_bytes(values: &[Self]) -> &[u8];
}

impl Compute for f32 {
    const IS_F32: bool = true;
    fn from_f32(value: f32) -> Self {
        value
    }
    fn to_f32(self) -> f32 {
        self
    }
    fn as_bytes_mut(values: &mut [f32]) -> &mut [u8] {
        // SAFETY: f32 has no padding and every bit pattern is valid; u8 needs no alignment; the
        // byte slice covers exactly the same memory and borrows it mutably for its lifetime.
        unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast(), values.len() * 4) }
    }
    fn as_bytes(values: &[f32]) -> &[u8] {
        // SAFETY: as above, shared.
        unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), values.len() * 4) }
    }
}

impl Compute for f64 {
    const IS_F32: bool = false;
    fn from_f32(value: f32) -> Self {
        value as f64
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn as_bytes_mut(values: &mut [f64]) -> &mut [u8] {
        // SAFETY: f64 has no padding and every bit pattern is valid; u8 needs no alignment.
        unsafe { std::slice::from_raw_parts_mut(values.as_mut_ptr().cast(), values.len() * 8) }
    }
    fn as_bytes(values: &[f64]) -> &[u8] {
        // SAFETY: as above, shared.
        unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), values.len() * 8) }
    }
}

fn u16_at(bytes: &[u8], order: Order) -> u16 {
    let pair = [bytes[0], bytes[1]];
    match order {
        Order::Little => u16::from_le_bytes(pair),
        Order::Big => u16::from_be_bytes(pair),
    }
}

/// Reads elements of `dtype` into `out`: `read(bytes)` fills the raw bytes first. Native f32/f64
/// are read straight into `out`'s memory; others go through `scratch`.
pub fn decode_into<T: Compute>(
    dtype: &DType,
    out: &mut [T],
    scratch: &mut Vec<u8>,
    read: impl FnOnce(&mut [u8]) -> crate::Result<()>,
) -> crate::Result<()> {
    if dtype.is_native::<T>() {
        return read(T::as_bytes_mut(out));
    }
    let size = dtype.size();
    scratch.resize(out.len() * size, 0);
    read(scratch)?;
    let bytes = &scratch[..];
    match dtype {
        DType::F32(order) => {
            for (value, b) in out.iter_mut().zip(bytes.chunks_exact(4)) {
                let b = [b[0], b[1], b[2], b[3]];
                *value = T::from_f32(match order {
                    Order::Little => f32::from_le_bytes(b),
                    Order::Big => f32::from_be_bytes(b),
                });
            }
        }
        DType::F64(order) => {
            for (value, b) in out.iter_mut().zip(bytes.chunks_exact(8)) {
                let b: [u8; 8] = b.try_into().expect("chunks of 8");
                *value = T::from_f64(match order {
                    Order::Little => f64::from_le_bytes(b),
                    Order::Big => f64::from_be_bytes(b),
                });
            }
        }
        DType::F16(order) => {
            for (value, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *value = T::from_f32(f16::from_bits(u16_at(b, *order)).to_f32());
            }
        }
        DType::BF16(order) => {
            for (value, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                // bfloat16 is the top half of a float32: widening is exact.
                *value = T::from_f32(f32::from_bits((u16_at(b, *order) as u32) << 16));
            }
        }
        DType::Quantized {
            bytes: 1,
            scale,
            min,
        } => {
            for (value, &q) in out.iter_mut().zip(bytes) {
                // tfjs dequantizes in JS doubles and stores the result as float32.
                *value = T::from_f32((q as f64 * scale + min) as f32);
            }
        }
        DType::Quantized { scale, min, .. } => {
            for (value, b) in out.iter_mut().zip(bytes.chunks_exact(2)) {
                *value = T::from_f32((u16_at(b, Order::Little) as f64 * scale + min) as f32);
            }
        }
        DType::Other { .. } => unreachable!("callers check is_float before decoding"),
    }
    Ok(())
}

/// An element's bits as stored: the unsigned integer of its width.
trait StoredBits: Copy {
    fn push(self, order: Order, out: &mut Vec<u8>);
}

macro_rules! stored_bits {
    ($($bits:ty),*) => {$(
        impl StoredBits for $bits {
            #[inline(always)]
            fn push(self, order: Order, out: &mut Vec<u8>) {
                out.extend_from_slice(&match order {
                    Order::Little => self.to_le_bytes(),
                    Order::Big => self.to_be_bytes(),
                });
            }
        }
    )*};
}
stored_bits!(u16, u32, u64);

/// Appends each value's stored `bits` in `order`.
fn push_ordered<T: Compute, B: StoredBits>(
    out: &mut Vec<u8>,
    values: &[T],
    order: Order,
    bits: impl Fn(T) -> B,
) {
    for &value in values {
        bits(value).push(order, out);
    }
}

/// Writes `values` as elements of `dtype` (a writable type): `write(bytes)` receives the bytes.
pub fn encode_from<T: Compute>(
    dtype: &DType,
    values: &[T],
    scratch: &mut Vec<u8>,
    write: impl FnOnce(&[u8]) -> crate::Result<()>,
) -> crate::Result<()> {
    if dtype.is_native::<T>() {
        return write(T::as_bytes(values));
    }
    scratch.clear();
    scratch.reserve(values.len() * dtype.size());
    match *dtype {
        DType::F32(order) => push_ordered(scratch, values, order, |v| v.to_f32().to_bits()),
        DType::F64(order) => push_ordered(scratch, values, order, |v| v.to_f64().to_bits()),
        DType::F16(order) => push_ordered(scratch, values, order, |v| {
            f16::from_f32(v.to_f32()).to_bits()
        }),
        DType::BF16(order) => push_ordered(scratch, values, order, |v| {
            bf16::from_f32(v.to_f32()).to_bits()
        }),
        DType::Quantized { .. } | DType::Other { .. } => {
            unreachable!("callers check is_writable before encoding")
        }
    }
    write(scratch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(dtype: DType, values: &[f32]) -> Vec<f32> {
        let mut bytes = Vec::new();
        let mut scratch = Vec::new();
        encode_from(&dtype, values, &mut scratch, |b| {
            bytes = b.to_vec();
            Ok(())
        })
        .unwrap();
        let mut out = vec![0f32; values.len()];
        decode_into(&dtype, &mut out, &mut scratch, |dst| {
            dst.copy_from_slice(&bytes);
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn half_types_round_to_nearest_even() {
        // 1 + 2^-8 is halfway between two bfloat16 values: ties go to the even one (1.0).
        let halfway = 1.0 + 2f32.powi(-8);
        assert_eq!(round_trip(DType::BF16(Order::Little), &[halfway]), [1.0]);
        assert_eq!(round_trip(DType::F16(Order::Little), &[0.1]), [0.099975586]);
        assert_eq!(
            round_trip(DType::F32(Order::Big), &[1.5, -2.0]),
            [1.5, -2.0]
        );
    }

    #[test]
    fn quantized_values_are_dequantized_like_tfjs() {
        let dtype = DType::Quantized {
            bytes: 1,
            scale: 0.5,
            min: -1.0,
        };
        let mut out = [0f32; 3];
        decode_into(&dtype, &mut out, &mut Vec::new(), |dst| {
            dst.copy_from_slice(&[0, 2, 255]);
            Ok(())
        })
        .unwrap();
        assert_eq!(out, [-1.0, 0.0, 126.5]);
    }
}
