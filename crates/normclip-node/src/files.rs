//! The binding of `normclip-files`: weight-file headers and jobs (inspect, write) for the
//! TypeScript layer in `src/files/`. Every argument is a plain object or string, converted into
//! owned Rust values when the call is made (no typed array crosses in, so nothing JavaScript owns
//! is touched later); jobs run on the libuv pool on those owned values. Results, errors included,
//! come back as objects (`{ error }` or the value), so TypeScript decides the exit status from the
//! error's kind instead of parsing messages. Panics are caught at every export.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use napi::bindgen_prelude::{
    Array, AsyncTask, Float64Array, FromNapiValue, ToNapiValue, TypeName, ValueType,
};
use napi::{sys, Env, Task};
use napi_derive::napi;
use normclip_core::{Axes, Constraint, ConstraintSpec, Kind, Mode};
use normclip_files::{
    dtype::{DType, Order},
    CrcPatch, FileError, FileErrorKind, Outcome, OutputFile, Piece, Segment, TensorRef, TensorTask,
    WritePlan,
};

/// A problem with a file: `kind` is `invalid` (the file lies or is damaged), `unsupported`,
/// `io` (the OS refused), `request` (the request does not fit the file) or `internal`.
#[napi(object)]
pub struct NativeFileError {
    pub kind: String,
    pub path: String,
    pub message: String,
}

impl From<FileError> for NativeFileError {
    fn from(e: FileError) -> Self {
        let kind = match e.kind {
            FileErrorKind::Invalid => "invalid",
            FileErrorKind::Unsupported => "unsupported",
            FileErrorKind::Io => "io",
            FileErrorKind::Request => "request",
        };
        NativeFileError {
            kind: kind.into(),
            path: e.path,
            message: e.message,
        }
    }
}

fn internal(what: &str) -> NativeFileError {
    NativeFileError {
        kind: "internal".into(),
        path: String::new(),
        message: format!("normclip bug: a panic in {what} (please report it)"),
    }
}

/// Runs `f`, turning a panic into an `internal` error.
fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, NativeFileError>,
) -> Result<T, NativeFileError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(internal(what)))
}

fn request(message: String) -> NativeFileError {
    NativeFileError {
        kind: "request".into(),
        path: String::new(),
        message,
    }
}

fn to_u64(value: i64, name: &str) -> Result<u64, NativeFileError> {
    u64::try_from(value).map_err(|_| {
        request(format!(
            "{name}: expected a non-negative integer, got {value}"
        ))
    })
}

/// An element type: `float16 | bfloat16 | float32 | float64` (with `bigEndian`), `quantized`
/// (tfjs: `bytes` 1 or 2, `scale`, `min`), or any other name with its `size` in bytes.
#[napi(object)]
#[derive(Clone)]
pub struct NativeDtype {
    pub name: String,
    pub big_endian: Option<bool>,
    pub bytes: Option<u32>,
    pub scale: Option<f64>,
    pub min: Option<f64>,
    pub size: Option<u32>,
}

fn dtype_from(d: &NativeDtype) -> Result<DType, NativeFileError> {
    let order = if d.big_endian == Some(true) {
        Order::Big
    } else {
        Order::Little
    };
    Ok(match d.name.as_str() {
        "float16" => DType::F16(order),
        "bfloat16" => DType::BF16(order),
        "float32" => DType::F32(order),
        "float64" => DType::F64(order),
        "quantized" => DType::Quantized {
            bytes: match d.bytes {
                Some(1) => 1,
                Some(2) => 2,
                other => {
                    return Err(request(format!(
                        "dtype.bytes: expected 1 or 2, got {other:?}"
                    )))
                }
            },
            scale: d
                .scale
                .ok_or_else(|| request("dtype.scale: missing".into()))?,
            min: d.min.ok_or_else(|| request("dtype.min: missing".into()))?,
        },
        other => DType::Other {
            name: other.into(),
            size: d.size.unwrap_or(0) as usize,
        },
    })
}

fn dtype_to(d: &DType) -> NativeDtype {
    let (name, big, size) = match d {
        DType::F16(o) => ("float16".to_string(), *o == Order::Big, 2),
        DType::BF16(o) => ("bfloat16".to_string(), *o == Order::Big, 2),
        DType::F32(o) => ("float32".to_string(), *o == Order::Big, 4),
        DType::F64(o) => ("float64".to_string(), *o == Order::Big, 8),
        DType::Quantized { bytes, .. } => ("quantized".to_string(), false, *bytes as u32),
        DType::Other { name, size } => (name.clone(), false, *size as u32),
    };
    NativeDtype {
        name,
        big_endian: Some(big),
        bytes: None,
        scale: None,
        min: None,
        size: Some(size),
    }
}

/// A byte range of input (or output) file `file` of a job.
#[napi(object)]
pub struct NativeSegment {
    pub file: u32,
    pub offset: i64,
    pub length: i64,
}

/// A tensor: its row-major elements are its segments, concatenated.
#[napi(object)]
pub struct NativeTensor {
    pub name: String,
    pub dtype: NativeDtype,
    #[napi(ts_type = "Array<number>")]
    pub shape: List<i64>,
    #[napi(ts_type = "Array<NativeSegment>")]
    pub segments: List<NativeSegment>,
}

/// Norm axes: `all` (one norm for the tensor) or `list` (negative counts from the end).
#[napi(object)]
pub struct NativeAxes {
    pub all: bool,
    #[napi(ts_type = "Array<number>")]
    pub list: List<i64>,
}

/// A constraint with every parameter resolved (the TypeScript classes own the defaults).
#[napi(object)]
pub struct NativeFileConstraint {
    /// `maxNorm | minMaxNorm | unitNorm | nonNeg | radialConstraint`.
    pub kind: String,
    pub max_value: f64,
    pub min_value: f64,
    pub rate: f64,
    pub axes: NativeAxes,
    /// `keras | projection`.
    pub mode: String,
    pub epsilon: f64,
}

#[napi(object)]
pub struct NativeTensorTask {
    pub tensor: NativeTensor,
    /// Axes of the reported norms when there is no norm constraint; none: no norms.
    pub axes: Option<NativeAxes>,
    pub count_negatives: bool,
    pub constraint: Option<NativeFileConstraint>,
    /// The stored type to write (writes only).
    pub out_dtype: Option<NativeDtype>,
}

/// A part of an output file: `copy` (`file`, `offset`, `length` of an input), `text` (UTF-8
/// bytes) or `tensor` (`tensor`'s output bytes `[start, start + length)`).
#[napi(object)]
pub struct NativePiece {
    pub kind: String,
    pub file: Option<u32>,
    pub offset: Option<i64>,
    pub length: Option<i64>,
    pub text: Option<String>,
    pub tensor: Option<u32>,
    pub start: Option<i64>,
}

#[napi(object)]
pub struct NativeOutputFile {
    pub path: String,
    pub display: String,
    #[napi(ts_type = "Array<NativePiece>")]
    pub pieces: List<NativePiece>,
}

#[napi(object)]
pub struct NativeCrcPatch {
    pub output: u32,
    pub start: i64,
    pub length: i64,
    #[napi(ts_type = "Array<number>")]
    pub positions: List<i64>,
}

/// A job: inspect `tensors` of `inputs`, or (with `outputs`) write them.
#[napi(object)]
pub struct NativeFilePlan {
    #[napi(ts_type = "Array<string>")]
    pub inputs: List<String>,
    #[napi(ts_type = "Array<NativeOutputFile>")]
    pub outputs: List<NativeOutputFile>,
    #[napi(ts_type = "Array<NativeTensorTask>")]
    pub tensors: List<NativeTensorTask>,
    #[napi(ts_type = "Array<NativeCrcPatch>")]
    pub crc_patches: List<NativeCrcPatch>,
}

/// A list field of a plan, converted element by element. napi-rs' `Vec<T>` reserves the length
/// an Array claims before reading it, and `new Array(2 ** 32 - 1)` claims four billion elements
/// in a few bytes: the reservation fails and aborts Node. This reserves at most 2^16 up front,
/// and the first hole is an error.
pub struct List<T>(Vec<T>);

impl<T> std::ops::Deref for List<T> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.0
    }
}

impl<T> TypeName for List<T> {
    fn type_name() -> &'static str {
        "Array"
    }
    fn value_type() -> ValueType {
        ValueType::Object
    }
}

impl<T: FromNapiValue> FromNapiValue for List<T> {
    unsafe fn from_napi_value(env: sys::napi_env, value: sys::napi_value) -> napi::Result<Self> {
        // SAFETY: napi-rs' conversion contract, passed on: `value` is a value of `env`'s scope.
        let array = unsafe { Array::from_napi_value(env, value) }?;
        let mut items = Vec::with_capacity(array.len().min(1 << 16) as usize);
        for index in 0..array.len() {
            match array.get::<T>(index)? {
                Some(item) => items.push(item),
                None => {
                    return Err(napi::Error::new(
                        napi::Status::InvalidArg,
                        format!("element {index} is missing"),
                    ))
                }
            }
        }
        Ok(List(items))
    }
}

impl<T: ToNapiValue> ToNapiValue for List<T> {
    unsafe fn to_napi_value(env: sys::napi_env, value: Self) -> napi::Result<sys::napi_value> {
        // SAFETY: as for `Vec<T>`, whose conversion this is.
        unsafe { Vec::<T>::to_napi_value(env, value.0) }
    }
}

fn axes_from(a: &NativeAxes) -> Axes {
    if a.all {
        Axes::All
    } else {
        Axes::List(a.list.clone())
    }
}

/// The core's spec of a job's constraint: the TS fills every field (placeholders from the core's
/// defaults), so only the parameters the kind takes are passed on.
fn constraint_from(c: &NativeFileConstraint) -> Result<Constraint, NativeFileError> {
    let core = |e: normclip_core::Error| request(format!("constraint: {}", e.message));
    let kind = Kind::parse(&c.kind).map_err(core)?;
    let takes = |name: &str| kind.parameters().contains(&name);
    let spec = ConstraintSpec {
        kind,
        max_value: takes("maxValue").then_some(c.max_value),
        min_value: takes("minValue").then_some(c.min_value),
        rate: takes("rate").then_some(c.rate),
        axes: takes("axis").then(|| axes_from(&c.axes)),
        mode: match takes("mode") {
            true => Some(Mode::parse(&c.mode).map_err(core)?),
            false => None,
        },
        epsilon: takes("epsilon").then_some(c.epsilon),
    };
    Constraint::try_from(spec).map_err(core)
}

fn plan_from(plan: &NativeFilePlan) -> Result<WritePlan, NativeFileError> {
    let tensors = plan
        .tensors
        .iter()
        .map(|t| {
            let segments = t
                .tensor
                .segments
                .iter()
                .map(|s| {
                    Ok(Segment {
                        file: s.file as usize,
                        offset: to_u64(s.offset, "segment.offset")?,
                        len: to_u64(s.length, "segment.length")?,
                    })
                })
                .collect::<Result<Vec<_>, NativeFileError>>()?;
            let shape = t
                .tensor
                .shape
                .iter()
                .map(|&d| to_u64(d, "shape").map(|d| d as usize))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(TensorTask {
                tensor: TensorRef {
                    name: t.tensor.name.clone(),
                    dtype: dtype_from(&t.tensor.dtype)?,
                    shape,
                    segments,
                },
                axes: t.axes.as_ref().map(axes_from),
                count_negatives: t.count_negatives,
                constraint: t.constraint.as_ref().map(constraint_from).transpose()?,
                out_dtype: t.out_dtype.as_ref().map(dtype_from).transpose()?,
            })
        })
        .collect::<Result<Vec<_>, NativeFileError>>()?;
    let outputs = plan
        .outputs
        .iter()
        .map(|o| {
            let pieces = o
                .pieces
                .iter()
                .map(|p| {
                    let need = |v: Option<i64>, name: &str| -> Result<u64, NativeFileError> {
                        to_u64(
                            v.ok_or_else(|| request(format!("piece.{name}: missing")))?,
                            name,
                        )
                    };
                    Ok(match p.kind.as_str() {
                        "copy" => Piece::Copy {
                            file: p
                                .file
                                .ok_or_else(|| request("piece.file: missing".into()))?
                                as usize,
                            offset: need(p.offset, "offset")?,
                            len: need(p.length, "length")?,
                        },
                        "text" => Piece::Bytes(p.text.clone().unwrap_or_default().into_bytes()),
                        "tensor" => Piece::Tensor {
                            tensor: p
                                .tensor
                                .ok_or_else(|| request("piece.tensor: missing".into()))?
                                as usize,
                            start: need(p.start, "start")?,
                            len: need(p.length, "length")?,
                        },
                        other => return Err(request(format!("piece.kind: unknown {other:?}"))),
                    })
                })
                .collect::<Result<Vec<_>, NativeFileError>>()?;
            Ok(OutputFile {
                path: o.path.clone(),
                display: o.display.clone(),
                pieces,
            })
        })
        .collect::<Result<Vec<_>, NativeFileError>>()?;
    let crc_patches = plan
        .crc_patches
        .iter()
        .map(|c| {
            Ok(CrcPatch {
                output: c.output as usize,
                start: to_u64(c.start, "crc.start")?,
                len: to_u64(c.length, "crc.length")?,
                positions: c
                    .positions
                    .iter()
                    .map(|&p| to_u64(p, "crc.position"))
                    .collect::<Result<Vec<_>, _>>()?,
            })
        })
        .collect::<Result<Vec<_>, NativeFileError>>()?;
    Ok(WritePlan {
        inputs: plan.inputs.clone(),
        outputs,
        tensors,
        crc_patches,
    })
}

/// Norms (keepdims shape `normsShape`, row-major over the kept axes) and element counts, before
/// and (when a constraint was applied) after.
#[napi(object)]
pub struct NativeOutcome {
    pub norms: Float64Array,
    pub norms_shape: Vec<u32>,
    pub norms_after: Float64Array,
    pub nan: f64,
    pub inf: f64,
    pub negative: f64,
    pub nan_after: f64,
    pub inf_after: f64,
    pub negative_after: f64,
}

fn outcome_to(o: Outcome) -> NativeOutcome {
    NativeOutcome {
        norms: Float64Array::new(o.norms),
        norms_shape: o.norms_shape.iter().map(|&d| d as u32).collect(),
        norms_after: Float64Array::new(o.norms_after),
        nan: o.counts.nan as f64,
        inf: o.counts.inf as f64,
        negative: o.counts.negative as f64,
        nan_after: o.counts_after.nan as f64,
        inf_after: o.counts_after.inf as f64,
        negative_after: o.counts_after.negative as f64,
    }
}

#[napi(object)]
pub struct NativeJobResult {
    pub error: Option<NativeFileError>,
    pub outcomes: Vec<NativeOutcome>,
}

/// An inspect or write job, run on the libuv pool by `run()`; `progress()` reads how many bytes
/// it has gone through so far (for a progress bar).
#[napi]
pub struct NativeFileJob {
    plan: Option<WritePlan>,
    write: bool,
    progress: Arc<AtomicU64>,
}

#[napi]
impl NativeFileJob {
    /// `write: false` inspects `plan.tensors` (outputs must be empty); `true` writes the outputs.
    #[napi(constructor, catch_unwind)]
    pub fn new(plan: NativeFilePlan, write: bool) -> napi::Result<Self> {
        let plan = guarded("NativeFileJob", || plan_from(&plan))
            .map_err(|e| napi::Error::from_reason(format!("NativeFileJob: {}", e.message)))?;
        Ok(NativeFileJob {
            plan: Some(plan),
            write,
            progress: Arc::new(AtomicU64::new(0)),
        })
    }

    #[napi(catch_unwind)]
    pub fn progress(&self) -> f64 {
        self.progress.load(Ordering::Relaxed) as f64
    }

    /// Runs the job once; resolves to `{ error }` or `{ outcomes }` (one per tensor task).
    #[napi(catch_unwind, ts_return_type = "Promise<NativeJobResult>")]
    pub fn run(&mut self) -> napi::Result<AsyncTask<FileTask>> {
        let plan = self
            .plan
            .take()
            .ok_or_else(|| napi::Error::from_reason("NativeFileJob.run: a job runs once"))?;
        Ok(AsyncTask::new(FileTask {
            plan,
            write: self.write,
            progress: self.progress.clone(),
        }))
    }
}

pub struct FileTask {
    plan: WritePlan,
    write: bool,
    progress: Arc<AtomicU64>,
}

impl Task for FileTask {
    type Output = Result<Vec<Outcome>, NativeFileError>;
    type JsValue = NativeJobResult;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        let (plan, progress) = (&self.plan, &*self.progress);
        Ok(guarded("a file job", || {
            if self.write {
                normclip_files::write(plan, progress).map_err(Into::into)
            } else {
                normclip_files::inspect(&plan.inputs, &plan.tensors, progress).map_err(Into::into)
            }
        }))
    }

    fn resolve(&mut self, _env: Env, output: Self::Output) -> napi::Result<NativeJobResult> {
        Ok(match output {
            Ok(outcomes) => NativeJobResult {
                error: None,
                outcomes: outcomes.into_iter().map(outcome_to).collect(),
            },
            Err(error) => NativeJobResult {
                error: Some(error),
                outcomes: Vec::new(),
            },
        })
    }
}

/// A safetensors tensor with its absolute byte range.
#[napi(object)]
pub struct NativeSafetensorsEntry {
    pub name: String,
    pub dtype: NativeDtype,
    /// The header's dtype name: `F32`, `BF16`, `I64`, …
    pub dtype_name: String,
    pub shape: Vec<i64>,
    pub offset: i64,
    pub length: i64,
}

#[napi(object)]
pub struct NativeSafetensorsHeader {
    pub error: Option<NativeFileError>,
    pub header_length: i64,
    pub file_length: i64,
    pub tensors: Vec<NativeSafetensorsEntry>,
    pub metadata: std::collections::HashMap<String, String>,
}

/// Reads and validates a safetensors header (the `safetensors` crate's checks).
#[napi(catch_unwind)]
pub fn read_safetensors_header(path: String) -> NativeSafetensorsHeader {
    let result = guarded("readSafetensorsHeader", || {
        normclip_files::safetensors::read_header(&path).map_err(Into::into)
    });
    match result {
        Ok(h) => NativeSafetensorsHeader {
            error: None,
            header_length: h.header_len as i64,
            file_length: h.file_len as i64,
            tensors: h
                .tensors
                .into_iter()
                .map(|t| NativeSafetensorsEntry {
                    name: t.name,
                    dtype: dtype_to(&t.dtype),
                    dtype_name: t.dtype_name,
                    shape: t.shape.iter().map(|&d| d as i64).collect(),
                    offset: t.offset as i64,
                    length: t.len as i64,
                })
                .collect(),
            metadata: h.metadata.into_iter().collect(),
        },
        Err(error) => NativeSafetensorsHeader {
            error: Some(error),
            header_length: 0,
            file_length: 0,
            tensors: Vec::new(),
            metadata: Default::default(),
        },
    }
}

#[napi(object)]
pub struct NativeNpyHeader {
    pub error: Option<NativeFileError>,
    pub descr: String,
    pub dtype: Option<NativeDtype>,
    pub fortran_order: bool,
    pub shape: Vec<i64>,
    /// Absolute offset of the data in the file.
    pub data_offset: i64,
    pub data_length: i64,
}

/// Reads the `.npy` header at byte `offset` of `path` (0 for a `.npy` file; an entry's data for
/// an `.npz`); `available` is how many bytes belong to it (the file's or the entry's size).
#[napi(catch_unwind)]
pub fn read_npy_header(path: String, offset: i64, available: i64) -> NativeNpyHeader {
    let result = guarded("readNpyHeader", || {
        use std::os::unix::fs::FileExt;
        let offset = to_u64(offset, "offset")?;
        let available = to_u64(available, "available")?;
        let file =
            std::fs::File::open(&path).map_err(|e| FileError::io(&path, "cannot open", &e))?;
        let mut head =
            vec![0u8; (available.min(normclip_files::npy::MAX_HEADER as u64 + 12)) as usize];
        let mut got = 0usize;
        while got < head.len() {
            match file.read_at(&mut head[got..], offset + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) => return Err(FileError::io(&path, "cannot read", &e).into()),
            }
        }
        head.truncate(got);
        let header =
            normclip_files::npy::parse_header(&head).map_err(|m| FileError::invalid(&path, m))?;
        let needed = header.data_offset + header.data_len;
        if needed > available {
            return Err(FileError::invalid(
                &path,
                format!(
                    "truncated: shape {:?} of {} needs {} data bytes, only {} follow the header",
                    header.shape,
                    header.descr,
                    header.data_len,
                    available.saturating_sub(header.data_offset)
                ),
            )
            .into());
        }
        if needed < available {
            return Err(FileError::invalid(
                &path,
                format!(
                    "{} bytes follow the data of shape {:?} of {} (a header that lies about the shape?)",
                    available - needed,
                    header.shape,
                    header.descr
                ),
            )
            .into());
        }
        Ok(header)
    });
    match result {
        Ok(h) => NativeNpyHeader {
            error: None,
            dtype: Some(dtype_to(&h.dtype)),
            descr: h.descr,
            fortran_order: h.fortran_order,
            shape: h.shape.iter().map(|&d| d as i64).collect(),
            data_offset: offset + h.data_offset as i64,
            data_length: h.data_len as i64,
        },
        Err(error) => NativeNpyHeader {
            error: Some(error),
            descr: String::new(),
            dtype: None,
            fortran_order: false,
            shape: Vec::new(),
            data_offset: 0,
            data_length: 0,
        },
    }
}

#[napi(object)]
pub struct NativeZipEntry {
    pub name: String,
    pub method: u32,
    pub crc32: u32,
    pub compressed_size: i64,
    pub size: i64,
    pub data_offset: i64,
    pub crc_positions: Vec<i64>,
}

#[napi(object)]
pub struct NativeZipDirectory {
    pub error: Option<NativeFileError>,
    pub entries: Vec<NativeZipEntry>,
}

/// The entries of a zip archive with their byte positions.
#[napi(catch_unwind)]
pub fn read_zip_directory(path: String) -> NativeZipDirectory {
    match guarded("readZipDirectory", || {
        normclip_files::zip::read_directory(&path).map_err(Into::into)
    }) {
        Ok(entries) => NativeZipDirectory {
            error: None,
            entries: entries
                .into_iter()
                .map(|e| NativeZipEntry {
                    name: e.name,
                    method: e.method as u32,
                    crc32: e.crc32,
                    compressed_size: e.compressed_size as i64,
                    size: e.size as i64,
                    data_offset: e.data_offset as i64,
                    crc_positions: e.crc_positions.iter().map(|&p| p as i64).collect(),
                })
                .collect(),
        },
        Err(error) => NativeZipDirectory {
            error: Some(error),
            entries: Vec::new(),
        },
    }
}
