//! Saying that a test binary's GPU checks are skipped, where whoever runs the tests sees it.

use std::io::Write as _;
use std::sync::Once;

/// Writes `skipped: {what}` once per test binary straight to the process's stderr, past the
/// test harness's output capture, which hides what a passing test prints.
pub fn skipped(what: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = writeln!(std::io::stderr(), "skipped: {what}");
    });
}
