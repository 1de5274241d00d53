//! NumPy `.npy` headers (format versions 1, 2 and 3): magic, version, header length, and the
//! header dict `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`. Our own reader: the
//! format is a dozen lines of NumPy's `format.py`, and no Rust crate reads its headers without
//! also owning the data.

use crate::dtype::{DType, Order};

const MAGIC: &[u8] = b"\x93NUMPY";

/// A parsed header; `data_offset` is relative to the start of the `.npy` bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyHeader {
    pub descr: String,
    pub dtype: DType,
    pub fortran_order: bool,
    pub shape: Vec<usize>,
    pub data_offset: u64,
    pub data_len: u64,
}

/// How many bytes of a file to read to be sure to hold any header (NumPy caps headers at 10000
/// bytes unless told otherwise; we allow a generous 1 MiB).
pub const MAX_HEADER: usize = 1 << 20;

/// Parses the header at the start of `bytes` (at least the header; more is fine).
pub fn parse_header(bytes: &[u8]) -> Result<NpyHeader, String> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err("not a NumPy .npy file (no \\x93NUMPY magic)".into());
    }
    let major = bytes[6];
    let (len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err("truncated .npy header".into());
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(format!("unsupported .npy format version {v}")),
    };
    if len > MAX_HEADER {
        return Err(format!("a .npy header of {len} bytes is implausible"));
    }
    let Some(text) = bytes.get(start..start + len) else {
        return Err(format!(
            "truncated: the .npy header says {len} bytes, only {} follow",
            bytes.len().saturating_sub(start)
        ));
    };
    let text = std::str::from_utf8(text).map_err(|_| "the .npy header is not text".to_string())?;
    let value = Parser {
        s: text.as_bytes(),
        i: 0,
    }
    .parse_all()
    .map_err(|e| format!("bad .npy header {text:?}: {e}"))?;
    let Literal::Dict(entries) = value else {
        return Err(format!("bad .npy header {text:?}: expected a dict"));
    };
    let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| v);
    let descr = match get("descr") {
        Some(Literal::Str(s)) => s.clone(),
        Some(_) => return Err("structured dtypes (a 'descr' list) are not supported".into()),
        None => return Err(format!("bad .npy header {text:?}: no 'descr'")),
    };
    let fortran_order = match get("fortran_order") {
        Some(Literal::Bool(b)) => *b,
        _ => {
            return Err(format!(
                "bad .npy header {text:?}: 'fortran_order' must be True or False"
            ))
        }
    };
    let shape = match get("shape") {
        Some(Literal::Tuple(items)) => items
            .iter()
            .map(|item| match item {
                Literal::Int(n) if *n >= 0 => Ok(*n as usize),
                _ => Err(format!(
                    "bad .npy header {text:?}: shape entries must be non-negative integers"
                )),
            })
            .collect::<Result<Vec<_>, _>>()?,
        _ => return Err(format!("bad .npy header {text:?}: 'shape' must be a tuple")),
    };
    let dtype = dtype_of(&descr);
    let elements = shape
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    let data_len = elements
        .checked_mul(dtype.size() as u64)
        .ok_or_else(|| format!("shape {shape:?} overflows"))?;
    Ok(NpyHeader {
        descr,
        dtype,
        fortran_order,
        shape,
        data_offset: (start + len) as u64,
        data_len,
    })
}

/// `<f4` → float32 little-endian, …; anything else is kept by name and size.
fn dtype_of(descr: &str) -> DType {
    let bytes = descr.as_bytes();
    let order = match bytes.first() {
        Some(b'>') => Some(Order::Big),
        Some(b'<') | Some(b'=') => Some(Order::Little),
        Some(b'|') => Some(Order::Little),
        _ => None,
    };
    let body = if order.is_some() { &descr[1..] } else { descr };
    let order = order.unwrap_or(Order::Little);
    let size = body
        .get(1..)
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(0);
    match body {
        "f2" => DType::F16(order),
        "f4" => DType::F32(order),
        "f8" => DType::F64(order),
        _ => DType::Other {
            name: descr.to_string(),
            size,
        },
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Int(i64),
    Bool(bool),
    None,
    Tuple(Vec<Literal>),
    Dict(Vec<(String, Literal)>),
}

/// The subset of Python literals `repr` of a NumPy header dict uses.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn parse_all(mut self) -> Result<Literal, String> {
        let value = self.value()?;
        self.space();
        if self.i != self.s.len() {
            return Err(format!("unexpected text at {}", self.i));
        }
        Ok(value)
    }

    fn space(&mut self) {
        while self.i < self.s.len() && (self.s[self.i] as char).is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.space();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Result<Literal, String> {
        self.space();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut entries = Vec::new();
                loop {
                    if self.eat(b'}') {
                        break;
                    }
                    let Literal::Str(key) = self.value()? else {
                        return Err("dict keys must be strings".into());
                    };
                    if !self.eat(b':') {
                        return Err("expected ':'".into());
                    }
                    entries.push((key, self.value()?));
                    if self.eat(b',') {
                        continue;
                    }
                    if self.eat(b'}') {
                        break;
                    }
                    return Err("expected ',' or '}'".into());
                }
                Ok(Literal::Dict(entries))
            }
            Some(&open @ (b'(' | b'[')) => {
                self.i += 1;
                let close = if open == b'(' { b')' } else { b']' };
                let mut items = Vec::new();
                loop {
                    if self.eat(close) {
                        break;
                    }
                    items.push(self.value()?);
                    if self.eat(b',') {
                        continue;
                    }
                    if self.eat(close) {
                        break;
                    }
                    return Err("expected ',' or a closing bracket".into());
                }
                Ok(Literal::Tuple(items))
            }
            Some(&quote @ (b'\'' | b'"')) => {
                self.i += 1;
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i] != quote {
                    self.i += 1;
                }
                if self.i == self.s.len() {
                    return Err("unterminated string".into());
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                self.i += 1;
                Ok(Literal::Str(text))
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                // Python 2 wrote long integers as `3L`.
                let text = std::str::from_utf8(&self.s[start..self.i]).expect("ascii");
                if self.s.get(self.i) == Some(&b'L') {
                    self.i += 1;
                }
                text.parse()
                    .map(Literal::Int)
                    .map_err(|_| format!("bad integer {text:?}"))
            }
            _ => {
                for (word, value) in [
                    ("True", Literal::Bool(true)),
                    ("False", Literal::Bool(false)),
                    ("None", Literal::None),
                ] {
                    if self.s[self.i..].starts_with(word.as_bytes()) {
                        self.i += word.len();
                        return Ok(value);
                    }
                }
                Err(format!("unexpected text at {}", self.i))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(header: &str) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend([1, 0]);
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes
    }

    #[test]
    fn reads_numpy_headers() {
        let h = parse_header(&npy(
            "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }    \n",
        ))
        .unwrap();
        assert_eq!(h.shape, [3, 4]);
        assert_eq!(h.dtype, DType::F32(Order::Little));
        assert_eq!(h.data_len, 48);
        let h = parse_header(&npy(
            "{'descr': '>f8', 'fortran_order': True, 'shape': (5,), }",
        ))
        .unwrap();
        assert_eq!(
            (h.dtype, h.fortran_order, h.shape),
            (DType::F64(Order::Big), true, vec![5])
        );
        let h = parse_header(&npy(
            "{'descr': '<i8', 'fortran_order': False, 'shape': (), }",
        ))
        .unwrap();
        assert!(matches!(h.dtype, DType::Other { size: 8, .. }));
    }

    #[test]
    fn rejects_bad_headers() {
        assert!(parse_header(b"PK\x03\x04....")
            .unwrap_err()
            .contains("magic"));
        let mut short = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }");
        short.truncate(20);
        assert!(parse_header(&short).unwrap_err().contains("truncated"));
        assert!(parse_header(&npy("{'descr': '<f4', 'shape': (3, 4), }"))
            .unwrap_err()
            .contains("fortran_order"));
        assert!(parse_header(&npy(
            "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }"
        ))
        .unwrap_err()
        .contains("structured"));
    }
}
