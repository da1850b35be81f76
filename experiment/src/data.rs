//! Images and labels in IDX format (the embedded MNIST-5k, or a user's files), their repeated
//! form (Repeated-MNIST), and the experiment's splits.

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::rng::Rng;

/// MNIST-5k: 5000 images (500 per class) in the original IDX layout, gzip (provenance in
/// `experiment/data/README.md`).
const MNIST5K_IMAGES: &[u8] = include_bytes!("../data/mnist5k-images-idx3-ubyte.gz");
const MNIST5K_LABELS: &[u8] = include_bytes!("../data/mnist5k-labels-idx1-ubyte.gz");

/// Normalisation of torchvision's MNIST examples: (x / 255 - mean) / std.
const MEAN: f32 = 0.1307;
const STD: f32 = 0.3081;

/// Images as normalised f32 rows and their labels 0..classes.
#[derive(Debug, Clone)]
pub struct Dataset {
    /// Row-major N x dim features.
    pub x: Vec<f32>,
    /// N labels.
    pub y: Vec<u8>,
    /// Features per image (rows x cols).
    pub dim: usize,
    /// Classes: one more than the largest label.
    pub classes: usize,
    /// Image rows and columns.
    pub rows_cols: (usize, usize),
}

impl Dataset {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.y.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.y.is_empty()
    }

    /// Image `i`'s features.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.x[i * self.dim..(i + 1) * self.dim]
    }
}

/// The embedded MNIST-5k.
pub fn embedded() -> Result<Dataset, String> {
    from_idx(MNIST5K_IMAGES, MNIST5K_LABELS)
}

/// The file names IDX data sets use for training images and labels: the original MNIST names,
/// Kaggle's (a dot before `idx`), each plain or `.gz`.
const IMAGE_NAMES: [&str; 2] = ["train-images-idx3-ubyte", "train-images.idx3-ubyte"];

/// The same for the test set.
const TEST_IMAGE_NAMES: [&str; 2] = ["t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"];

/// The first of `names` (each plain or `.gz`) that is a file in `dir`.
fn find(dir: &Path, names: &[&str]) -> Option<PathBuf> {
    names
        .iter()
        .flat_map(|n| [n.to_string(), format!("{n}.gz")])
        .map(|n| dir.join(n))
        .find(|p| p.is_file())
}

/// A user's IDX data: `path` is a folder holding `train-images-idx3-ubyte` and
/// `train-labels-idx1-ubyte` (or Kaggle's `train-images.idx3-ubyte`, plain or `.gz`), or the
/// images file itself, with the labels file beside it (`images` replaced by `labels`,
/// `idx3` by `idx1`).
pub fn from_path(path: &Path) -> Result<Dataset, String> {
    if !path.exists() {
        return Err(format!("{}: no such file or folder", path.display()));
    }
    let images = if path.is_dir() {
        find(path, &IMAGE_NAMES).ok_or_else(|| {
            format!(
                "{}: no train-images-idx3-ubyte or train-images.idx3-ubyte (plain or .gz)",
                path.display()
            )
        })?
    } else {
        path.to_path_buf()
    };
    images_and_labels(&images)
}

/// The test set beside a user's training data (`path` as [`from_path`] takes it): the
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte` of MNIST (or Kaggle's
/// `t10k-images.idx3-ubyte`, plain or `.gz`) in the same folder, with the images file's path.
/// `None` when there is none.
pub fn test_set_beside(path: &Path) -> Result<Option<(Dataset, PathBuf)>, String> {
    let dir = match path.is_dir() {
        true => path,
        false => path.parent().unwrap_or(Path::new(".")),
    };
    find(dir, &TEST_IMAGE_NAMES)
        .map(|images| Ok((images_and_labels(&images)?, images)))
        .transpose()
}

/// The images file `images` and the labels file beside it.
fn images_and_labels(images: &Path) -> Result<Dataset, String> {
    let name = images
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let label_name = name.replace("images", "labels").replace("idx3", "idx1");
    if label_name == name {
        return Err(format!(
            "{}: cannot tell the labels file from this name (expected 'images' and 'idx3' in it)",
            images.display()
        ));
    }
    let labels = images.with_file_name(&label_name);
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("cannot read {}: {e}", p.display()));
    from_idx(&read(images)?, &read(&labels)?)
}

fn gunzip_if_needed(bytes: &[u8]) -> Result<Vec<u8>, String> {
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| format!("bad gzip data: {e}"))?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

fn be_u32(b: &[u8], at: usize) -> Result<usize, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
        .ok_or_else(|| "IDX file cut short in its header".to_string())
}

/// Parses IDX3 images (magic 0x803) and IDX1 labels (magic 0x801).
pub fn from_idx(images: &[u8], labels: &[u8]) -> Result<Dataset, String> {
    let images = gunzip_if_needed(images)?;
    let labels = gunzip_if_needed(labels)?;
    if be_u32(&images, 0)? != 0x803 || be_u32(&labels, 0)? != 0x801 {
        return Err("not IDX3 images / IDX1 labels (bad magic)".into());
    }
    let (n, rows, cols) = (
        be_u32(&images, 4)?,
        be_u32(&images, 8)?,
        be_u32(&images, 12)?,
    );
    let dim = rows.checked_mul(cols).ok_or("IDX image size overflows")?;
    let pixels = n.checked_mul(dim).ok_or("IDX image count overflows")?;
    if dim == 0 || n == 0 {
        return Err("the IDX data holds no images".into());
    }
    if images.len() != 16 + pixels || labels.len() != 8 + n || be_u32(&labels, 4)? != n {
        return Err("IDX sizes do not match their headers".into());
    }
    let y = labels[8..].to_vec();
    let classes = usize::from(y.iter().copied().max().unwrap_or(0)) + 1;
    if classes < 2 {
        return Err("the labels hold a single class: active learning needs two or more".into());
    }
    let x = images[16..]
        .iter()
        .map(|&p| (f32::from(p) / 255.0 - MEAN) / STD)
        .collect();
    Ok(Dataset {
        x,
        y,
        dim,
        classes,
        rows_cols: (rows, cols),
    })
}

/// What the model will be asked about, against what the pool holds: the EPIG paper's MNIST
/// set-ups (Bickford Smith et al. 2023, section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Setup {
    /// Test inputs, targets and pool from one distribution, every class balanced.
    #[default]
    Standard,
    /// The test and target distribution holds classes 1 and 7 only; the pool holds all.
    Redundant,
    /// The pool holds a tenth of its images of classes 0-4; test and targets are balanced.
    Unbalanced,
}

impl Setup {
    /// Every set-up.
    pub const ALL: [Setup; 3] = [Setup::Standard, Setup::Redundant, Setup::Unbalanced];

    /// The name, as the CLI spells it.
    pub fn name(self) -> &'static str {
        match self {
            Setup::Standard => "standard",
            Setup::Redundant => "redundant",
            Setup::Unbalanced => "unbalanced",
        }
    }

    /// One line on what it is.
    pub fn about(self) -> &'static str {
        match self {
            Setup::Standard => "test inputs, targets and pool from one balanced distribution",
            Setup::Redundant => {
                "test inputs and targets of classes 1 and 7 only, the pool of all classes"
            }
            Setup::Unbalanced => {
                "the pool with a tenth of its images of classes 0-4, test inputs and targets \
                 balanced"
            }
        }
    }

    /// Whether `class` is in the test and target distribution.
    pub fn is_target(self, class: usize) -> bool {
        match self {
            Setup::Redundant => class == 1 || class == 7,
            Setup::Standard | Setup::Unbalanced => true,
        }
    }

    /// Of `len` shuffled pool images of `class`, how many the pool keeps.
    fn pool_kept(self, class: usize, len: usize) -> usize {
        match self {
            Setup::Unbalanced if class < 5 => len.div_ceil(10),
            _ => len,
        }
    }

    /// The classes of data with `classes` that the set-up needs.
    pub fn check(self, classes: usize) -> Result<(), String> {
        match self {
            Setup::Redundant if classes < 8 => Err(format!(
                "--setup redundant tests on classes 1 and 7, and the data has {classes} classes"
            )),
            Setup::Unbalanced if classes < 6 => Err(format!(
                "--setup unbalanced thins classes 0-4 of the pool, and the data has {classes} \
                 classes: at least 6 are needed for a class it leaves whole"
            )),
            _ => Ok(()),
        }
    }
}

/// The experiment's splits of a dataset (indices into it).
#[derive(Debug, Clone)]
pub struct Splits {
    /// Balanced test set.
    pub test: Vec<usize>,
    /// Validation set (early stopping).
    pub validation: Vec<usize>,
    /// Initial labelled set (balanced).
    pub initial: Vec<usize>,
    /// The unlabelled pool.
    pub pool: Vec<usize>,
    /// Unlabelled inputs of the target distribution, held out of the pool, for EPIG's targets.
    pub targets: Vec<usize>,
}

/// How many images of each class the splits hold: test images (of the target classes),
/// validation, initial labels, and target inputs (of the target classes) per class, with the
/// set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SplitSizes {
    /// Test images per target class.
    pub test_per_class: usize,
    /// Validation images in all (balanced as far as it divides).
    pub validation: usize,
    /// Initial labels per class.
    pub initial_per_class: usize,
    /// Target inputs per target class, held out of the pool.
    pub targets_per_class: usize,
    /// The set-up.
    pub setup: Setup,
}

/// Splits drawn with `seed` in `sizes`: per class, its test images and target inputs when it
/// is a target class, its share of the validation images and its initial labels; the rest the
/// pool (thinned by the set-up).
pub fn split(data: &Dataset, seed: u64, sizes: SplitSizes) -> Result<Splits, String> {
    let SplitSizes {
        test_per_class,
        validation,
        initial_per_class,
        targets_per_class,
        setup,
    } = sizes;
    let mut rng = Rng::new(seed, 1);
    let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); data.classes];
    for (i, &l) in data.y.iter().enumerate() {
        by_class[usize::from(l)].push(i);
    }
    let val_per_class = validation.div_ceil(data.classes);
    let mut s = Splits {
        test: Vec::new(),
        validation: Vec::new(),
        initial: Vec::new(),
        pool: Vec::new(),
        targets: Vec::new(),
    };
    for (class, idx) in by_class.iter_mut().enumerate() {
        let (test_per_class, targets_per_class) = if setup.is_target(class) {
            (test_per_class, targets_per_class)
        } else {
            (0, 0)
        };
        let need = test_per_class + val_per_class + initial_per_class + targets_per_class;
        if idx.len() < need {
            return Err(format!(
                "class {class} has {} images, the splits need {need}",
                idx.len()
            ));
        }
        rng.shuffle(idx);
        s.test.extend_from_slice(&idx[..test_per_class]);
        s.validation
            .extend_from_slice(&idx[test_per_class..test_per_class + val_per_class]);
        s.initial.extend_from_slice(
            &idx[test_per_class + val_per_class
                ..test_per_class + val_per_class + initial_per_class],
        );
        s.targets
            .extend_from_slice(&idx[need - targets_per_class..need]);
        let rest = &idx[need..];
        s.pool
            .extend_from_slice(&rest[..setup.pool_kept(class, rest.len())]);
    }
    s.validation.truncate(validation);
    rng.shuffle(&mut s.pool);
    Ok(s)
}

/// Repeated-MNIST (Kirsch et al. 2019): the pool's images `r` times each, every copy with
/// Gaussian noise of std 0.1 (in the normalised space) so that copies are near duplicates.
/// Returns the extended dataset and the new pool (copies of the same image are adjacent).
pub fn repeat_pool(data: &Dataset, pool: &[usize], r: usize, seed: u64) -> (Dataset, Vec<usize>) {
    if r <= 1 {
        return (data.clone(), pool.to_vec());
    }
    let mut rng = Rng::new(seed, 2);
    let mut out = data.clone();
    let mut new_pool = Vec::with_capacity(pool.len() * r);
    for &i in pool {
        for _ in 0..r {
            new_pool.push(out.len());
            let row: Vec<f32> = data
                .row(i)
                .iter()
                .map(|&v| v + (0.1 * rng.normal()) as f32)
                .collect();
            out.x.extend_from_slice(&row);
            out.y.push(data.y[i]);
        }
    }
    (out, new_pool)
}
