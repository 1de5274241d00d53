//! safetensors headers, read and validated by the `safetensors` crate (the format's reference
//! implementation): lengths, JSON, offsets contiguous from 0 and covering the data section exactly,
//! shape × dtype = byte length. Only the header is read (never through a mapping of the file:
//! see `read_header`).

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::FileExt;

use safetensors::tensor::{Dtype as StDtype, SafeTensorError, SafeTensors};

use crate::dtype::{DType, Order};
use crate::error::{FileError, Result};

/// The `safetensors` crate's `MAX_HEADER_SIZE` (not exported): a longer header is refused.
const SAFETENSORS_MAX_HEADER: u64 = 100_000_000;

/// One tensor of a safetensors file, with its absolute byte range.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub name: String,
    pub dtype: DType,
    /// The header's own dtype name (`F32`, `BF16`, `I64`, …).
    pub dtype_name: String,
    pub shape: Vec<usize>,
    pub offset: u64,
    pub len: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Header {
    /// Bytes of the JSON header (after the 8-byte length).
    pub header_len: u64,
    pub file_len: u64,
    /// In file order.
    pub tensors: Vec<Entry>,
    pub metadata: BTreeMap<String, String>,
}

fn dtype_of(dtype: StDtype) -> DType {
    match dtype {
        StDtype::F16 => DType::F16(Order::Little),
        StDtype::BF16 => DType::BF16(Order::Little),
        StDtype::F32 => DType::F32(Order::Little),
        StDtype::F64 => DType::F64(Order::Little),
        other => DType::Other {
            name: format!("{other:?}"),
            size: other.bitsize().div_ceil(8),
        },
    }
}

pub fn read_header(path: &str) -> Result<Header> {
    let file = File::open(path).map_err(|e| FileError::io(path, "cannot open", &e))?;
    let file_len = file
        .metadata()
        .map_err(|e| FileError::io(path, "cannot stat", &e))?
        .len();
    let invalid = |message: String| {
        FileError::invalid(path, format!("not a valid safetensors file: {message}"))
    };
    if file_len < 8 {
        return Err(invalid(format!(
            "{file_len} bytes, shorter than the 8-byte header length"
        )));
    }
    // The crate validates a buffer as long as the whole file but reads only its first 8 + N bytes.
    // Those are read with `pread` into an anonymous mapping of the file's length (untouched pages
    // cost nothing, MAP_NORESERVE): a mapping of the file itself would be SIGBUS, killing Node, if
    // the file were truncated meanwhile (by a Worker of this process, or another process).
    let too_large = |e: std::io::Error| FileError::io(path, "cannot map", &e);
    let mut map = memmap2::MmapOptions::new()
        .len(usize::try_from(file_len).map_err(|_| invalid(format!("{file_len} bytes")))?)
        .no_reserve_swap()
        .map_anon()
        .map_err(too_large)?;
    let read = |buffer: &mut [u8], what: &str| {
        file.read_exact_at(buffer, 0)
            .map_err(|e| FileError::io(path, &format!("cannot read the {what}"), &e))
    };
    read(&mut map[..8], "header length")?;
    let n = u64::from_le_bytes(map[..8].try_into().expect("8 bytes"));
    if n > file_len - 8 {
        return Err(invalid(format!(
            "the header length says {n} bytes, past the end of the file ({file_len} bytes)"
        )));
    }
    // Beyond the crate's limit it refuses the header from its length alone.
    if n <= SAFETENSORS_MAX_HEADER {
        read(&mut map[..8 + n as usize], "header")?;
    }
    let (n, metadata) = SafeTensors::read_metadata(&map).map_err(|e| {
        invalid(match e {
            SafeTensorError::MetadataIncompleteBuffer => format!(
                "the tensors in the header do not cover the data section exactly ({} bytes): truncated or padded",
                file_len - 8 - n
            ),
            SafeTensorError::InvalidOffset(name) => format!(
                "tensor {name:?}: its data_offsets overlap another tensor, leave a gap or go past the data"
            ),
            SafeTensorError::TensorInvalidInfo => {
                "a tensor's shape × dtype size differs from its data_offsets".to_string()
            }
            other => other.to_string(),
        })
    })?;
    let data_start = 8 + n as u64;
    let mut tensors: Vec<Entry> = metadata
        .tensors()
        .into_iter()
        .map(|(name, info)| Entry {
            dtype: dtype_of(info.dtype),
            dtype_name: format!("{:?}", info.dtype),
            shape: info.shape.clone(),
            offset: data_start + info.data_offsets.0 as u64,
            len: (info.data_offsets.1 - info.data_offsets.0) as u64,
            name,
        })
        .collect();
    tensors.sort_by_key(|t| t.offset);
    Ok(Header {
        header_len: n as u64,
        file_len,
        tensors,
        metadata: metadata
            .metadata()
            .clone()
            .map(|m| m.into_iter().collect())
            .unwrap_or_default(),
    })
}
