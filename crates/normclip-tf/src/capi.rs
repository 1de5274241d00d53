//! The slice of TensorFlow's C API the ops need (`c_api.h`, `ops.h`, `kernels.h`, `tf_tensor.h`,
//! `tf_status.h`), resolved at run time with `dlopen(RTLD_NOLOAD)` + `dlsym` from a TensorFlow
//! library this process has already loaded — in practice the one tfjs-node's binding links.
//!
//! Never a link-time dependency: the addon loads, and everything else in it works, without
//! TensorFlow anywhere on the machine. `RTLD_NOLOAD` means we never load a TensorFlow of our own
//! (a second copy would have its own op and kernel registries, invisible to tfjs-node).

use std::ffi::{c_char, c_int, c_void, CStr};

macro_rules! opaque {
    ($($name:ident),* $(,)?) => {
        $(
            /// An opaque TensorFlow C API type, only ever handled by pointer.
            #[allow(non_camel_case_types)]
            #[repr(C)]
            pub struct $name {
                _private: [u8; 0],
            }
        )*
    };
}

opaque!(
    TF_Status,
    TF_Tensor,
    TF_Buffer,
    TF_Graph,
    TF_OpDefinitionBuilder,
    TF_ShapeInferenceContext,
    TF_KernelBuilder,
    TF_OpKernelConstruction,
    TF_OpKernelContext,
);

/// `TF_Code` values (`tf_status.h`).
pub const TF_OK: c_int = 0;
pub const TF_INVALID_ARGUMENT: c_int = 3;
pub const TF_INTERNAL: c_int = 13;
/// `TF_DataType::TF_FLOAT` (`tf_datatype.h`).
pub const TF_FLOAT: c_int = 1;

pub type CreateFn = unsafe extern "C" fn(*mut TF_OpKernelConstruction) -> *mut c_void;
pub type ComputeFn = unsafe extern "C" fn(*mut c_void, *mut TF_OpKernelContext);
pub type DeleteFn = unsafe extern "C" fn(*mut c_void);
pub type ShapeFn = unsafe extern "C" fn(*mut TF_ShapeInferenceContext, *mut TF_Status);

/// Declares the table of C functions: one field per symbol, named exactly as the symbol.
macro_rules! api {
    ($( $name:ident : fn($($arg:ty),* $(,)?) $(-> $ret:ty)? ; )*) => {
        /// The resolved functions, plus where they came from.
        #[allow(non_snake_case, reason = "each field is named exactly as the C symbol it holds")]
        pub struct Api {
            $( pub $name: unsafe extern "C" fn($($arg),*) $(-> $ret)?, )*
            /// Path of the library that provides the kernel API (`TF_RegisterKernelBuilder`).
            pub library: String,
        }

        impl Api {
            /// Looks every symbol up in `libraries`, each from the first that defines it.
            /// `Err` lists the missing ones.
            fn resolve(libraries: &[dl::Library]) -> Result<Api, String> {
                let mut missing: Vec<&str> = Vec::new();
                let mut find = |symbol: &'static str| -> *mut c_void {
                    let name = CStr::from_bytes_with_nul(symbol.as_bytes())
                        .expect("symbol names are NUL-terminated literals");
                    let found = libraries
                        .iter()
                        .map(|library| library.symbol(name))
                        .find(|address| !address.is_null());
                    found.unwrap_or_else(|| {
                        missing.push(symbol.trim_end_matches('\0'));
                        std::ptr::null_mut()
                    })
                };
                let addresses = [$(find(concat!(stringify!($name), "\0"))),*];
                if !missing.is_empty() {
                    return Err(format!(
                        "the loaded TensorFlow library does not export {}",
                        missing.join(", ")
                    ));
                }
                let mut addresses = addresses.into_iter();
                Ok(Api {
                    $(
                        // SAFETY: the address is the non-null `dlsym` result for the symbol of
                        // this very name, whose C signature (TensorFlow's C API headers, stable
                        // across 2.x) is the field's type.
                        $name: unsafe {
                            std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($arg),*) $(-> $ret)?>(
                                addresses.next().expect("one address per symbol"),
                            )
                        },
                    )*
                    library: String::new(),
                })
            }
        }
    };
}

api! {
    TF_Version: fn() -> *const c_char;
    TF_NewStatus: fn() -> *mut TF_Status;
    TF_DeleteStatus: fn(*mut TF_Status);
    TF_SetStatus: fn(*mut TF_Status, c_int, *const c_char);
    TF_GetCode: fn(*const TF_Status) -> c_int;
    TF_Message: fn(*const TF_Status) -> *const c_char;
    TF_NewBuffer: fn() -> *mut TF_Buffer;
    TF_DeleteBuffer: fn(*mut TF_Buffer);
    TF_NewGraph: fn() -> *mut TF_Graph;
    TF_DeleteGraph: fn(*mut TF_Graph);
    TF_GraphGetOpDef: fn(*mut TF_Graph, *const c_char, *mut TF_Buffer, *mut TF_Status);
    TF_NewOpDefinitionBuilder: fn(*const c_char) -> *mut TF_OpDefinitionBuilder;
    TF_OpDefinitionBuilderAddInput: fn(*mut TF_OpDefinitionBuilder, *const c_char);
    TF_OpDefinitionBuilderAddOutput: fn(*mut TF_OpDefinitionBuilder, *const c_char);
    TF_OpDefinitionBuilderAddAttr: fn(*mut TF_OpDefinitionBuilder, *const c_char);
    TF_OpDefinitionBuilderSetShapeInferenceFunction: fn(*mut TF_OpDefinitionBuilder, ShapeFn);
    TF_ShapeInferenceContextSetUnknownShape: fn(*mut TF_ShapeInferenceContext, *mut TF_Status);
    TF_RegisterOpDefinition: fn(*mut TF_OpDefinitionBuilder, *mut TF_Status);
    TF_NewKernelBuilder: fn(*const c_char, *const c_char, CreateFn, ComputeFn, DeleteFn) -> *mut TF_KernelBuilder;
    TF_RegisterKernelBuilder: fn(*const c_char, *mut TF_KernelBuilder, *mut TF_Status);
    TF_OpKernelConstruction_GetAttrSize: fn(*mut TF_OpKernelConstruction, *const c_char, *mut i32, *mut i32, *mut TF_Status);
    TF_OpKernelConstruction_GetAttrString: fn(*mut TF_OpKernelConstruction, *const c_char, *mut c_char, usize, *mut TF_Status);
    TF_OpKernelConstruction_Failure: fn(*mut TF_OpKernelConstruction, *mut TF_Status);
    TF_NumInputs: fn(*mut TF_OpKernelContext) -> c_int;
    TF_NumOutputs: fn(*mut TF_OpKernelContext) -> c_int;
    TF_GetInput: fn(*mut TF_OpKernelContext, c_int, *mut *mut TF_Tensor, *mut TF_Status);
    TF_ForwardInputOrAllocateOutput: fn(*mut TF_OpKernelContext, *const c_int, c_int, c_int, *const i64, c_int, *mut c_int, *mut TF_Status) -> *mut TF_Tensor;
    TF_OpKernelContext_Failure: fn(*mut TF_OpKernelContext, *mut TF_Status);
    TF_TensorType: fn(*const TF_Tensor) -> c_int;
    TF_NumDims: fn(*const TF_Tensor) -> c_int;
    TF_Dim: fn(*const TF_Tensor, c_int) -> i64;
    TF_TensorElementCount: fn(*const TF_Tensor) -> i64;
    TF_TensorData: fn(*const TF_Tensor) -> *mut c_void;
    TF_DeleteTensor: fn(*mut TF_Tensor);
}

/// The TensorFlow libraries tfjs-node (and TensorFlow's own C distribution) load, in the order
/// their symbols are preferred: the kernel and op API lives in the framework library since 2.x.
#[cfg(target_os = "linux")]
const LIBRARIES: &[&CStr] = &[
    c"libtensorflow_framework.so.2",
    c"libtensorflow.so.2",
    c"libtensorflow_cc.so.2",
];
#[cfg(target_os = "macos")]
const LIBRARIES: &[&CStr] = &[
    c"libtensorflow_framework.2.dylib",
    c"libtensorflow.2.dylib",
    c"libtensorflow_cc.2.dylib",
];
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
const LIBRARIES: &[&CStr] = &[];

/// Why the API could not be resolved.
pub enum LoadError {
    /// No TensorFlow library is loaded in this process (yet: tfjs-node may be loaded later).
    NotLoaded(String),
    /// A TensorFlow library is loaded but lacks what the ops need: final.
    Unusable(String),
}

impl Api {
    /// Resolves the API from the TensorFlow libraries already loaded in this process.
    pub fn load() -> Result<Api, LoadError> {
        if LIBRARIES.is_empty() {
            return Err(LoadError::Unusable(
                "TensorFlow ops are implemented for Linux and macOS only".into(),
            ));
        }
        let libraries: Vec<dl::Library> = LIBRARIES
            .iter()
            .filter_map(|name| dl::Library::open_loaded(name))
            .collect();
        if libraries.is_empty() {
            let names: Vec<_> = LIBRARIES.iter().map(|n| n.to_string_lossy()).collect();
            return Err(LoadError::NotLoaded(format!(
                "no TensorFlow library is loaded in this process (looked for {})",
                names.join(", ")
            )));
        }
        let mut api = Api::resolve(&libraries).map_err(LoadError::Unusable)?;
        api.library = dl::path_of(api.TF_RegisterKernelBuilder as *const c_void)
            .unwrap_or_else(|| "unknown".into());
        Ok(api)
    }

    /// `TF_Version()`, e.g. `2.12.1`.
    pub fn version(&self) -> String {
        // SAFETY: TF_Version takes nothing and returns a static NUL-terminated string (or null).
        let version = unsafe { (self.TF_Version)() };
        if version.is_null() {
            return "unknown".into();
        }
        // SAFETY: non-null, NUL-terminated and static (TF_Version's contract).
        unsafe { CStr::from_ptr(version) }
            .to_string_lossy()
            .into_owned()
    }
}

/// A `TF_Status`, deleted when dropped.
pub struct Status<'a> {
    api: &'a Api,
    pub raw: *mut TF_Status,
}

impl<'a> Status<'a> {
    pub fn new(api: &'a Api) -> Status<'a> {
        // SAFETY: TF_NewStatus has no preconditions; the result is owned by this value.
        let raw = unsafe { (api.TF_NewStatus)() };
        Status { api, raw }
    }

    pub fn is_ok(&self) -> bool {
        // SAFETY: `raw` is a live status owned by this value.
        unsafe { (self.api.TF_GetCode)(self.raw) == TF_OK }
    }

    /// The status as `Ok`, or `Err` with TensorFlow's message.
    pub fn check(&self, what: &str) -> Result<(), String> {
        if self.is_ok() {
            return Ok(());
        }
        // SAFETY: `raw` is live; TF_Message returns a NUL-terminated string owned by the status,
        // valid until it changes, and copied out at once.
        let message = unsafe { CStr::from_ptr((self.api.TF_Message)(self.raw)) };
        Err(format!("{what}: {}", message.to_string_lossy()))
    }

    /// Sets the status to `code` with `message` (interior NULs dropped).
    pub fn set(&self, code: c_int, message: &str) {
        let text: Vec<u8> = message.bytes().filter(|&b| b != 0).chain([0]).collect();
        // SAFETY: `raw` is live and `text` is NUL-terminated; TensorFlow copies the message.
        unsafe { (self.api.TF_SetStatus)(self.raw, code, text.as_ptr().cast()) }
    }
}

impl Drop for Status<'_> {
    fn drop(&mut self) {
        // SAFETY: `raw` was made by TF_NewStatus and is deleted exactly once, here.
        unsafe { (self.api.TF_DeleteStatus)(self.raw) }
    }
}

/// A `TF_Tensor` handle we own (from TF_GetInput / TF_ForwardInputOrAllocateOutput), deleted when
/// dropped. Deleting the handle never frees the data an op context still holds.
pub struct TensorHandle<'a> {
    api: &'a Api,
    pub raw: *mut TF_Tensor,
}

impl<'a> TensorHandle<'a> {
    /// Takes ownership of `raw` (which may be null: then dropping does nothing).
    pub fn own(api: &'a Api, raw: *mut TF_Tensor) -> TensorHandle<'a> {
        TensorHandle { api, raw }
    }
}

impl Drop for TensorHandle<'_> {
    fn drop(&mut self) {
        if !self.raw.is_null() {
            // SAFETY: a non-null handle whose ownership TensorFlow passed to us, deleted once.
            unsafe { (self.api.TF_DeleteTensor)(self.raw) }
        }
    }
}

#[cfg(unix)]
mod dl {
    use std::ffi::{c_void, CStr};

    /// A handle of a library that was already loaded. Never closed: the functions resolved from
    /// it, and the kernels registered into it, must stay valid for the life of the process.
    pub struct Library {
        handle: *mut c_void,
    }

    impl Library {
        pub fn open_loaded(name: &CStr) -> Option<Library> {
            // SAFETY: `name` is NUL-terminated; RTLD_NOLOAD only returns a handle of a library
            // already mapped into the process (running no initialisers), else null.
            let handle = unsafe { libc::dlopen(name.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
            (!handle.is_null()).then_some(Library { handle })
        }

        pub fn symbol(&self, name: &CStr) -> *mut c_void {
            // SAFETY: `handle` is a live dlopen handle (never closed) and `name` NUL-terminated.
            unsafe { libc::dlsym(self.handle, name.as_ptr()) }
        }
    }

    /// The path of the loaded object that contains `address`.
    pub fn path_of(address: *const c_void) -> Option<String> {
        let mut info = std::mem::MaybeUninit::<libc::Dl_info>::zeroed();
        // SAFETY: `info` is a writable Dl_info; dladdr only reads the loader's tables.
        let found = unsafe { libc::dladdr(address, info.as_mut_ptr()) };
        if found == 0 {
            return None;
        }
        // SAFETY: dladdr succeeded, so it filled `info`.
        let info = unsafe { info.assume_init() };
        if info.dli_fname.is_null() {
            return None;
        }
        // SAFETY: dli_fname is a NUL-terminated path owned by the loader.
        Some(
            unsafe { CStr::from_ptr(info.dli_fname) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    /// Makes the object containing this code (the addon) impossible to unload: TensorFlow keeps
    /// pointers to our kernel functions for the life of the process. Returns false if it could
    /// not (then nothing may be registered).
    pub fn pin_self() -> bool {
        let Some(path) = path_of(pin_self as *const c_void) else {
            return false;
        };
        let Ok(path) = std::ffi::CString::new(path) else {
            return false;
        };
        // SAFETY: `path` names the object this function lives in, hence already loaded;
        // RTLD_NOLOAD | RTLD_NODELETE only marks it non-unloadable and bumps its count.
        let handle = unsafe {
            libc::dlopen(
                path.as_ptr(),
                libc::RTLD_NOW | libc::RTLD_NOLOAD | libc::RTLD_NODELETE,
            )
        };
        !handle.is_null()
    }
}

#[cfg(not(unix))]
mod dl {
    use std::ffi::{c_void, CStr};

    pub struct Library;

    impl Library {
        pub fn open_loaded(_name: &CStr) -> Option<Library> {
            None
        }

        pub fn symbol(&self, _name: &CStr) -> *mut c_void {
            std::ptr::null_mut()
        }
    }

    pub fn path_of(_address: *const c_void) -> Option<String> {
        None
    }

    pub fn pin_self() -> bool {
        false
    }
}

pub use dl::pin_self;
