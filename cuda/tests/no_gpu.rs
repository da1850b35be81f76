//! On a machine without a GPU (or without the driver) every entry point returns a typed error;
//! nothing panics.

use bald_core::{Backend, LogProbs, Shape};
use bald_cuda::{driver_present, CudaBackend, CudaError};

#[test]
fn opening_a_missing_device_is_an_error_not_a_panic() {
    match CudaBackend::new(0) {
        Ok(b) => println!("GPU present: {} ({})", b.device_name(), b.arch()),
        Err(e) => {
            if !driver_present() {
                assert!(matches!(e, CudaError::NoDriver), "{e:?}");
                assert!(e.to_string().contains("no CUDA driver"), "{e}");
            }
            println!("no GPU backend here: {e}");
        }
    }
    // An ordinal past any machine's GPU count.
    let err = CudaBackend::new(1 << 20).unwrap_err();
    assert!(
        matches!(
            err,
            CudaError::NoDriver | CudaError::NoNvrtc | CudaError::NoDevice { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn input_errors_convert_from_bald_core() {
    let data = [f32::NAN; 4];
    let err: CudaError = LogProbs::new(&data, Shape::new(1, 2, 2))
        .unwrap_err()
        .into();
    assert!(matches!(
        err,
        CudaError::Input(bald_core::Error::NotANumber { .. })
    ));
    // The backend validates with bald-core's checks.
    if let Ok(b) = CudaBackend::new(0) {
        assert!(b.validate(&data, Shape::new(1, 2, 2)).is_err());
    }
}
