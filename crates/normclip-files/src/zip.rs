//! The central directory of a zip archive (`.npz`, `.keras`): where each entry's bytes are, so
//! stored (uncompressed) entries can be read and rewritten in place like any other byte range,
//! and their CRC-32 patched afterwards. Our own reader of the directory records (PKWARE APPNOTE
//! 4.3.12–4.3.16, 4.5.3 for zip64): the `zip` crate reads and writes whole entries through its
//! own streams and does not give the byte positions an in-place rewrite needs.

use std::fs::File;
use std::os::unix::fs::FileExt;

use crate::error::{FileError, Result};

const EOCD: u32 = 0x0605_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const ZIP64_EOCD: u32 = 0x0606_4b50;
const CENTRAL: u32 = 0x0201_4b50;
const LOCAL: u32 = 0x0403_4b50;
const DESCRIPTOR: u32 = 0x0807_4b50;

/// One entry of the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZipEntry {
    pub name: String,
    /// 0 = stored, 8 = deflated.
    pub method: u16,
    pub flags: u16,
    pub crc32: u32,
    pub compressed_size: u64,
    pub size: u64,
    pub local_header_offset: u64,
    /// Where the entry's (compressed) bytes start.
    pub data_offset: u64,
    /// Where the CRC-32 fields of this entry are: local header, central directory, and the data
    /// descriptor when there is one.
    pub crc_positions: Vec<u64>,
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

fn read_at(file: &File, path: &str, at: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, at).map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            FileError::invalid(
                path,
                format!("truncated zip archive: {len} bytes at offset {at} are missing"),
            )
        } else {
            FileError::io(path, "cannot read", &e)
        }
    })?;
    Ok(buf)
}

/// Lists the entries of the zip archive at `path`.
pub fn read_directory(path: &str) -> Result<Vec<ZipEntry>> {
    let file = File::open(path).map_err(|e| FileError::io(path, "cannot open", &e))?;
    let file_len = file
        .metadata()
        .map_err(|e| FileError::io(path, "cannot stat", &e))?
        .len();
    let invalid = |m: String| FileError::invalid(path, format!("not a valid zip archive: {m}"));
    // The end record is 22 bytes plus a comment of at most 65535.
    let tail_len = file_len.min(22 + 65535) as usize;
    if tail_len < 22 {
        return Err(invalid(format!("{file_len} bytes is too short")));
    }
    let tail_start = file_len - tail_len as u64;
    let tail = read_at(&file, path, tail_start, tail_len)?;
    let eocd = (0..=tail_len - 22)
        .rev()
        .find(|&i| u32_at(&tail, i) == EOCD && i + 22 + u16_at(&tail, i + 20) as usize == tail_len)
        .ok_or_else(|| invalid("no end-of-central-directory record (truncated?)".into()))?;
    let mut entries = u16_at(&tail, eocd + 10) as u64;
    let mut cd_size = u32_at(&tail, eocd + 12) as u64;
    let mut cd_offset = u32_at(&tail, eocd + 16) as u64;
    if eocd >= 20 && u32_at(&tail, eocd - 20) == ZIP64_LOCATOR {
        let record_at = u64_at(&tail, eocd - 20 + 8);
        let record = read_at(&file, path, record_at, 56)?;
        if u32_at(&record, 0) != ZIP64_EOCD {
            return Err(invalid(
                "the zip64 locator points at no zip64 record".into(),
            ));
        }
        entries = u64_at(&record, 32);
        cd_size = u64_at(&record, 40);
        cd_offset = u64_at(&record, 48);
    }
    if cd_offset
        .checked_add(cd_size)
        .is_none_or(|end| end > file_len)
    {
        return Err(invalid(format!(
            "the central directory ({cd_size} bytes at {cd_offset}) runs past the end of the file ({file_len} bytes)"
        )));
    }
    let cd = read_at(&file, path, cd_offset, cd_size as usize)?;
    let mut out = Vec::with_capacity(entries.min(1 << 16) as usize);
    let mut at = 0usize;
    for index in 0..entries {
        if at + 46 > cd.len() || u32_at(&cd, at) != CENTRAL {
            return Err(invalid(format!(
                "central directory entry {index} is damaged"
            )));
        }
        let flags = u16_at(&cd, at + 8);
        let method = u16_at(&cd, at + 10);
        let crc32 = u32_at(&cd, at + 16);
        let mut compressed_size = u32_at(&cd, at + 20) as u64;
        let mut size = u32_at(&cd, at + 24) as u64;
        let name_len = u16_at(&cd, at + 28) as usize;
        let extra_len = u16_at(&cd, at + 30) as usize;
        let comment_len = u16_at(&cd, at + 32) as usize;
        let mut local = u32_at(&cd, at + 42) as u64;
        let end = at + 46 + name_len + extra_len + comment_len;
        if end > cd.len() {
            return Err(invalid(format!(
                "central directory entry {index} is damaged"
            )));
        }
        let name = String::from_utf8_lossy(&cd[at + 46..at + 46 + name_len]).into_owned();
        // zip64 extra field: the 8-byte values of the fields that read 0xFFFFFFFF, in order.
        let mut extra = &cd[at + 46 + name_len..at + 46 + name_len + extra_len];
        while extra.len() >= 4 {
            let id = u16_at(extra, 0);
            let len = (u16_at(extra, 2) as usize).min(extra.len() - 4);
            if id == 1 {
                let mut field = &extra[4..4 + len];
                for value in [&mut size, &mut compressed_size, &mut local] {
                    if *value == 0xFFFF_FFFF && field.len() >= 8 {
                        *value = u64_at(field, 0);
                        field = &field[8..];
                    }
                }
            }
            extra = &extra[4 + len..];
        }
        let header = read_at(&file, path, local, 30)?;
        if u32_at(&header, 0) != LOCAL {
            return Err(invalid(format!(
                "entry {name:?}: no local header at offset {local}"
            )));
        }
        let data_offset = local + 30 + u16_at(&header, 26) as u64 + u16_at(&header, 28) as u64;
        if data_offset
            .checked_add(compressed_size)
            .is_none_or(|end| end > file_len)
        {
            return Err(invalid(format!(
                "entry {name:?}: {compressed_size} bytes at offset {data_offset} run past the end of the file ({file_len} bytes)"
            )));
        }
        let mut crc_positions = vec![local + 14, cd_offset + at as u64 + 16];
        if flags & 8 != 0 {
            // A data descriptor follows the data, with or without its signature.
            let descriptor = read_at(&file, path, data_offset + compressed_size, 4)?;
            let skip = if u32_at(&descriptor, 0) == DESCRIPTOR {
                4
            } else {
                0
            };
            crc_positions.push(data_offset + compressed_size + skip);
        }
        out.push(ZipEntry {
            name,
            method,
            flags,
            crc32,
            compressed_size,
            size,
            local_header_offset: local,
            data_offset,
            crc_positions,
        });
        at = end;
    }
    Ok(out)
}

/// CRC-32 of `len` bytes of `file` from `start`, read in chunks.
pub fn crc32_of(file: &File, path: &str, start: u64, len: u64) -> Result<u32> {
    let mut hasher = crc32fast::Hasher::new();
    let mut buf = vec![0u8; (len.min(1 << 22)) as usize];
    let mut done = 0u64;
    while done < len {
        let n = (len - done).min(buf.len() as u64) as usize;
        file.read_exact_at(&mut buf[..n], start + done)
            .map_err(|e| FileError::io(path, "cannot read", &e))?;
        hasher.update(&buf[..n]);
        done += n as u64;
    }
    Ok(hasher.finalize())
}
