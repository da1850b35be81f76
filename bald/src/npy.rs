//! A strict, bounded reader of NumPy `.npy` files (format versions 1, 2 and 3) holding f16, f32
//! or f64 arrays in C order, either byte order.
//!
//! Nothing is allocated for the data before the header's shape, times the element size, has been
//! checked against the bytes actually present, so a header that claims 10^12 elements is an
//! error, not an abort. Arbitrary bytes give a value or an [`NpyError`], never a panic.

use core::fmt;
use std::io::Read;

use bald_core::half::f16;

/// The element data of an array.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `<f2` / `>f2`.
    F16(Vec<f16>),
    /// `<f4` / `>f4`.
    F32(Vec<f32>),
    /// `<f8` / `>f8`.
    F64(Vec<f64>),
}

impl NpyData {
    /// The NumPy name of the element type.
    pub fn dtype(&self) -> &'static str {
        match self {
            NpyData::F16(_) => "float16",
            NpyData::F32(_) => "float32",
            NpyData::F64(_) => "float64",
        }
    }
}

/// A parsed `.npy` array.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// The shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// The elements in C (row-major) order.
    pub data: NpyData,
}

/// Why bytes are not a supported `.npy` array.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NpyError {
    /// The file does not start with `\x93NUMPY`.
    BadMagic,
    /// A format version other than 1.0, 2.0, 3.0.
    UnsupportedVersion(u8, u8),
    /// The header is cut short or is not the dictionary NumPy writes.
    BadHeader(String),
    /// An element type other than f16, f32, f64 (or, for index files, an integer type).
    UnsupportedDtype(String),
    /// Fortran (column-major) order.
    FortranOrder,
    /// The shape's element count overflows.
    TooLarge,
    /// The data is not exactly shape x element size bytes.
    SizeMismatch {
        /// Bytes the header's shape and type call for.
        expected: u128,
        /// Bytes present after the header.
        actual: u64,
    },
    /// Reading failed.
    Io(String),
}

impl fmt::Display for NpyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NpyError::BadMagic => write!(f, "not a .npy file (no \\x93NUMPY magic)"),
            NpyError::UnsupportedVersion(a, b) => write!(f, "unsupported .npy version {a}.{b}"),
            NpyError::BadHeader(why) => write!(f, "bad .npy header: {why}"),
            NpyError::UnsupportedDtype(d) => write!(
                f,
                "unsupported dtype '{d}' (expected float16, float32 or float64)"
            ),
            NpyError::FortranOrder => write!(f, "Fortran-order arrays are not supported"),
            NpyError::TooLarge => write!(f, "the header's shape has too many elements"),
            NpyError::SizeMismatch { expected, actual } => write!(
                f,
                "the header calls for {expected} data bytes but the file has {actual}"
            ),
            NpyError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for NpyError {}

/// A parsed `.npy` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The shape, outermost dimension first.
    pub shape: Vec<usize>,
    /// The type code without its byte-order mark: `f2`, `f4`, `i8`, `u1`, ...
    pub kind: String,
    /// Little-endian data (or single bytes).
    pub little: bool,
    /// Bytes per element.
    pub item: usize,
    /// Bytes before the data (magic, version, length and header text).
    pub data_offset: u64,
}

impl Header {
    /// Elements in the array.
    pub fn count(&self) -> Result<usize, NpyError> {
        self.shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or(NpyError::TooLarge)
    }
}

/// Reads and checks the header at the start of `reader` (a file of `len` bytes in all): the
/// data must be exactly the shape times the element size.
pub fn read_header(reader: &mut impl Read, len: u64) -> Result<Header, NpyError> {
    let mut pre = [0u8; 8];
    read_exact(reader, &mut pre, NpyError::BadMagic)?;
    if &pre[..6] != b"\x93NUMPY" {
        return Err(NpyError::BadMagic);
    }
    let (major, minor) = (pre[6], pre[7]);
    let (header_len, prefix) = match (major, minor) {
        (1, 0) => {
            let mut b = [0u8; 2];
            read_exact(reader, &mut b, short_header())?;
            (usize::from(u16::from_le_bytes(b)), 10u64)
        }
        (2, 0) | (3, 0) => {
            let mut b = [0u8; 4];
            read_exact(reader, &mut b, short_header())?;
            let l = usize::try_from(u32::from_le_bytes(b)).map_err(|_| NpyError::TooLarge)?;
            (l, 12u64)
        }
        _ => return Err(NpyError::UnsupportedVersion(major, minor)),
    };
    let data_offset = prefix + header_len as u64;
    if data_offset > len {
        return Err(short_header());
    }
    let mut text = vec![0u8; header_len];
    read_exact(reader, &mut text, short_header())?;
    let header =
        core::str::from_utf8(&text).map_err(|_| NpyError::BadHeader("not UTF-8".into()))?;
    let descr = string_value(header, "descr")?;
    match raw_value(header, "fortran_order")? {
        "False" => {}
        "True" => return Err(NpyError::FortranOrder),
        other => return Err(NpyError::BadHeader(format!("fortran_order is {other}"))),
    }
    let shape = shape_value(header)?;
    let (little, kind) = match descr.as_bytes() {
        [b'<' | b'=' | b'|', rest @ ..] => (true, rest),
        [b'>', rest @ ..] => (false, rest),
        _ => return Err(NpyError::UnsupportedDtype(descr.into())),
    };
    let kind = core::str::from_utf8(kind).unwrap_or_default().to_string();
    let item = match kind.as_bytes() {
        [b'f' | b'i' | b'u', d @ (b'1' | b'2' | b'4' | b'8')] => usize::from(d - b'0'),
        _ => return Err(NpyError::UnsupportedDtype(descr.into())),
    };
    let h = Header {
        shape,
        kind,
        little,
        item,
        data_offset,
    };
    let expected = h.count()? as u128 * item as u128;
    let actual = len - data_offset;
    if expected != u128::from(actual) {
        return Err(NpyError::SizeMismatch { expected, actual });
    }
    Ok(h)
}

fn short_header() -> NpyError {
    NpyError::BadHeader("file ends inside the header".into())
}

fn read_exact(reader: &mut impl Read, buf: &mut [u8], short: NpyError) -> Result<(), NpyError> {
    reader.read_exact(buf).map_err(|e| match e.kind() {
        std::io::ErrorKind::UnexpectedEof => short,
        _ => NpyError::Io(e.to_string()),
    })
}

/// Reads an f16, f32 or f64 array of `len` bytes in all from `reader`. The data is read
/// straight into the array's own memory (no second copy), so reading an N-byte array needs N
/// bytes; big-endian data is swapped in place.
pub fn read(reader: &mut impl Read, len: u64) -> Result<NpyArray, NpyError> {
    let h = read_header(reader, len)?;
    let count = h.count()?;
    let data = match h.kind.as_str() {
        "f2" => NpyData::F16(read_data(reader, count, h.little, |v: &mut f16| {
            *v = f16::from_bits(v.to_bits().swap_bytes())
        })?),
        "f4" => NpyData::F32(read_data(reader, count, h.little, |v: &mut f32| {
            *v = f32::from_bits(v.to_bits().swap_bytes())
        })?),
        "f8" => NpyData::F64(read_data(reader, count, h.little, |v: &mut f64| {
            *v = f64::from_bits(v.to_bits().swap_bytes())
        })?),
        _ => return Err(NpyError::UnsupportedDtype(dtype_name(&h))),
    };
    Ok(NpyArray {
        shape: h.shape,
        data,
    })
}

/// `count` elements read into a new vector, swapped with `swap` when the file's byte order is
/// not the machine's.
fn read_data<T: bytemuck::Pod>(
    reader: &mut impl Read,
    count: usize,
    little: bool,
    swap: impl Fn(&mut T),
) -> Result<Vec<T>, NpyError> {
    let mut v = vec![T::zeroed(); count];
    read_exact(
        reader,
        bytemuck::cast_slice_mut(&mut v),
        NpyError::Io("the file ended early".into()),
    )?;
    if little != cfg!(target_endian = "little") {
        v.iter_mut().for_each(swap);
    }
    Ok(v)
}

fn dtype_name(h: &Header) -> String {
    format!("{}{}", if h.little { '<' } else { '>' }, h.kind)
}

/// Parses a whole `.npy` file held in memory.
pub fn parse(bytes: &[u8]) -> Result<NpyArray, NpyError> {
    read(&mut &bytes[..], bytes.len() as u64)
}

/// Reads a `.npy` file of pool indices: a 1-d (or 0-d) array of any integer type, or of floats
/// holding whole numbers. Negative or fractional values are errors.
pub fn parse_indices(bytes: &[u8]) -> Result<Vec<usize>, String> {
    let mut reader = bytes;
    let h = read_header(&mut reader, bytes.len() as u64).map_err(|e| e.to_string())?;
    if h.shape.len() > 1 {
        return Err(format!(
            "expected a 1-d array of indices, got shape {:?}",
            h.shape
        ));
    }
    let signed = h.kind.starts_with('i');
    let float = h.kind.starts_with('f');
    reader
        .chunks_exact(h.item)
        .map(|b| {
            let mut w = [0u8; 8];
            if h.little {
                w[..h.item].copy_from_slice(b);
            } else {
                w[..h.item]
                    .iter_mut()
                    .zip(b.iter().rev())
                    .for_each(|(o, i)| *o = *i);
            }
            let bits = u64::from_le_bytes(w);
            let value: f64 = if float {
                match h.item {
                    2 => f16::from_bits(bits as u16).to_f64(),
                    4 => f64::from(f32::from_bits(bits as u32)),
                    _ => f64::from_bits(bits),
                }
            } else if signed {
                let shift = 64 - 8 * h.item as u32;
                (((bits << shift) as i64) >> shift) as f64
            } else {
                bits as f64
            };
            if !(value >= 0.0 && value.fract() == 0.0 && value < 2f64.powi(63)) {
                return Err(format!("{} is not a pool index", bald_core::Plain(value)));
            }
            usize::try_from(value as u64).map_err(|_| format!("{value} is too large"))
        })
        .collect()
}

/// Writes a C-order little-endian `.npy` (version 1.0) of `shape`: the inverse of [`parse`].
pub fn write(shape: &[usize], data: &NpyData) -> Vec<u8> {
    let (descr, bytes): (&str, Vec<u8>) = match data {
        NpyData::F16(v) => (
            "<f2",
            v.iter().flat_map(|x| x.to_bits().to_le_bytes()).collect(),
        ),
        NpyData::F32(v) => ("<f4", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        NpyData::F64(v) => ("<f8", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    };
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
    // Pad with spaces so that the data starts on a 64-byte boundary, newline last.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(&bytes);
    out
}

/// The text after `'key':` up to the next `,` or `}` at depth 0 (trimmed).
fn raw_value<'h>(header: &'h str, key: &str) -> Result<&'h str, NpyError> {
    let pat = format!("'{key}':");
    let at = header
        .find(&pat)
        .ok_or_else(|| NpyError::BadHeader(format!("no '{key}' key")))?;
    let rest = header[at + pat.len()..].trim_start();
    let mut depth = 0i32;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' | '}' if depth == 0 => return Ok(rest[..i].trim()),
            _ => {}
        }
    }
    Err(NpyError::BadHeader(format!("'{key}' has no end")))
}

fn string_value<'h>(header: &'h str, key: &str) -> Result<&'h str, NpyError> {
    let raw = raw_value(header, key)?;
    raw.strip_prefix('\'')
        .and_then(|r| r.strip_suffix('\''))
        .ok_or_else(|| NpyError::BadHeader(format!("'{key}' is not a string")))
}

fn shape_value(header: &str) -> Result<Vec<usize>, NpyError> {
    let raw = raw_value(header, "shape")?;
    let inner = raw
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .ok_or_else(|| NpyError::BadHeader("'shape' is not a tuple".into()))?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim_end_matches('L')
                .parse::<usize>()
                .map_err(|_| NpyError::BadHeader(format!("bad dimension '{s}'")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_bytes(d: &NpyData) -> usize {
        match d {
            NpyData::F16(v) => 2 * v.len(),
            NpyData::F32(v) => 4 * v.len(),
            NpyData::F64(v) => 8 * v.len(),
        }
    }

    #[test]
    fn round_trips_every_dtype() {
        for data in [
            NpyData::F16(vec![
                f16::from_f32(-0.5),
                f16::from_f32(2.0),
                f16::NEG_INFINITY,
            ]),
            NpyData::F32(vec![-0.5, 1.5, f32::NEG_INFINITY]),
            NpyData::F64(vec![-0.25, 1e-300, f64::NEG_INFINITY]),
        ] {
            let bytes = write(&[1, 3, 1], &data);
            assert_eq!((bytes.len() - data_bytes(&data)) % 64, 0);
            let a = parse(&bytes).unwrap();
            assert_eq!(a.shape, vec![1, 3, 1]);
            assert_eq!(a.data, data);
        }
    }

    /// A version-1.0 file with this header text and data.
    fn file(header: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    fn header(descr: &str, fortran: &str, shape: &str) -> String {
        format!("{{'descr': '{descr}', 'fortran_order': {fortran}, 'shape': {shape}, }}\n")
    }

    #[test]
    fn reads_numpy_headers_and_big_endian() {
        let mut data = 1.5f32.to_be_bytes().to_vec();
        data.extend_from_slice(&(-2.0f32).to_be_bytes());
        let a = parse(&file(&header(">f4", "False", "(2,)"), &data)).unwrap();
        assert_eq!(a.shape, vec![2]);
        assert_eq!(a.data, NpyData::F32(vec![1.5, -2.0]));
        let scalar = parse(&file(&header("<f8", "False", "()"), &[0; 8])).unwrap();
        assert_eq!(scalar.shape, Vec::<usize>::new());
    }

    #[test]
    fn refuses_bad_files_with_typed_errors() {
        assert_eq!(parse(b"PK\x03\x04"), Err(NpyError::BadMagic));
        assert_eq!(
            parse(b"\x93NUMPY\x09\x00"),
            Err(NpyError::UnsupportedVersion(9, 0))
        );
        let good = write(&[2, 2], &NpyData::F32(vec![0.0; 4]));
        assert!(matches!(
            parse(&good[..good.len() - 1]),
            Err(NpyError::SizeMismatch { .. })
        ));
        assert!(matches!(parse(&good[..20]), Err(NpyError::BadHeader(_))));
        let huge = file(&header("<f4", "False", "(1000000, 1000000)"), &[0; 16]);
        assert_eq!(
            parse(&huge),
            Err(NpyError::SizeMismatch {
                expected: 4_000_000_000_000,
                actual: 16
            })
        );
        let overflow = file(&header("<f4", "False", "(99999999999, 99999999999)"), &[]);
        assert_eq!(parse(&overflow), Err(NpyError::TooLarge));
        let ints = file(&header("<i4", "False", "(2,)"), &[0; 8]);
        assert!(matches!(parse(&ints), Err(NpyError::UnsupportedDtype(_))));
        let fortran = file(&header("<f4", "True", "(2,)"), &[0; 8]);
        assert_eq!(parse(&fortran), Err(NpyError::FortranOrder));
        let no_shape = file("{'descr': '<f4', 'fortran_order': False}\n", &[]);
        assert!(matches!(parse(&no_shape), Err(NpyError::BadHeader(_))));
    }
}
