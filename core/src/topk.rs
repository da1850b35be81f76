//! Deterministic top-k selection without allocation.

use core::cmp::Ordering;

/// Orders candidates best first: higher score first, ties to the lower index. NaN (which valid
/// input never produces) ranks below every number, `-inf` included.
#[inline]
pub fn better_first(scores: &[f64], a: usize, b: usize) -> Ordering {
    let key = |i: usize| {
        let s = scores[i];
        (!s.is_nan(), if s.is_nan() { 0.0 } else { s })
    };
    let (va, sa) = key(a);
    let (vb, sb) = key(b);
    vb.cmp(&va)
        .then(sb.partial_cmp(&sa).unwrap_or(Ordering::Equal))
        .then(a.cmp(&b))
}

/// Writes the indices of the `min(k, scores.len())` best scores into `out[..k']`, best first
/// (ties to the lower index), and returns that prefix. O(N log k) time, no allocation.
///
/// `out` must hold at least `min(k, scores.len())` entries.
pub fn top_k<'o>(
    scores: &[f64],
    k: usize,
    out: &'o mut [usize],
) -> Result<&'o [usize], crate::Error> {
    let k = k.min(scores.len());
    crate::error::check_at_least("out", k, out.len())?;
    let heap = &mut out[..k];
    if k == 0 {
        return Ok(heap);
    }
    // A heap whose root is the worst of the k kept so far.
    let worse_than = |a: usize, b: usize| better_first(scores, a, b) == Ordering::Greater;
    for (len, i) in (0..k).enumerate() {
        heap[len] = i;
        sift_up(heap, len, &worse_than);
    }
    for i in k..scores.len() {
        if worse_than(heap[0], i) {
            heap[0] = i;
            sift_down(heap, 0, k, &worse_than);
        }
    }
    // Heap sort in place: repeatedly move the worst to the end.
    for end in (1..k).rev() {
        heap.swap(0, end);
        sift_down(heap, 0, end, &worse_than);
    }
    Ok(heap)
}

/// The index of the best score (ties to the lower index), or `None` for an empty slice.
pub fn argmax(scores: &[f64]) -> Option<usize> {
    (0..scores.len()).reduce(|b, i| {
        if better_first(scores, i, b) == Ordering::Less {
            i
        } else {
            b
        }
    })
}

fn sift_up(heap: &mut [usize], mut i: usize, worse_than: &impl Fn(usize, usize) -> bool) {
    while i > 0 {
        let parent = (i - 1) / 2;
        if worse_than(heap[i], heap[parent]) {
            heap.swap(i, parent);
            i = parent;
        } else {
            break;
        }
    }
}

fn sift_down(
    heap: &mut [usize],
    mut i: usize,
    len: usize,
    worse_than: &impl Fn(usize, usize) -> bool,
) {
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut worst = i;
        if l < len && worse_than(heap[l], heap[worst]) {
            worst = l;
        }
        if r < len && worse_than(heap[r], heap[worst]) {
            worst = r;
        }
        if worst == i {
            return;
        }
        heap.swap(i, worst);
        i = worst;
    }
}
