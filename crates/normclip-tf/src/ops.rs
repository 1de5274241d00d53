//! The op family and its registration.
//!
//! Every op of the family has the same signature and runs one normclip pass over N float32
//! tensors on their own memory:
//!
//! ```text
//! inputs:  N * float        outputs: N * float (output i has the shape of input i)
//! attrs:   N: int >= 1      spec: string (what the pass does to each input; its own format)
//! ```
//!
//! Output `i` is input `i`'s buffer when TensorFlow lets the kernel forward it (`TF_ForwardInputOr
//! AllocateOutput`: only when no one else holds that buffer), else a fresh buffer computed from the
//! input in one fused pass; either way no data is copied in or out of TensorFlow. A pass is a
//! [`Pass`]: it parses `spec` once per kernel, checks every input shape before any output exists
//! (so a bad input fails the op with every output untouched), then runs. The glue here does the
//! rest — dtype, alignment and size checks, forwarding, TensorFlow errors, panics (caught: none
//! crosses into TensorFlow).
//!
//! Members: [`Constrain`] (`NormclipConstrain`, the weight constraints). Gradient clipping can join
//! with a `Pass` of its own (a global norm over the N inputs, say) and one line in [`FAMILY`].

use std::any::Any;
use std::ffi::{c_char, c_int, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use normclip_core::apply::Prepared;
use normclip_core::kernels::Kernels;
use normclip_core::layout::element_count;
use normclip_core::Constraint;

use crate::capi::{
    pin_self, Api, LoadError, Status, TF_OpKernelConstruction, TF_OpKernelContext,
    TF_ShapeInferenceContext, TensorHandle, TF_FLOAT, TF_INTERNAL, TF_INVALID_ARGUMENT,
};
use crate::spec;

/// One tensor of a pass: where its result goes and what it is computed from.
pub enum Operand<'a> {
    /// TensorFlow forwarded the input buffer: the output is the input, transformed in place.
    InPlace(&'a mut [f32]),
    /// A fresh output buffer and the input it is computed from (left as it is).
    Copy {
        source: &'a [f32],
        target: &'a mut [f32],
    },
}

/// What one op of the family computes.
pub trait Pass: Sized + Send + Sync + 'static {
    /// The op's name in TensorFlow's registry.
    const OP: &'static CStr;
    /// The name its CPU kernel is registered under.
    const KERNEL: &'static CStr;
    /// The validated per-call state `check` hands to `run`.
    type Checked;
    /// Builds the pass from the op's `spec` attribute, once per kernel (TensorFlow's eager runtime
    /// caches one kernel per distinct attribute value).
    fn from_spec(spec: &str) -> Result<Self, String>;
    /// Checks the N input shapes, before any output is allocated or written.
    fn check(&self, shapes: &[Vec<usize>]) -> Result<Self::Checked, String>;
    /// Computes every output (`operands[i]` for input `i`).
    fn run(&self, checked: &Self::Checked, operands: &mut [Operand<'_>]);
}

/// A shape and the plan the core made for it.
type ShapePlan = (Vec<usize>, Prepared);

/// `NormclipConstrain`: input `i` under the `i`-th constraint of `spec` (see [`crate::spec`]).
pub struct Constrain {
    constraints: Vec<Constraint>,
    /// The plan of the last shape seen per input: a training step sees the same shapes every time.
    plans: Mutex<Vec<Option<ShapePlan>>>,
}

impl Pass for Constrain {
    const OP: &'static CStr = c"NormclipConstrain";
    const KERNEL: &'static CStr = c"NormclipConstrainCpu";
    type Checked = Vec<Prepared>;

    fn from_spec(text: &str) -> Result<Self, String> {
        let constraints = spec::decode(text)?;
        let plans = Mutex::new(vec![None; constraints.len()]);
        Ok(Constrain { constraints, plans })
    }

    fn check(&self, shapes: &[Vec<usize>]) -> Result<Vec<Prepared>, String> {
        if shapes.len() != self.constraints.len() {
            return Err(format!(
                "{} inputs for {} constraints in spec",
                shapes.len(),
                self.constraints.len()
            ));
        }
        let mut plans = self.plans.lock().unwrap_or_else(PoisonError::into_inner);
        let mut checked = Vec::with_capacity(shapes.len());
        for (index, (shape, constraint)) in shapes.iter().zip(&self.constraints).enumerate() {
            let cached = &mut plans[index];
            if let Some((seen, prepared)) = cached.as_ref().filter(|(seen, _)| seen == shape) {
                debug_assert_eq!(seen, shape);
                checked.push(prepared.clone());
                continue;
            }
            let prepared = element_count(shape)
                .and_then(|len| constraint.prepare(len, shape))
                .map_err(|e| format!("input {index} of shape {shape:?}: {}", e.message))?;
            *cached = Some((shape.clone(), prepared.clone()));
            checked.push(prepared);
        }
        Ok(checked)
    }

    fn run(&self, checked: &Vec<Prepared>, operands: &mut [Operand<'_>]) {
        let kernels = Kernels::<f32>::active();
        for (prepared, operand) in checked.iter().zip(operands) {
            match operand {
                Operand::InPlace(data) => prepared.run(data, kernels),
                // The glue allocated the output with its input's element count.
                Operand::Copy { source, target } => prepared.run_copy_into(source, target, kernels),
            }
        }
    }
}

/// One op of the family, as registered.
struct Member {
    op: &'static CStr,
    kernel: &'static CStr,
    create: crate::capi::CreateFn,
    compute: crate::capi::ComputeFn,
    delete: crate::capi::DeleteFn,
}

const fn member<P: Pass>() -> Member {
    Member {
        op: P::OP,
        kernel: P::KERNEL,
        create: create::<P>,
        compute: compute::<P>,
        delete: delete::<P>,
    }
}

/// Every op of the family.
const FAMILY: &[Member] = &[member::<Constrain>()];

/// What a successful registration reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The TensorFlow library the kernel API was resolved from (a path).
    pub library: String,
    /// `TF_Version()`.
    pub tensorflow_version: String,
    /// The ops registered, e.g. `NormclipConstrain`.
    pub ops: Vec<String>,
}

/// Setting this environment variable to `0` turns the op path off: [`register`] then reports the
/// ops unavailable, exactly as when TensorFlow is missing, and callers fall back.
pub const DISABLE_ENV: &str = "NORMCLIP_TF_OPS";

/// How many outputs the kernels computed in place on a forwarded input, and how many into a fresh
/// buffer: what TensorFlow decided, observable from tests and benchmarks.
static FORWARDED: AtomicU64 = AtomicU64::new(0);
static COPIED: AtomicU64 = AtomicU64::new(0);

/// `(forwarded, copied)`: outputs computed in place on their input's buffer (TensorFlow forwarded
/// it) and into a fresh buffer, since the process started.
pub fn output_counts() -> (u64, u64) {
    (
        FORWARDED.load(Ordering::Relaxed),
        COPIED.load(Ordering::Relaxed),
    )
}

/// The C API, once resolved; the kernels and the shape function read it.
static API: OnceLock<Api> = OnceLock::new();
/// The final outcome of registering (success, or a failure retrying cannot fix).
static OUTCOME: Mutex<Option<Result<Registration, String>>> = Mutex::new(None);

/// Registers the op family with the TensorFlow library loaded in this process, once per process;
/// later calls return the first outcome. `Err` says why the ops are unavailable. While no
/// TensorFlow is loaded the answer is not remembered: a later call (after tfjs-node loaded)
/// tries again.
pub fn register() -> Result<Registration, String> {
    let mut outcome = OUTCOME.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(done) = outcome.as_ref() {
        return done.clone();
    }
    if std::env::var_os(DISABLE_ENV).is_some_and(|value| value == "0") {
        return Err(format!("disabled by {DISABLE_ENV}=0"));
    }
    let api = match Api::load() {
        Ok(api) => api,
        Err(LoadError::NotLoaded(message)) => return Err(message),
        Err(LoadError::Unusable(message)) => {
            *outcome = Some(Err(message.clone()));
            return Err(message);
        }
    };
    let result = catch_unwind(AssertUnwindSafe(|| register_family(api)))
        .unwrap_or_else(|panic| Err(format!("internal error: {}", panic_message(&*panic))));
    *outcome = Some(result.clone());
    result
}

fn register_family(api: Api) -> Result<Registration, String> {
    let api: &'static Api = API.get_or_init(|| api);
    for member in FAMILY {
        // TensorFlow aborts the process on a second registration of an op name: another copy of
        // normclip (a second node_modules) may have registered ours.
        if op_exists(api, member.op) {
            return Err(format!(
                "op {} is already registered in this process (by another copy of normclip?)",
                member.op.to_string_lossy()
            ));
        }
    }
    if !pin_self() {
        return Err("could not keep the addon loaded for TensorFlow's kernel registry".into());
    }
    let status = Status::new(api);
    for member in FAMILY {
        let name = member.op.to_string_lossy();
        // SAFETY: every pointer passed is a static NUL-terminated string or a function of the
        // right C signature; the builder is handed to TF_RegisterOpDefinition, which frees it.
        unsafe {
            let builder = (api.TF_NewOpDefinitionBuilder)(member.op.as_ptr());
            (api.TF_OpDefinitionBuilderAddInput)(builder, c"inputs: N * float".as_ptr());
            (api.TF_OpDefinitionBuilderAddOutput)(builder, c"outputs: N * float".as_ptr());
            (api.TF_OpDefinitionBuilderAddAttr)(builder, c"N: int >= 1".as_ptr());
            (api.TF_OpDefinitionBuilderAddAttr)(builder, c"spec: string".as_ptr());
            (api.TF_OpDefinitionBuilderSetShapeInferenceFunction)(builder, unknown_shape);
            (api.TF_RegisterOpDefinition)(builder, status.raw);
        }
        status.check(&format!("registering op {name}"))?;
        // SAFETY: as above; the kernel builder's ownership passes to TF_RegisterKernelBuilder.
        unsafe {
            let builder = (api.TF_NewKernelBuilder)(
                member.op.as_ptr(),
                c"CPU".as_ptr(),
                member.create,
                member.compute,
                member.delete,
            );
            (api.TF_RegisterKernelBuilder)(member.kernel.as_ptr(), builder, status.raw);
        }
        status.check(&format!("registering the CPU kernel of {name}"))?;
    }
    Ok(Registration {
        library: api.library.clone(),
        tensorflow_version: api.version(),
        ops: FAMILY
            .iter()
            .map(|m| m.op.to_string_lossy().into_owned())
            .collect(),
    })
}

/// Whether TensorFlow's op registry knows `name` (asked through a throwaway graph).
fn op_exists(api: &Api, name: &CStr) -> bool {
    let status = Status::new(api);
    // SAFETY: graph and buffer are created here and deleted below; `name` is NUL-terminated.
    unsafe {
        let graph = (api.TF_NewGraph)();
        let buffer = (api.TF_NewBuffer)();
        (api.TF_GraphGetOpDef)(graph, name.as_ptr(), buffer, status.raw);
        (api.TF_DeleteBuffer)(buffer);
        (api.TF_DeleteGraph)(graph);
    }
    status.is_ok()
}

/// The family's shape function: outputs of unknown shape. Eager execution (tfjs-node) never asks;
/// graph builders get a valid, if uninformative, answer. (Copying input `i`'s shape to output `i`
/// would need `TF_ShapeInferenceContextGetInput`, which rejects every `i > 0` in TensorFlow 2.12.)
unsafe extern "C" fn unknown_shape(
    ctx: *mut TF_ShapeInferenceContext,
    status: *mut crate::capi::TF_Status,
) {
    if let Some(api) = API.get() {
        // SAFETY: TensorFlow passes a live context and status for the duration of this call.
        unsafe { (api.TF_ShapeInferenceContextSetUnknownShape)(ctx, status) }
    }
}

unsafe extern "C" fn create<P: Pass>(ctx: *mut TF_OpKernelConstruction) -> *mut c_void {
    let Some(api) = API.get() else {
        return std::ptr::null_mut();
    };
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: `ctx` is the live construction context TensorFlow passes for this call.
        let text = unsafe { string_attr(api, ctx, c"spec") }?;
        P::from_spec(&text)
    }));
    let message = match result {
        Ok(Ok(pass)) => return Box::into_raw(Box::new(pass)).cast(),
        Ok(Err(message)) => message,
        Err(panic) => format!("internal error: {}", panic_message(&*panic)),
    };
    let status = Status::new(api);
    status.set(
        TF_INVALID_ARGUMENT,
        &format!("normclip {}: {message}", P::OP.to_string_lossy()),
    );
    // SAFETY: live context; TensorFlow copies the status and then deletes the kernel, calling
    // `delete` with the null we return.
    unsafe { (api.TF_OpKernelConstruction_Failure)(ctx, status.raw) };
    std::ptr::null_mut()
}

unsafe extern "C" fn delete<P: Pass>(kernel: *mut c_void) {
    if !kernel.is_null() {
        // SAFETY: a non-null `kernel` is the `Box<P>` leaked by `create::<P>`; TensorFlow deletes
        // each kernel once. Dropping a pass frees memory only, which cannot unwind.
        drop(unsafe { Box::from_raw(kernel.cast::<P>()) });
    }
}

unsafe extern "C" fn compute<P: Pass>(kernel: *mut c_void, ctx: *mut TF_OpKernelContext) {
    let Some(api) = API.get() else {
        return;
    };
    // Until the end of this call (also when the pass panics): TensorFlow's flush-to-zero mode off.
    let _denormals = fp_mode::KeepDenormals::new();
    // SAFETY: TensorFlow passes the kernel made by `create::<P>` and a live context.
    let result = catch_unwind(AssertUnwindSafe(|| unsafe {
        compute_in::<P>(api, kernel, ctx)
    }));
    let (code, message) = match result {
        Ok(Ok(())) => return,
        Ok(Err(message)) => (TF_INVALID_ARGUMENT, message),
        Err(panic) => (
            TF_INTERNAL,
            format!("internal error: {}", panic_message(&*panic)),
        ),
    };
    let status = Status::new(api);
    status.set(
        code,
        &format!("normclip {}: {message}", P::OP.to_string_lossy()),
    );
    // SAFETY: live context; TensorFlow copies the status.
    unsafe { (api.TF_OpKernelContext_Failure)(ctx, status.raw) };
}

/// The floating-point mode a pass runs in.
///
/// TensorFlow runs its kernels with denormals flushed to zero (its `ScopedFlushDenormal`: FTZ and
/// DAZ in x86's MXCSR, FZ in Arm's FPCR), on the calling thread of an eager op too. normclip's
/// passes are written for IEEE arithmetic (as Rust code is compiled: LLVM assumes the default
/// mode) and give the same bits on every path only there: under TensorFlow's mode a float32
/// factor of a norm beyond ~1e38 is a denormal read as zero, so MaxNorm zeroed such a column
/// instead of scaling it to its bound and MinMaxNorm ended below its minimum; denormal inputs
/// and outputs became zeros. So a pass sets the flush (and rounding) bits to the defaults and
/// restores TensorFlow's mode when it is done. Threads of normclip's own pool (large tensors)
/// run in the default mode already.
mod fp_mode {
    /// Restores the saved mode when dropped.
    pub struct KeepDenormals(u64);

    impl KeepDenormals {
        pub fn new() -> KeepDenormals {
            let saved = get();
            set(saved & !DEFAULT_CLEARED);
            KeepDenormals(saved)
        }
    }

    impl Drop for KeepDenormals {
        fn drop(&mut self) {
            set(self.0);
        }
    }

    /// MXCSR: FTZ (bit 15) and DAZ (bit 6); the rounding control (bits 13-14, 0 = to nearest).
    #[cfg(target_arch = "x86_64")]
    const FLUSH: u64 = (1 << 15) | (1 << 6);
    #[cfg(target_arch = "x86_64")]
    const ROUNDING: u64 = 0b11 << 13;
    /// FPCR: FZ (bit 24) and FZ16 (bit 19); RMode (bits 22-23, 0 = to nearest).
    #[cfg(target_arch = "aarch64")]
    const FLUSH: u64 = (1 << 24) | (1 << 19);
    #[cfg(target_arch = "aarch64")]
    const ROUNDING: u64 = 0b11 << 22;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const FLUSH: u64 = 0;
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    const ROUNDING: u64 = 0;
    /// The bits a pass clears: the defaults are zeros.
    const DEFAULT_CLEARED: u64 = FLUSH | ROUNDING;

    #[cfg(target_arch = "x86_64")]
    fn get() -> u64 {
        let mut csr = 0u32;
        // SAFETY: `stmxcsr` stores the 32-bit MXCSR into `csr`, a live local; nothing else.
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut csr, options(nostack, preserves_flags))
        };
        u64::from(csr)
    }

    #[cfg(target_arch = "x86_64")]
    fn set(value: u64) {
        let csr = value as u32;
        // SAFETY: `ldmxcsr` loads MXCSR from `csr`, a live local holding a value read from MXCSR
        // with mode bits cleared (valid: no reserved bit is set), or TensorFlow's saved value.
        unsafe {
            std::arch::asm!("ldmxcsr [{}]", in(reg) &csr, options(nostack, preserves_flags, readonly))
        };
    }

    #[cfg(target_arch = "aarch64")]
    fn get() -> u64 {
        let fpcr: u64;
        // SAFETY: reading FPCR has no side effect.
        unsafe {
            std::arch::asm!("mrs {}, fpcr", out(reg) fpcr, options(nomem, nostack, preserves_flags))
        };
        fpcr
    }

    #[cfg(target_arch = "aarch64")]
    fn set(fpcr: u64) {
        // SAFETY: writes FPCR with a value read from it (mode bits cleared) or the saved value.
        unsafe {
            std::arch::asm!("msr fpcr, {}", in(reg) fpcr, options(nomem, nostack, preserves_flags))
        };
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn get() -> u64 {
        0
    }

    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn set(_: u64) {}

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn flush_to_zero_is_off_inside_and_restored_after() {
            let tiny = std::hint::black_box(1e-40f32);
            let original = get();
            set(original | FLUSH); // TensorFlow's mode
            #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
            assert_eq!(std::hint::black_box(tiny) * 1.0, 0.0, "flushing is on");
            let flushing = get();
            {
                let _keep = KeepDenormals::new();
                assert_eq!(
                    std::hint::black_box(tiny) * 1.0,
                    tiny,
                    "denormals kept inside"
                );
            }
            assert_eq!(get(), flushing, "the caller's mode is restored");
            set(original);
        }
    }
}

/// An input, read and checked.
struct Input {
    data: *mut f32,
    len: usize,
    dims: Vec<i64>,
}

/// # Safety
/// `kernel` is null or the pass `create::<P>` made; `ctx` is the live context of this compute call.
unsafe fn compute_in<P: Pass>(
    api: &Api,
    kernel: *mut c_void,
    ctx: *mut TF_OpKernelContext,
) -> Result<(), String> {
    if kernel.is_null() {
        return Err("the kernel was not constructed".into());
    }
    // SAFETY: non-null, made by `create::<P>`, alive until `delete` (never during a compute).
    let pass = unsafe { &*kernel.cast::<P>() };
    // SAFETY: live context.
    let (count, outputs) = unsafe { ((api.TF_NumInputs)(ctx), (api.TF_NumOutputs)(ctx)) };
    if count < 0 || count != outputs {
        return Err(format!("{count} inputs but {outputs} outputs"));
    }
    let status = Status::new(api);
    let mut inputs = Vec::with_capacity(count as usize);
    let mut shapes = Vec::with_capacity(count as usize);
    for index in 0..count {
        // SAFETY: live context, index in range; on success we own the handle. It is dropped at
        // the end of this iteration: an extra reference of ours would stop TensorFlow from ever
        // forwarding the buffer. The context keeps the data alive for the whole call.
        let input = unsafe { read_input(api, ctx, index, &status) }
            .map_err(|e| format!("input {index}: {e}"))?;
        shapes.push(
            input
                .dims
                .iter()
                .map(|&d| d as usize)
                .collect::<Vec<usize>>(),
        );
        inputs.push(input);
    }
    let checked = pass.check(&shapes)?;
    let mut handles = Vec::with_capacity(inputs.len());
    let mut operands = Vec::with_capacity(inputs.len());
    for (index, input) in inputs.iter().enumerate() {
        let candidate = index as c_int;
        let mut forwarded: c_int = -1;
        // SAFETY: live context; the candidate and dims arrays outlive the call; the returned
        // handle is ours to delete.
        let output = TensorHandle::own(api, unsafe {
            (api.TF_ForwardInputOrAllocateOutput)(
                ctx,
                &candidate,
                1,
                candidate,
                input.dims.as_ptr(),
                input.dims.len() as c_int,
                &mut forwarded,
                status.raw,
            )
        });
        status.check(&format!("output {index}"))?;
        if output.raw.is_null() {
            return Err(format!("output {index}: TensorFlow returned no tensor"));
        }
        if input.len == 0 {
            operands.push(Operand::InPlace(&mut []));
            handles.push(output);
            continue;
        }
        // SAFETY: a live tensor handle.
        let target = unsafe { (api.TF_TensorData)(output.raw) }.cast::<f32>();
        check_data(target, "output")?;
        let in_place = forwarded == candidate || target == input.data;
        let counter = if in_place { &FORWARDED } else { &COPIED };
        counter.fetch_add(1, Ordering::Relaxed);
        operands.push(if in_place {
            // SAFETY: TensorFlow forwarded the input: the buffer (`len` f32s, checked aligned) is
            // this output's alone for the rest of the call.
            Operand::InPlace(unsafe { std::slice::from_raw_parts_mut(target, input.len) })
        } else {
            // SAFETY: the input buffer stays alive and unwritten during the call; the output is a
            // fresh allocation of the same element count, so the two do not overlap.
            unsafe {
                Operand::Copy {
                    source: std::slice::from_raw_parts(input.data, input.len),
                    target: std::slice::from_raw_parts_mut(target, input.len),
                }
            }
        });
        handles.push(output);
    }
    pass.run(&checked, &mut operands);
    drop(operands);
    drop(handles);
    Ok(())
}

/// # Safety
/// `ctx` is a live compute context and `index` one of its inputs.
unsafe fn read_input(
    api: &Api,
    ctx: *mut TF_OpKernelContext,
    index: c_int,
    status: &Status<'_>,
) -> Result<Input, String> {
    let mut raw = std::ptr::null_mut();
    // SAFETY: see the function's contract; `raw` is a writable local.
    unsafe { (api.TF_GetInput)(ctx, index, &mut raw, status.raw) };
    status.check("reading it")?;
    let tensor = TensorHandle::own(api, raw);
    let handle = tensor.raw;
    // SAFETY: `handle` is a live tensor handle we own, until `tensor` drops at the end.
    let dtype = unsafe { (api.TF_TensorType)(handle) };
    if dtype != TF_FLOAT {
        return Err(format!(
            "expected float32 (TF_FLOAT), got TF_DataType {dtype}"
        ));
    }
    // SAFETY: as above.
    let rank = unsafe { (api.TF_NumDims)(handle) };
    let dims: Vec<i64> = (0..rank.max(0))
        // SAFETY: as above, and `axis` is below the rank.
        .map(|axis| unsafe { (api.TF_Dim)(handle, axis) })
        .collect();
    if let Some(bad) = dims.iter().find(|&&d| d < 0 || usize::try_from(d).is_err()) {
        return Err(format!(
            "expected a tensor of known shape, got dimension {bad}"
        ));
    }
    // SAFETY: as above.
    let count = unsafe { (api.TF_TensorElementCount)(handle) };
    // SAFETY: as above; the pointer stays valid after the handle is gone (the context holds the
    // buffer for the whole compute call).
    let data = unsafe { (api.TF_TensorData)(handle) }.cast::<f32>();
    let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let len = element_count(&shape).map_err(|e| e.message)?;
    if i64::try_from(len).ok() != Some(count) {
        return Err(format!(
            "shape {shape:?} does not match its {count} elements"
        ));
    }
    if len > 0 {
        check_data(data, "input")?;
    }
    Ok(Input { data, len, dims })
}

fn check_data(data: *const f32, what: &str) -> Result<(), String> {
    if data.is_null() || !(data as usize).is_multiple_of(std::mem::align_of::<f32>()) {
        return Err(format!(
            "{what} data at {data:p} is not an aligned float32 buffer"
        ));
    }
    Ok(())
}

/// Reads a string attribute at kernel construction.
///
/// # Safety
/// `ctx` is the live construction context.
unsafe fn string_attr(
    api: &Api,
    ctx: *mut TF_OpKernelConstruction,
    name: &CStr,
) -> Result<String, String> {
    let status = Status::new(api);
    let what = format!("attribute {}", name.to_string_lossy());
    let (mut list_size, mut total_size) = (0i32, 0i32);
    // SAFETY: live context, NUL-terminated name, writable locals.
    unsafe {
        (api.TF_OpKernelConstruction_GetAttrSize)(
            ctx,
            name.as_ptr(),
            &mut list_size,
            &mut total_size,
            status.raw,
        )
    };
    status.check(&what)?;
    let size = usize::try_from(total_size).map_err(|_| format!("{what}: size {total_size}"))?;
    let mut bytes = vec![0u8; size];
    // SAFETY: `bytes` has room for `size` bytes, the length TensorFlow reported.
    unsafe {
        (api.TF_OpKernelConstruction_GetAttrString)(
            ctx,
            name.as_ptr(),
            bytes.as_mut_ptr().cast::<c_char>(),
            size,
            status.raw,
        )
    };
    status.check(&what)?;
    String::from_utf8(bytes).map_err(|_| format!("{what}: not UTF-8"))
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constrain_checks_every_shape_and_reuses_plans() {
        let pass =
            Constrain::from_spec("maxNorm,max=1.0,axis=0,mode=keras,eps=1e-7;nonNeg").unwrap();
        assert!(pass
            .check(&[vec![2, 3]])
            .unwrap_err()
            .contains("1 inputs for 2 constraints"));
        let error = pass.check(&[vec![], vec![4]]).unwrap_err();
        assert!(error.contains("input 0 of shape []"), "{error}");
        let checked = pass.check(&[vec![2, 3], vec![4]]).unwrap();
        assert_eq!(checked.len(), 2);
        // The same shapes again: plans from the cache, identical results.
        let mut a = [3.0f32, 0.0, -1.0, 4.0, 0.0, 1.0];
        let mut b = [-1.0f32, 2.0, -0.0, 3.0];
        let source = a;
        let mut copied = [0.0f32; 6];
        let checked = pass.check(&[vec![2, 3], vec![4]]).unwrap();
        pass.run(
            &checked,
            &mut [
                Operand::Copy {
                    source: &source,
                    target: &mut copied,
                },
                Operand::InPlace(&mut b),
            ],
        );
        let reference = Constraint::max_norm(1.0, normclip_core::Axes::default()).unwrap();
        reference.apply_in_place(&mut a, &[2, 3]).unwrap();
        assert_eq!(copied.map(f32::to_bits), a.map(f32::to_bits));
        assert_eq!(
            b.map(f32::to_bits),
            [0.0f32, 2.0, 0.0, 3.0].map(f32::to_bits)
        );
    }

    #[test]
    fn register_without_tensorflow_is_unavailable_and_retried() {
        // No TensorFlow in a cargo test process.
        let error = register().unwrap_err();
        assert!(error.contains("no TensorFlow library is loaded"), "{error}");
        assert!(
            OUTCOME.lock().unwrap().is_none(),
            "not remembered: a later call retries"
        );
    }
}
