//! Every kernel module compiles with NVRTC for sm_80 and sm_90, to a CUBIN (what the backend
//! loads) and to PTX (its fallback). Needs libnvrtc, not a GPU: CI installs the
//! `nvidia-cuda-nvrtc` wheel and sets `BALD_REQUIRE_NVRTC=1`, so a missing NVRTC fails there
//! instead of skipping.

use bald_cuda::{compile, nvrtc_present, nvrtc_version, ptx_text, CudaError, LoadFailure};
use bald_kernels::{Kernel, Module};
use skip::skipped;

use bald_testing::skip;

fn nvrtc_or_skip() -> bool {
    if nvrtc_present() {
        return true;
    }
    if std::env::var_os("BALD_REQUIRE_NVRTC").is_some() {
        panic!("BALD_REQUIRE_NVRTC is set but libnvrtc could not be loaded");
    }
    skipped("the NVRTC tests pass without compiling: libnvrtc not found (set LD_LIBRARY_PATH to a CUDA 13 NVRTC)");
    false
}

/// Whether this NVRTC is the CPU emulation's (whose images are host shared objects).
fn emulated(ptx: &str) -> bool {
    ptx.contains("cudaemu-module:")
}

#[test]
fn every_module_compiles_to_cubin_and_ptx_for_sm_80_and_sm_90() {
    if !nvrtc_or_skip() {
        return;
    }
    let (major, minor) = nvrtc_version().unwrap();
    println!("NVRTC {major}.{minor}");
    for arch in ["sm_80", "sm_90"] {
        for module in Module::ALL {
            let compiled = match compile(module, arch) {
                Ok(c) => c,
                Err(e) => panic!("{e}"),
            };
            let ptx = ptx_text(&compiled.ptx);
            assert_eq!(
                compiled.ptx.last(),
                Some(&0),
                "the PTX image is NUL-terminated"
            );
            let cubin = compiled.cubin.expect("a CUBIN for an sm_ target");
            if !emulated(&ptx) {
                // A real CUBIN: an ELF object for the architecture, with every kernel's symbol.
                assert_eq!(&cubin[..4], b"\x7fELF", "{arch} {}", module.name());
                let has = |name: &str| cubin.windows(name.len()).any(|w| w == name.as_bytes());
                for kernel in Kernel::ALL.iter().filter(|k| k.module() == module) {
                    assert!(
                        has(kernel.name()),
                        "{} missing from the {arch} CUBIN",
                        kernel.name()
                    );
                }
                let version = ptx
                    .lines()
                    .find(|l| l.starts_with(".version"))
                    .unwrap_or("");
                println!(
                    "{}.cu: {arch} CUBIN {} bytes, PTX {} bytes ({version})",
                    module.name(),
                    cubin.len(),
                    ptx.len()
                );
            }
            for kernel in Kernel::ALL.iter().filter(|k| k.module() == module) {
                assert!(
                    ptx.contains(&format!(".entry {}(", kernel.name())),
                    "{} missing from the {arch} PTX of {}",
                    kernel.name(),
                    module.name()
                );
            }
        }
    }
}

#[test]
fn a_compile_failure_names_the_module_and_prints_the_log() {
    if !nvrtc_or_skip() {
        return;
    }
    // An architecture NVRTC does not know makes it fail with a log.
    let err = compile(Module::Scores, "sm_1").unwrap_err();
    let CudaError::Compile {
        module, kernels, ..
    } = &err
    else {
        panic!("unexpected error {err:?}");
    };
    assert_eq!(*module, "scores");
    assert!(kernels.contains(&"scores_f32"));
    let msg = err.to_string();
    assert!(msg.contains("scores.cu") && msg.contains("sm_1"), "{msg}");
}

#[test]
fn a_load_failure_names_the_nvrtc_and_the_driver_versions() {
    // What a CUDA 13.0 driver says of NVRTC 13.2's PTX 9.2 when no CUBIN loads either.
    let err = CudaError::Load(Box::new(LoadFailure {
        module: "joint",
        kernels: vec!["joint_entropy_f32"],
        arch: "sm_90".into(),
        nvrtc: (13, 2),
        driver: (13, 0),
        cubin: "CUDA_ERROR_NO_BINARY_FOR_GPU".into(),
        ptx: "CUDA_ERROR_UNSUPPORTED_PTX_VERSION".into(),
    }));
    let msg = err.to_string();
    for part in [
        "NVRTC 13.2",
        "CUDA 13.0",
        "joint.cu",
        "sm_90",
        "UNSUPPORTED_PTX_VERSION",
    ] {
        assert!(msg.contains(part), "{part} missing from: {msg}");
    }
}
