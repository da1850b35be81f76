//! The device: probing for a driver and NVRTC, compiling modules, the per-device module cache,
//! and memory budgets.

use std::sync::{Arc, Mutex};

use bald_kernels::{Kernel, Module};
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream};
use cudarc::nvrtc::{compile_ptx_with_opts, CompileError, CompileOptions, Ptx};

use crate::error::{driver, CudaError};

/// Whether libcuda can be loaded. cudarc panics on first use when it cannot, so every path
/// into the driver asks this first.
pub fn driver_present() -> bool {
    // SAFETY: only tries to dlopen the library by its known names; no symbol is called.
    unsafe { cudarc::driver::sys::is_culib_present() }
}

/// Whether libnvrtc can be loaded (see [`driver_present`]).
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library by its known names; no symbol is called.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compiles `module` with NVRTC for `arch` (`"sm_90"`, ...). Needs libnvrtc only, no GPU.
pub fn compile(module: Module, arch: &str) -> Result<Ptx, CudaError> {
    if !nvrtc_present() {
        return Err(CudaError::NoNvrtc);
    }
    let opts = CompileOptions {
        options: vec![format!("--gpu-architecture={arch}"), "--std=c++17".into()],
        name: Some(format!("{}.cu", module.name())),
        ..Default::default()
    };
    compile_ptx_with_opts(module.source(), opts).map_err(|e| {
        let log = match e {
            CompileError::CompileError { log, .. } => log.to_string_lossy().into_owned(),
            other => format!("{other:?}"),
        };
        CudaError::Compile {
            module: module.name(),
            kernels: Kernel::ALL
                .iter()
                .filter(|k| k.module() == module)
                .map(|k| k.name())
                .collect(),
            arch: arch.to_string(),
            log,
        }
    })
}

/// One GPU: its context and stream, its architecture, and its modules, compiled at first use.
pub(crate) struct Device {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    pub(crate) arch: String,
    pub(crate) name: String,
    modules: Mutex<[Option<Arc<CudaModule>>; Module::ALL.len()]>,
}

impl Device {
    /// Opens GPU `ordinal`, after checking that the driver and NVRTC can be loaded.
    pub(crate) fn open(ordinal: usize) -> Result<Device, CudaError> {
        if !driver_present() {
            return Err(CudaError::NoDriver);
        }
        if !nvrtc_present() {
            return Err(CudaError::NoNvrtc);
        }
        let count = CudaContext::device_count().map_err(driver("counting devices"))?;
        let count = usize::try_from(count).unwrap_or(0);
        if ordinal >= count {
            return Err(CudaError::NoDevice { ordinal, count });
        }
        let ctx = CudaContext::new(ordinal).map_err(driver("creating the context"))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(driver("reading the compute capability"))?;
        let name = ctx.name().map_err(driver("reading the device name"))?;
        let stream = ctx.default_stream();
        Ok(Device {
            ctx,
            stream,
            arch: format!("sm_{major}{minor}"),
            name,
            modules: Mutex::new(Default::default()),
        })
    }

    /// The kernel, compiling and loading its module on first use.
    pub(crate) fn function(&self, kernel: Kernel) -> Result<CudaFunction, CudaError> {
        let module = kernel.module();
        let loaded = {
            let mut cache = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            match &cache[module.index()] {
                Some(m) => m.clone(),
                None => {
                    let ptx = compile(module, &self.arch)?;
                    let m = self
                        .ctx
                        .load_module(ptx)
                        .map_err(driver(format!("loading module {}", module.name())))?;
                    cache[module.index()] = Some(m.clone());
                    m
                }
            }
        };
        loaded
            .load_function(kernel.name())
            .map_err(driver(format!("loading kernel {}", kernel.name())))
    }

    /// Free device memory in bytes.
    pub(crate) fn free_memory(&self) -> Result<usize, CudaError> {
        let (free, _total) = self
            .ctx
            .mem_get_info()
            .map_err(driver("reading free memory"))?;
        Ok(free)
    }
}
