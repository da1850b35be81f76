//! Calls into bald-core without std (see Cargo.toml).
#![no_std]

use bald_core::{scores, LogProbs, PointScore, Shape};

/// BALD of a 1 x 2 x 2 pool, exported so that the code is kept.
#[no_mangle]
pub extern "C" fn bald_nostd_check() -> f64 {
    let lp = [-core::f64::consts::LN_2; 4];
    let Ok(view) = LogProbs::new(&lp, Shape::new(1, 2, 2)) else {
        return -1.0;
    };
    let mut out = [0.0];
    match scores(&view, PointScore::Bald, &mut out, &mut []) {
        Ok(()) => out[0],
        Err(_) => -1.0,
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    loop {}
}
