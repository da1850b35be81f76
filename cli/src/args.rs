//! The arguments both commands share, parsed into the `bald` crate's types: one list of names,
//! the library's.

use std::path::Path;

use bald::{Device, Greedy, InputKind, Kind, Layout, PastLimit};
use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};

/// A value parser for one of `values` (name, help), parsed by `parse`: clap lists the names
/// and their help in `--help`, and suggests a close one for a typo.
pub fn one_of<T: Clone + Send + Sync + 'static>(
    values: impl IntoIterator<Item = (&'static str, &'static str)>,
    parse: fn(&str) -> Result<T, String>,
) -> impl TypedValueParser<Value = T> {
    PossibleValuesParser::new(
        values
            .into_iter()
            .map(|(name, about)| PossibleValue::new(name).help(about)),
    )
    .try_map(move |s| parse(&s))
}

/// `--input-kind`.
pub fn input_kind() -> impl TypedValueParser<Value = InputKind> {
    one_of(InputKind::ALL.map(|k| (k.name(), k.about())), |s| s.parse())
}

/// `--layout`.
pub fn layout() -> impl TypedValueParser<Value = Layout> {
    one_of(Layout::ALL.map(|l| (l.name(), l.about())), |s| s.parse())
}

/// `--strategy`.
pub fn strategy() -> impl TypedValueParser<Value = Kind> {
    one_of(Kind::ALL.map(|k| (k.name(), k.about())), |s| s.parse())
}

/// `--greedy`.
pub fn greedy() -> impl TypedValueParser<Value = Greedy> {
    one_of(
        [
            (
                "lazy",
                "candidates in decreasing order of a bound on their gain until the best is \
                 certain (the same picks as full in the exact regime, far fewer evaluations)",
            ),
            ("full", "every candidate at every step"),
        ],
        bald::greedy_named,
    )
}

/// `--past-limit`.
pub fn past_limit() -> impl TypedValueParser<Value = PastLimit> {
    one_of(PastLimit::ALL.map(|p| (p.name(), p.about())), |s| s.parse())
}

/// `--backend`.
pub fn backend() -> impl TypedValueParser<Value = Device> {
    one_of(Device::NAMES.map(|n| (n, Device::about(n))), |s| s.parse())
}

/// A count argument: a whole number >= 0 (a negative one is a range error, not a flag).
pub fn count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<i128>() {
        Ok(v) if v < 0 => Err(format!("must be 0 or more, not {v}")),
        Ok(v) => usize::try_from(v).map_err(|_| format!("{v} is too large")),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

/// A finite number >= 0.
pub fn non_negative(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        Ok(v) => Err(format!(
            "must be finite and 0 or more, not {}",
            bald_core::Plain(v)
        )),
        Err(_) => Err(format!("'{s}' is not a number")),
    }
}

/// Checks before any work that `path` can be written (its folder exists and takes a file), so
/// that a long run does not fail at its end.
pub fn check_writable(path: &Path, what: &str) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("{what} {}: {e}", path.display());
    if path.is_dir() {
        return Err(fail(&"is a folder"));
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path.file_name().ok_or_else(|| fail(&"not a file name"))?;
    let probe = dir.join(format!(
        ".{}.check-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    std::fs::File::create(&probe).map_err(|e| fail(&e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Writes `bytes` to `path` whole or not at all: a temporary file beside it, then a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| format!("{}: not a file name", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let fail = |e: std::io::Error| format!("cannot write {}: {e}", path.display());
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot write {}: {e}", path.display())
    })
}
