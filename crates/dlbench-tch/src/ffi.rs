//! What tch does not bind, through torch-sys's C API and our C++ (`cpp/`, built by build.rs):
//! the tracer that ends with one output, and IEEE float32 on CUDA.
//!
//! tch's `CModule::create_by_tracing` ends a trace with one graph output per tensor, which
//! TorchScript cannot save when there are several; and a `CModule` cannot be built from a
//! module pointer outside tch. So this starts the trace with torch-sys's
//! `atm_create_for_tracing` (as tch does), ends it with our `dlbench_end_tracing` (one output:
//! a tensor or a tuple), and saves and frees the module with torch-sys's functions.

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::path::Path;

use dlbench_core::{Error, Result};
use tch::Tensor;
use torch_sys::{CModule_, C_tensor};

use crate::NAME;

extern "C" {
    /// Ends the current trace with one output and adds it to `module` as method `fn_name`,
    /// its arguments named `arg_names`; NULL on success, else a malloc'd message (the trace is
    /// then abandoned).
    fn dlbench_end_tracing(
        module: *mut c_void,
        fn_name: *const c_char,
        arg_names: *const *const c_char,
        nargs: c_int,
        outputs: *const *mut c_void,
        noutputs: c_int,
    ) -> *mut c_char;
    /// `free`, for the strings of `dlbench_end_tracing` and torch-sys's last error.
    fn dlbench_free_string(s: *mut c_char);
    /// Asks for IEEE float32 in CUDA convolutions, RNNs and products (no TF32); NULL on
    /// success, else a malloc'd message.
    fn dlbench_ieee_float32_on_cuda() -> *mut c_char;
}

/// Full float32 precision on CUDA (libtorch lets cuDNN use TF32 by default; see
/// `cpp/precision.cpp`). Process-wide; idempotent.
pub(crate) fn ieee_float32_on_cuda() -> Result<()> {
    // SAFETY: no arguments; the returned string, if any, is taken (and freed) once.
    let message = take_string(unsafe { dlbench_ieee_float32_on_cuda() });
    match message {
        None => Ok(()),
        Some(message) => Err(backend_error("setting IEEE float32 on CUDA", &message)),
    }
}

fn backend_error(what: &str, message: &str) -> Error {
    Error::Backend {
        backend: NAME.to_string(),
        message: format!("{what}: {message}"),
    }
}

/// Takes ownership of a malloc'd C string: its text, and the string freed.
fn take_string(ptr: *mut c_char) -> Option<String> {
    if ptr.is_null() {
        return None;
    }
    // SAFETY: non-null, NUL-terminated and malloc'd by libtch or end_tracing.cpp; read once
    // and freed once, here.
    let text = unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned();
    // SAFETY: as above; nothing else holds the pointer.
    unsafe { dlbench_free_string(ptr) };
    Some(text)
}

/// The error libtch recorded for the last call on this thread, if any.
fn last_error(what: &str) -> Result<()> {
    // SAFETY: reads and resets libtch's thread-local error slot; no arguments.
    match take_string(unsafe { torch_sys::get_and_reset_last_err() }) {
        Some(message) => Err(backend_error(what, &message)),
        None => Ok(()),
    }
}

fn c_string(what: &str, text: &str) -> Result<CString> {
    CString::new(text).map_err(|_| backend_error(what, "a name contains a NUL byte"))
}

/// A TorchScript module owned here, freed on drop.
pub(crate) struct Module(*mut CModule_);

impl Drop for Module {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `atm_create_for_tracing` and is freed once.
        unsafe { torch_sys::atm_free(self.0) };
    }
}

impl Module {
    /// `module.eval()`: a traced module keeps PyTorch's `training` flag, which users read.
    pub(crate) fn set_eval(&self) -> Result<()> {
        // SAFETY: a live module pointer.
        unsafe { torch_sys::atm_eval(self.0) };
        last_error("switching the traced module to eval mode")
    }

    /// `module.save(path)`: a TorchScript archive.
    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        let what = format!("saving TorchScript to {}", path.display());
        let text = path
            .to_str()
            .ok_or_else(|| Error::file(path, "the path is not UTF-8"))?;
        let c_path = c_string(&what, text)?;
        // SAFETY: a live module pointer and a NUL-terminated path that outlives the call.
        unsafe { torch_sys::atm_save(self.0, c_path.as_ptr()) };
        last_error(&what)
    }
}

/// A trace in progress on this thread: libtorch records every op on the example tensors.
/// Ended by [`Tracing::end`]; dropped before (the traced walk failed), it is abandoned, so
/// that a later trace on this thread can start.
pub(crate) struct Tracing<'a> {
    module: Option<Module>,
    /// The traced arguments, kept alive (and unmoved) while the trace refers to them.
    _examples: &'a [Tensor],
}

impl<'a> Tracing<'a> {
    /// Starts tracing a module named `name` whose method takes `examples`.
    pub(crate) fn start(name: &str, examples: &'a [Tensor]) -> Result<Self> {
        let what = "starting the TorchScript trace";
        let c_name = c_string(what, name)?;
        let inputs: Vec<*mut C_tensor> = examples.iter().map(|t| t.as_ptr().cast_mut()).collect();
        let count =
            c_int::try_from(inputs.len()).map_err(|_| backend_error(what, "too many inputs"))?;
        // SAFETY: a NUL-terminated name and live tensor pointers for the call's duration;
        // libtch copies what it keeps (the tensors are then known to the tracer by identity).
        let module =
            unsafe { torch_sys::atm_create_for_tracing(c_name.as_ptr(), inputs.as_ptr(), count) };
        last_error(what)?;
        if module.is_null() {
            return Err(backend_error(what, "libtorch returned no module"));
        }
        Ok(Tracing {
            module: Some(Module(module)),
            _examples: examples,
        })
    }

    /// Ends the trace: `outputs` (one, or several as a tuple) become what method `fn_name`
    /// returns, its arguments are named `arg_names` (identifiers), and the module is handed
    /// over.
    pub(crate) fn end(
        mut self,
        fn_name: &str,
        arg_names: &[String],
        outputs: &[Tensor],
    ) -> Result<Module> {
        let what = "ending the TorchScript trace";
        let module = self
            .module
            .take()
            .ok_or_else(|| backend_error(what, "the trace was already ended"))?;
        end(&module, fn_name, arg_names, outputs).map(|()| module)
    }
}

impl Drop for Tracing<'_> {
    fn drop(&mut self) {
        if let Some(module) = self.module.take() {
            // With no outputs, end_tracing.cpp refuses and abandons the trace; that refusal is
            // expected, and not the error the caller reports.
            let _ = end(&module, "forward", &[], &[]);
        }
    }
}

/// Calls `dlbench_end_tracing` on `module`.
fn end(module: &Module, fn_name: &str, arg_names: &[String], outputs: &[Tensor]) -> Result<()> {
    let what = "ending the TorchScript trace";
    let c_name = c_string(what, fn_name)?;
    let c_args = arg_names
        .iter()
        .map(|name| c_string(what, name))
        .collect::<Result<Vec<_>>>()?;
    let arg_ptrs: Vec<*const c_char> = c_args.iter().map(|name| name.as_ptr()).collect();
    let nargs =
        c_int::try_from(arg_ptrs.len()).map_err(|_| backend_error(what, "too many inputs"))?;
    let ptrs: Vec<*mut c_void> = outputs
        .iter()
        .map(|t| t.as_ptr().cast_mut().cast::<c_void>())
        .collect();
    let count = c_int::try_from(ptrs.len()).map_err(|_| backend_error(what, "too many outputs"))?;
    // SAFETY: a live module pointer from `atm_create_for_tracing` on this thread,
    // NUL-terminated names and live tensor pointers, all outliving the call.
    let error = unsafe {
        dlbench_end_tracing(
            module.0.cast::<c_void>(),
            c_name.as_ptr(),
            arg_ptrs.as_ptr(),
            nargs,
            ptrs.as_ptr(),
            count,
        )
    };
    match take_string(error) {
        Some(message) => Err(backend_error(what, &message)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    /// libtorch accepts the request on any machine (CUDA or not) and again when repeated.
    #[test]
    fn ieee_float32_on_cuda_is_accepted_twice() {
        super::ieee_float32_on_cuda().unwrap();
        super::ieee_float32_on_cuda().unwrap();
    }
}
