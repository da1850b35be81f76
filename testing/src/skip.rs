//! Saying that a test's GPU checks are skipped, where whoever runs the tests sees it: libtest
//! has no "skipped" outcome, so such a test passes; `.ci/run` counts the tests named in
//! `$BALD_SKIP_LOG` into one summary line.

use std::collections::HashSet;
use std::io::Write as _;
use std::sync::Mutex;

/// Writes, once per test binary, `skipped (why): {what}`, and once per calling test (its
/// thread's name under libtest; a proptest body calls this once per case) `skipped: TEST`,
/// straight to the process's stderr, past the test harness's output capture, which hides what
/// a passing test prints; the test's line is also appended to the file `$BALD_SKIP_LOG` names,
/// if any.
pub fn skipped(what: &str) {
    static SAID: Mutex<Option<HashSet<String>>> = Mutex::new(None);
    let mut said = SAID.lock().unwrap_or_else(|p| p.into_inner());
    let said = said.get_or_insert_with(HashSet::new);
    let mut err = std::io::stderr().lock();
    if said.is_empty() {
        let _ = writeln!(err, "skipped (why): {what}");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if said.insert(test.clone()) {
        let _ = writeln!(err, "skipped: {test}");
        if let Some(path) = std::env::var_os("BALD_SKIP_LOG") {
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path);
            if let Ok(mut log) = log {
                let _ = writeln!(log, "{test}: {what}");
            }
        }
    }
}
