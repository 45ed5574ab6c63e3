//! Blocks: the served bytes of entries that are neighbours in list order, laid end to end in one allocation
//! with `,` between them, so that a page of a list is one or two slices of memory rather than a hundred
//! pieces apart (the kernel's copy of a page then reads one stretch, as it would a body built for it).
//!
//! A full build packs the entries it derived anew ([`pack`]); an entry then holds its bytes as a slice of
//! its [`Block`] and the block itself, which is how a list body knows two neighbours are adjacent
//! ([`span`]). Entries shared with the previous version keep the block they were packed into. A block
//! lives as long as one of its entries does, so a build re-packs the entries of a block whose dead bytes
//! (entries since replaced or removed) passed [`COMPACT_DEAD_BYTES`]: no block holds more than that of
//! bytes nobody serves. Entries derived by a write stay in allocations of their own until the next build.
//!
//! This file knows entries only as bytes; it does not know what they mean.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;

use super::Entry;

/// Size a block is cut at (an entry larger than this is a block of its own, or is left alone).
pub const BLOCK_BYTES: usize = 1 << 20;

/// A block whose entries no longer serve this many of its bytes is packed again by the next build.
pub const COMPACT_DEAD_BYTES: usize = BLOCK_BYTES / 4;

/// Bytes of several entries, `,` between each and the next.
pub struct Block(Bytes);

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Block({} bytes)", self.0.len())
    }
}

impl Block {
    /// Where `e`'s bytes begin in this block, if they lie in it.
    fn offset_of(&self, e: &Entry) -> Option<usize> {
        let base = self.0.as_ptr() as usize;
        let at = (e.bytes.as_ptr() as usize).checked_sub(base)?;
        (at + e.bytes.len() <= self.0.len()).then_some(at)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// Whether `next` directly follows `prev` in a block, one byte after it: then their bytes, and the
/// `,` [`fill`] wrote between them (a block is never written again), are one slice ([`span`]). Only
/// addresses are compared; the block's bytes are not read, so a list body cut from a page does not
/// wait on memory the kernel's copy reads anyway.
pub fn adjacent(prev: &Entry, next: &Entry) -> bool {
    match (&prev.block, &next.block) {
        (Some(a), Some(b)) if Arc::ptr_eq(a, b) => match (a.offset_of(prev), a.offset_of(next)) {
            (Some(p), Some(n)) => n == p + prev.bytes.len() + 1,
            _ => false,
        },
        _ => false,
    }
}

/// The bytes from `first`'s start to `last`'s end, when both lie in one block (`first` before `last`):
/// the resources between them and their commas, as served. `None` otherwise.
pub fn span<'a>(first: &'a Entry, last: &Entry) -> Option<&'a [u8]> {
    let block = first.block.as_ref()?;
    if !last.block.as_ref().is_some_and(|b| Arc::ptr_eq(b, block)) {
        return None;
    }
    let start = block.offset_of(first)?;
    let end = block.offset_of(last)? + last.bytes.len();
    block.0.get(start..end)
}

/// For each entry of `list`, the index of the last entry of the stretch of neighbours it begins: itself
/// when its successor is not its neighbour.
pub fn stretch_ends(list: &[Arc<Entry>]) -> Arc<[u32]> {
    let mut ends = vec![0u32; list.len()];
    for i in (0..list.len()).rev() {
        ends[i] = match list.get(i + 1) {
            Some(next) if adjacent(&list[i], next) => ends[i + 1],
            _ => u32::try_from(i).unwrap_or(u32::MAX),
        };
    }
    ends.into()
}

/// Pack `entries` (in list order): every maximal stretch of neighbours this build owns alone (derived
/// anew, or re-homed from a block with too many dead bytes) becomes blocks of at most [`BLOCK_BYTES`].
/// Entries shared with another version are left as they are.
pub fn pack(entries: &mut [Arc<Entry>]) {
    rehome_sparse(entries);
    let mut i = 0;
    while i < entries.len() {
        // A stretch of owned entries up to the block size.
        let mut j = i;
        let mut len = 0usize;
        while j < entries.len() && Arc::get_mut(&mut entries[j]).is_some() {
            let more = entries[j].bytes.len() + usize::from(j > i);
            if j > i && len + more > BLOCK_BYTES {
                break;
            }
            len += more;
            j += 1;
        }
        if j - i >= 2 {
            fill(&mut entries[i..j], len);
        }
        i = j.max(i + 1);
    }
}

/// Lay `entries` (each owned alone) end to end in one new block.
fn fill(entries: &mut [Arc<Entry>], len: usize) {
    let mut buf = Vec::with_capacity(len);
    let mut ranges = Vec::with_capacity(entries.len());
    for (k, e) in entries.iter().enumerate() {
        if k > 0 {
            buf.push(b',');
        }
        ranges.push(buf.len()..buf.len() + e.bytes.len());
        buf.extend_from_slice(&e.bytes);
    }
    let bytes = Bytes::from(buf);
    let block = Arc::new(Block(bytes.clone()));
    for (e, r) in entries.iter_mut().zip(ranges) {
        if let Some(e) = Arc::get_mut(e) {
            e.bytes = bytes.slice(r);
            e.block = Some(block.clone());
        }
    }
}

/// Entries whose block has more than [`COMPACT_DEAD_BYTES`] not served by `entries` are replaced by
/// copies owned alone (same content, same times), for [`pack`] to lay out again.
fn rehome_sparse(entries: &mut [Arc<Entry>]) {
    let mut live: HashMap<*const Block, (usize, usize)> = HashMap::new();
    for e in entries.iter() {
        if let Some(b) = &e.block {
            let slot = live.entry(Arc::as_ptr(b)).or_insert((b.len(), 0));
            slot.1 += e.bytes.len() + 1;
        }
    }
    let sparse = |b: &Arc<Block>| {
        live.get(&Arc::as_ptr(b))
            .is_some_and(|(len, used)| len.saturating_sub(*used) > COMPACT_DEAD_BYTES)
    };
    for e in entries.iter_mut() {
        if e.block.as_ref().is_some_and(sparse) {
            *e = Arc::new(e.unpacked());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::snapshot::Seen;
    use crate::scim::ResourceKind;
    use jiff::Timestamp;

    fn entry(i: usize, size: usize) -> Arc<Entry> {
        let id = format!("u{i:05}");
        let pad = "x".repeat(size.saturating_sub(id.len() + 10));
        let bytes = Bytes::from(format!(r#"{{"id":"{id}","p":"{pad}"}}"#));
        let seen = Seen {
            hash: [i as u8; 16],
            created: Timestamp::UNIX_EPOCH,
            last_modified: Timestamp::UNIX_EPOCH,
        };
        Arc::new(Entry::restored(
            id.as_str().into(),
            ResourceKind::User,
            None,
            bytes,
            None,
            seen,
        ))
    }

    fn served(entries: &[Arc<Entry>]) -> Vec<Vec<u8>> {
        entries.iter().map(|e| e.bytes.to_vec()).collect()
    }

    #[test]
    fn neighbours_packed_together_are_one_slice_with_their_commas() {
        let mut all: Vec<_> = (0..10).map(|i| entry(i, 200)).collect();
        let before = served(&all);
        pack(&mut all);
        assert_eq!(served(&all), before, "packing changes no entry's bytes");
        assert!(all.windows(2).all(|w| adjacent(&w[0], &w[1])));
        let block = all[0].block.as_ref().unwrap();
        assert_eq!(
            block.0.iter().filter(|&&b| b == b',').count()
                - before
                    .iter()
                    .map(|b| b.iter().filter(|&&c| c == b',').count())
                    .sum::<usize>(),
            9,
            "one comma between each two"
        );
        let joined: Vec<u8> = before.join(&b","[..]);
        assert_eq!(span(&all[0], &all[9]).unwrap(), &joined[..]);
        assert_eq!(span(&all[3], &all[3]).unwrap(), &before[3][..]);
    }

    #[test]
    fn shared_entries_are_left_where_they_are_and_break_the_stretch() {
        let mut all: Vec<_> = (0..6).map(|i| entry(i, 100)).collect();
        let kept = all[2].clone();
        pack(&mut all);
        assert!(
            Arc::ptr_eq(&all[2], &kept),
            "an entry another version holds is not touched"
        );
        assert!(all[2].block.is_none());
        assert!(adjacent(&all[0], &all[1]));
        assert!(!adjacent(&all[1], &all[2]) && !adjacent(&all[2], &all[3]));
        assert!(adjacent(&all[3], &all[4]) && adjacent(&all[4], &all[5]));
        assert!(
            span(&all[1], &all[3]).is_none(),
            "different blocks are no slice"
        );
    }

    #[test]
    fn an_entry_removed_between_two_neighbours_makes_them_apart() {
        let mut all: Vec<_> = (0..5).map(|i| entry(i, 100)).collect();
        pack(&mut all);
        all.remove(2);
        assert!(adjacent(&all[0], &all[1]));
        assert!(
            !adjacent(&all[1], &all[2]),
            "the removed entry's bytes lie between"
        );
        assert_eq!(&*stretch_ends(&all), [1, 1, 3, 3]);
    }

    #[test]
    fn blocks_are_cut_at_the_block_size() {
        // Each entry and its comma are 2,007 bytes: a block and a half of them.
        let n = 3 * BLOCK_BYTES / 2 / 2007;
        let mut all: Vec<_> = (0..n).map(|i| entry(i, 2000)).collect();
        pack(&mut all);
        let cuts = all.windows(2).filter(|w| !adjacent(&w[0], &w[1])).count();
        assert_eq!(cuts, 1, "two blocks for a block and a half");
        assert!(
            all.iter()
                .all(|e| e.block.as_ref().unwrap().len() <= BLOCK_BYTES)
        );
    }

    #[test]
    fn a_block_with_too_many_dead_bytes_is_packed_again_and_one_with_few_is_not() {
        let n = BLOCK_BYTES / 1000;
        let mut all: Vec<_> = (0..n).map(|i| entry(i, 1000)).collect();
        pack(&mut all);
        let old = all[0].block.clone().unwrap();

        // A few entries gone: the block stays, shared entries untouched.
        let mut few = all.clone();
        few.truncate(n - 10);
        let held = few.clone();
        pack(&mut few);
        assert!(few.iter().zip(&held).all(|(a, b)| Arc::ptr_eq(a, b)));

        // More than the dead-byte bound gone: the rest moves to a new block, content unchanged.
        let mut half = all.clone();
        half.truncate(n / 2);
        let before = served(&half);
        pack(&mut half);
        assert_eq!(served(&half), before);
        let new = half[0].block.clone().unwrap();
        assert!(!Arc::ptr_eq(&old, &new));
        assert!(half.windows(2).all(|w| adjacent(&w[0], &w[1])));
        assert!(new.len() < old.len());
    }
}
