//! Writing a batch of rows with few statements.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

/// One row per key, for a multi-row upsert: PostgreSQL refuses an
/// `ON CONFLICT DO UPDATE` that touches the same row twice in one
/// statement, while a batch may write a key several times (the last write
/// wins). `merge(earlier, later)` gives what applying both in order would
/// store; the merged row keeps the first occurrence's place.
pub fn merge_duplicates<T, K: std::hash::Hash + Eq>(
    rows: Vec<T>,
    key: impl Fn(&T) -> K,
    merge: impl Fn(T, T) -> T,
) -> Vec<T> {
    let mut at: HashMap<K, usize> = HashMap::with_capacity(rows.len());
    let mut out: Vec<Option<T>> = Vec::with_capacity(rows.len());
    for row in rows {
        match at.entry(key(&row)) {
            Entry::Occupied(i) => {
                let slot = &mut out[*i.get()];
                let earlier = slot.take().expect("filled");
                *slot = Some(merge(earlier, row));
            }
            Entry::Vacant(v) => {
                v.insert(out.len());
                out.push(Some(row));
            }
        }
    }
    out.into_iter().flatten().collect()
}

/// Rows per multi-row `INSERT … VALUES (…), (…) …` statement, descending,
/// ending with 1: a batch of n rows takes n / 256 statements plus at most
/// three of each smaller size, so that few statements run while the set of
/// distinct SQL texts (each a prepared statement the driver caches per
/// connection) stays at five per table. Multi-row statements made SQLite's
/// event appends 2.5–4× faster than one statement per row; 256 rows of the
/// widest table (14 columns) stay far below the parameter limits of SQLite
/// (32 766) and PostgreSQL (65 535).
pub const CHUNK_SIZES: &[usize] = &[256, 64, 16, 4, 1];

/// The next statement of a batch with `left` rows still to write: the index
/// in [`CHUNK_SIZES`] of the largest size that fits, and that size.
pub fn next_chunk(left: usize) -> (usize, usize) {
    CHUNK_SIZES
        .iter()
        .copied()
        .enumerate()
        .find(|&(_, n)| n <= left)
        .expect("sizes end with 1")
}
