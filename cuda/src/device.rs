//! The device: probing for a driver and NVRTC, compiling modules (CUBIN for the device's own
//! architecture, PTX as the fallback), the on-disk and per-device module caches, kernel
//! launches and the stream synchronisation that reports a kernel's fault as that kernel's error.

use std::ffi::{c_char, CStr, CString};
use std::sync::{Arc, Mutex};

use bald_kernels::{Kernel, Module};
use cudarc::driver::{CudaContext, CudaFunction, CudaModule, CudaStream, LaunchArgs, LaunchConfig};
use cudarc::nvrtc::{result as nvrtc, sys as nvrtc_sys, Ptx};

use crate::cache::{CacheKey, ImageKind, KernelCache};
use crate::error::{driver, CudaError, LoadFailure};

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

/// NVRTC's version (major, minor).
pub fn nvrtc_version() -> Result<(i32, i32), CudaError> {
    if !nvrtc_present() {
        return Err(CudaError::NoNvrtc);
    }
    let (mut major, mut minor) = (0, 0);
    // SAFETY: FFI call writing two ints through valid pointers.
    unsafe { nvrtc_sys::nvrtcVersion(&mut major, &mut minor) }
        .result()
        .map_err(|e| CudaError::Driver {
            during: "reading the NVRTC version".into(),
            message: format!("{e:?}"),
        })?;
    Ok((major, minor))
}

/// The CUDA version the driver supports (major, minor), e.g. (13, 0).
pub fn driver_version() -> Result<(i32, i32), CudaError> {
    if !driver_present() {
        return Err(CudaError::NoDriver);
    }
    let mut v = 0;
    // SAFETY: FFI call writing one int through a valid pointer (needs no cuInit).
    unsafe { cudarc::driver::sys::cuDriverGetVersion(&mut v) }
        .result()
        .map_err(driver("reading the driver version"))?;
    Ok((v / 1000, v % 1000 / 10))
}

/// A module compiled by NVRTC for one architecture: the CUBIN (the device's own machine code)
/// when NVRTC can make one for it, and the PTX (NUL-terminated) the driver can JIT instead.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The CUBIN (ELF) image, `None` when NVRTC made none for this architecture.
    pub cubin: Option<Vec<u8>>,
    /// The PTX text with its terminating NUL.
    pub ptx: Vec<u8>,
}

/// An NVRTC program, destroyed on drop.
struct Program(nvrtc_sys::nvrtcProgram);

impl Drop for Program {
    fn drop(&mut self) {
        // SAFETY: the program was created by nvrtc::create_program and is destroyed once.
        let _ = unsafe { nvrtc::destroy_program(self.0) };
    }
}

impl Program {
    /// The log of the last compile, lossily decoded.
    fn log(&self) -> String {
        // SAFETY: FFI call on a live program.
        match unsafe { nvrtc::get_program_log(self.0) } {
            Ok(log) => c_text(&log),
            Err(e) => format!("(no log: {e:?})"),
        }
    }

    /// The CUBIN, or `None` when NVRTC has none (a `compute_XX` target, or an error).
    fn cubin(&self) -> Option<Vec<u8>> {
        let mut size = 0usize;
        // SAFETY: FFI call on a live program writing one usize.
        unsafe { nvrtc_sys::nvrtcGetCUBINSize(self.0, &mut size) }
            .result()
            .ok()?;
        if size == 0 {
            return None;
        }
        let mut buf = vec![0u8; size];
        // SAFETY: FFI call writing `size` bytes into a buffer of that length.
        unsafe { nvrtc_sys::nvrtcGetCUBIN(self.0, buf.as_mut_ptr().cast::<c_char>()) }
            .result()
            .ok()?;
        Some(buf)
    }
}

/// C chars up to the first NUL as text.
fn c_text(chars: &[c_char]) -> String {
    let bytes: Vec<u8> = chars
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Compiles `module` with NVRTC for `arch` (`"sm_90"`, ...): the CUBIN and the PTX. Needs
/// libnvrtc only, no GPU.
pub fn compile(module: Module, arch: &str) -> Result<Compiled, CudaError> {
    if !nvrtc_present() {
        return Err(CudaError::NoNvrtc);
    }
    let fail = |log: String| CudaError::Compile {
        module: module.name(),
        kernels: Kernel::ALL
            .iter()
            .filter(|k| k.module() == module)
            .map(|k| k.name())
            .collect(),
        arch: arch.to_string(),
        log,
    };
    let src = CString::new(module.source()).map_err(|_| fail("NUL in the source".into()))?;
    let name = CString::new(format!("{}.cu", module.name())).map_err(|_| fail("name".into()))?;
    let prog =
        Program(nvrtc::create_program(&src, Some(&name)).map_err(|e| fail(format!("{e:?}")))?);
    let options = [format!("--gpu-architecture={arch}"), "--std=c++17".into()];
    // SAFETY: FFI call on a live program; the options are copied by cudarc into C strings.
    if let Err(e) = unsafe { nvrtc::compile_program(prog.0, &options) } {
        return Err(fail(format!("{e:?}\n{}", prog.log())));
    }
    // SAFETY: FFI call on a live, compiled program.
    let ptx = unsafe { nvrtc::get_ptx(prog.0) }.map_err(|e| fail(format!("no PTX: {e:?}")))?;
    let mut ptx: Vec<u8> = ptx.iter().map(|&c| c as u8).collect();
    if ptx.last() != Some(&0) {
        ptx.push(0);
    }
    Ok(Compiled {
        cubin: prog.cubin(),
        ptx,
    })
}

/// The image a module was loaded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadedImage {
    /// CUBIN, or the PTX fallback.
    pub kind: ImageKind,
    /// Whether it came from the on-disk cache (else NVRTC compiled it in this process).
    pub cached: bool,
}

/// A module on the device and the image it came from.
type LoadedModule = (Arc<CudaModule>, LoadedImage);

/// `module`'s kernels' names, for errors.
fn kernel_names(module: Module) -> Vec<&'static str> {
    Kernel::ALL
        .iter()
        .filter(|k| k.module() == module)
        .map(|k| k.name())
        .collect()
}

/// One GPU: its context and stream, its architecture, its modules (compiled at first use, or
/// read from the on-disk cache), and the kernels launched since the last synchronisation.
pub(crate) struct Device {
    pub(crate) ctx: Arc<CudaContext>,
    pub(crate) stream: Arc<CudaStream>,
    pub(crate) arch: String,
    /// The compute capability's major version (9 for sm_90).
    pub(crate) major: i32,
    pub(crate) name: String,
    pub(crate) cache: Option<KernelCache>,
    modules: Mutex<[Option<LoadedModule>; Module::ALL.len()]>,
    in_flight: Mutex<Vec<&'static str>>,
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
            major,
            name,
            cache: KernelCache::from_env(),
            modules: Mutex::new(Default::default()),
            in_flight: Mutex::new(Vec::new()),
        })
    }

    /// The kernel, loading its module on first use: from the on-disk cache when an entry for
    /// this source, architecture and NVRTC loads, else compiled (then cached).
    pub(crate) fn function(&self, kernel: Kernel) -> Result<CudaFunction, CudaError> {
        let module = kernel.module();
        let loaded = {
            let mut modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
            match &modules[module.index()] {
                Some((m, _)) => m.clone(),
                None => {
                    let (m, kind) = self.load(module)?;
                    modules[module.index()] = Some((m.clone(), kind));
                    m
                }
            }
        };
        loaded
            .load_function(kernel.name())
            .map_err(driver(format!("loading kernel {}", kernel.name())))
    }

    /// Which image each loaded module came from (`None`: not loaded yet).
    pub(crate) fn module_images(&self) -> Vec<(Module, Option<LoadedImage>)> {
        let modules = self.modules.lock().unwrap_or_else(|p| p.into_inner());
        Module::ALL
            .iter()
            .map(|&m| (m, modules[m.index()].as_ref().map(|(_, k)| *k)))
            .collect()
    }

    fn load(&self, module: Module) -> Result<(Arc<CudaModule>, LoadedImage), CudaError> {
        let nvrtc = nvrtc_version()?;
        let key = |kind| CacheKey::new(module.source(), &self.arch, nvrtc, kind);
        // A cached image the driver accepts; one it refuses is dropped and rebuilt.
        if let Some(cache) = &self.cache {
            for kind in [ImageKind::Cubin, ImageKind::Ptx] {
                if let Some(image) = cache.get(&key(kind)) {
                    match self.ctx.load_module(Ptx::from_binary(image)) {
                        Ok(m) => return Ok((m, LoadedImage { kind, cached: true })),
                        Err(_) => cache.remove(&key(kind)),
                    }
                }
            }
        }
        let compiled = compile(module, &self.arch)?;
        let cubin_error = match &compiled.cubin {
            Some(cubin) => match self.ctx.load_module(Ptx::from_binary(cubin.clone())) {
                Ok(m) => {
                    if let Some(cache) = &self.cache {
                        cache.put(&key(ImageKind::Cubin), cubin);
                    }
                    return Ok((
                        m,
                        LoadedImage {
                            kind: ImageKind::Cubin,
                            cached: false,
                        },
                    ));
                }
                Err(e) => format!("{e:?}"),
            },
            None => format!("NVRTC made no CUBIN for {}", self.arch),
        };
        match self.ctx.load_module(Ptx::from_binary(compiled.ptx.clone())) {
            Ok(m) => {
                if let Some(cache) = &self.cache {
                    cache.put(&key(ImageKind::Ptx), &compiled.ptx);
                }
                Ok((
                    m,
                    LoadedImage {
                        kind: ImageKind::Ptx,
                        cached: false,
                    },
                ))
            }
            Err(e) => Err(CudaError::Load(Box::new(LoadFailure {
                module: module.name(),
                kernels: kernel_names(module),
                arch: self.arch.clone(),
                nvrtc,
                driver: driver_version().unwrap_or((0, 0)),
                cubin: cubin_error,
                ptx: format!("{e:?}"),
            }))),
        }
    }

    /// Launches `kernel` with the arguments `push` gives it.
    ///
    /// # Safety
    /// The arguments must match the kernel's parameter list in its `.cu` source, and every
    /// buffer must hold what the kernel reads and writes under `cfg`.
    pub(crate) unsafe fn launch<'a>(
        &'a self,
        f: &'a CudaFunction,
        kernel: Kernel,
        cfg: LaunchConfig,
        push: impl FnOnce(&mut LaunchArgs<'a>),
    ) -> Result<(), CudaError> {
        let mut b = self.stream.launch_builder(f);
        push(&mut b);
        self.in_flight
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(kernel.name());
        // SAFETY: the caller's contract.
        match unsafe { b.launch(cfg) } {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fault(format!("{e:?}"))),
        }
    }

    /// Waits for the stream, so that a fault of a kernel launched since the last wait is
    /// reported as that kernel's error (naming the kernels in flight), not as the error of
    /// whatever copy comes next. Call before reading results.
    pub(crate) fn sync(&self) -> Result<(), CudaError> {
        match self.stream.synchronize() {
            Ok(()) => {
                self.in_flight
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clear();
                Ok(())
            }
            Err(e) => Err(self.fault(format!("{e:?}"))),
        }
    }

    /// The error of a fault while `in_flight` kernels ran.
    fn fault(&self, message: String) -> CudaError {
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|p| p.into_inner());
        let mut kernels: Vec<&'static str> = Vec::new();
        for k in in_flight.drain(..).rev() {
            if !kernels.contains(&k) {
                kernels.push(k);
            }
        }
        CudaError::Kernel { kernels, message }
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

/// The text of a NUL-terminated PTX image (for tests and tools).
pub fn ptx_text(ptx: &[u8]) -> String {
    CStr::from_bytes_until_nul(ptx)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|_| String::from_utf8_lossy(ptx).into_owned())
}
