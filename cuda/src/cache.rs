//! The on-disk cache of compiled modules, so that NVRTC runs once per source, architecture and
//! NVRTC version rather than once per process.
//!
//! - Folder: `$BALD_KERNEL_CACHE` when set (empty: no cache), else `bald/kernels` in the user's
//!   cache folder (`$XDG_CACHE_HOME` or `~/.cache` on Linux).
//! - One file per entry, named by the SHA-256 of its key (source hash, architecture, NVRTC
//!   version, image kind). The file repeats the key and carries the image's length and SHA-256:
//!   an entry that is truncated, corrupt or made for another key is ignored (and removed),
//!   never loaded.
//! - Written atomically: a temporary file in the same folder, renamed into place.

use std::fs;
use std::io::Write;
use std::path::PathBuf;

use sha2::{Digest, Sha256};

/// The environment variable that overrides the cache folder (empty: no cache).
pub const KERNEL_CACHE_ENV: &str = "BALD_KERNEL_CACHE";

/// The first line of every entry (format version 1).
const MAGIC: &[u8] = b"bald kernel cache v1\n";

/// Which image of a module an entry holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// The device's own machine code.
    Cubin,
    /// PTX, compiled by the driver at load.
    Ptx,
}

/// What identifies a compiled image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CacheKey(String);

impl CacheKey {
    pub(crate) fn new(source: &str, arch: &str, nvrtc: (i32, i32), kind: ImageKind) -> Self {
        let source_hash = hex(&Sha256::digest(source.as_bytes()));
        CacheKey(format!(
            "source {source_hash} arch {arch} nvrtc {}.{} image {kind:?}",
            nvrtc.0, nvrtc.1
        ))
    }

    fn file_name(&self) -> String {
        format!("{}.bin", hex(&Sha256::digest(self.0.as_bytes())))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A cache folder.
#[derive(Debug, Clone)]
pub(crate) struct KernelCache {
    dir: PathBuf,
}

impl KernelCache {
    /// The folder `$BALD_KERNEL_CACHE` names, else the user's cache folder; `None` when the
    /// variable is set empty or no cache folder is known.
    pub(crate) fn from_env() -> Option<Self> {
        let dir = match std::env::var_os(KERNEL_CACHE_ENV) {
            Some(v) if v.is_empty() => return None,
            Some(v) => PathBuf::from(v),
            None => dirs::cache_dir()?.join("bald").join("kernels"),
        };
        Some(KernelCache { dir })
    }

    /// The cache in `dir`.
    pub(crate) fn at(dir: impl Into<PathBuf>) -> Self {
        KernelCache { dir: dir.into() }
    }

    /// The image stored under `key`, if a whole, matching entry is there.
    pub(crate) fn get(&self, key: &CacheKey) -> Option<Vec<u8>> {
        let path = self.dir.join(key.file_name());
        let bytes = fs::read(&path).ok()?;
        let image = parse(&bytes, key);
        if image.is_none() {
            // Corrupt or foreign: never loaded, and replaced by the next put.
            let _ = fs::remove_file(&path);
        }
        image
    }

    /// Stores `image` under `key`. Failures (a read-only folder, a full disk) only mean the
    /// next process compiles again, so they are ignored.
    pub(crate) fn put(&self, key: &CacheKey, image: &[u8]) {
        let _ = self.try_put(key, image);
    }

    fn try_put(&self, key: &CacheKey, image: &[u8]) -> std::io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        let mut entry = Vec::with_capacity(MAGIC.len() + key.0.len() + 41 + image.len());
        entry.extend_from_slice(MAGIC);
        entry.extend_from_slice(key.0.as_bytes());
        entry.push(b'\n');
        entry.extend_from_slice(&(image.len() as u64).to_le_bytes());
        entry.extend_from_slice(&Sha256::digest(image));
        entry.extend_from_slice(image);
        let tmp = self.dir.join(format!(
            ".{}.tmp-{}-{:?}",
            key.file_name(),
            std::process::id(),
            std::thread::current().id()
        ));
        let written = fs::File::create(&tmp).and_then(|mut f| {
            f.write_all(&entry)?;
            f.sync_all()
        });
        match written.and_then(|()| fs::rename(&tmp, self.dir.join(key.file_name()))) {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Removes the entry under `key` (one the driver refused).
    pub(crate) fn remove(&self, key: &CacheKey) {
        let _ = fs::remove_file(self.dir.join(key.file_name()));
    }
}

/// The image of an entry, if it is whole and made for `key`.
fn parse(bytes: &[u8], key: &CacheKey) -> Option<Vec<u8>> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let rest = rest.strip_prefix(key.0.as_bytes())?;
    let rest = rest.strip_prefix(b"\n")?;
    let (len, rest) = rest.split_first_chunk::<8>()?;
    let (digest, image) = rest.split_first_chunk::<32>()?;
    let len_ok = usize::try_from(u64::from_le_bytes(*len)).ok()? == image.len();
    (len_ok && Sha256::digest(image).as_slice() == digest).then(|| image.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(arch: &str) -> CacheKey {
        CacheKey::new(
            "extern \"C\" __global__ void k() {}",
            arch,
            (13, 0),
            ImageKind::Cubin,
        )
    }

    #[test]
    fn round_trip_and_keys_differ_by_every_field() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::at(dir.path());
        let image = b"\x7fELF image bytes".to_vec();
        assert_eq!(cache.get(&key("sm_90")), None);
        cache.put(&key("sm_90"), &image);
        assert_eq!(cache.get(&key("sm_90")), Some(image.clone()));
        assert_eq!(cache.get(&key("sm_80")), None);
        let src = "extern \"C\" __global__ void k() {}";
        let others = [
            CacheKey::new("other source", "sm_90", (13, 0), ImageKind::Cubin),
            CacheKey::new(src, "sm_90", (13, 2), ImageKind::Cubin),
            CacheKey::new(src, "sm_90", (13, 0), ImageKind::Ptx),
        ];
        for other in &others {
            assert_ne!(other.file_name(), key("sm_90").file_name());
            assert_eq!(cache.get(other), None);
        }
        // Only the entry, no temporary files, is left.
        let names: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn corrupt_truncated_and_foreign_entries_are_ignored_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = KernelCache::at(dir.path());
        let image = vec![7u8; 1000];
        let path = dir.path().join(key("sm_90").file_name());
        type Spoil = fn(&mut Vec<u8>);
        let damage: [(&str, Spoil); 5] = [
            ("a flipped byte in the image", |b| {
                let last = b.len() - 1;
                b[last] ^= 1;
            }),
            ("truncated", |b| b.truncate(b.len() - 10)),
            ("extended", |b| b.push(0)),
            ("a flipped byte in the header", |b| b[3] ^= 0x20),
            ("empty", |b| b.clear()),
        ];
        for (what, spoil) in damage {
            cache.put(&key("sm_90"), &image);
            let mut bytes = fs::read(&path).unwrap();
            spoil(&mut bytes);
            fs::write(&path, &bytes).unwrap();
            assert_eq!(cache.get(&key("sm_90")), None, "{what}");
            assert!(!path.exists(), "{what}: the entry is removed");
        }
        // An entry for another key, renamed into this key's file, is foreign.
        cache.put(&key("sm_80"), &image);
        fs::rename(dir.path().join(key("sm_80").file_name()), &path).unwrap();
        assert_eq!(cache.get(&key("sm_90")), None);
        // A folder that cannot be created means no caching, not an error.
        let blocked = KernelCache::at(path.join("under-a-file"));
        fs::write(&path, b"a file").unwrap();
        blocked.put(&key("sm_90"), &image);
        assert_eq!(blocked.get(&key("sm_90")), None);
    }
}
