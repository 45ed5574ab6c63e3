//! A section of the payload, compressed: LZ4 blocks of at most [`CHUNK`] bytes each, compressed and
//! decompressed on every core. JSON and ids compress several times over, and LZ4 decompresses at
//! gigabytes a second, so a start-up from the file still serves within a fraction of a second.
//!
//! Layout: the section's length (`u64`), the number of chunks (`u32`), then for each chunk its length
//! decompressed and compressed (`u32` each) and its compressed bytes; little-endian. Every length is
//! checked against the bytes there and against what LZ4 can produce before anything is allocated, so a
//! damaged or hostile file is an error, never a huge allocation.

use super::PersistError;

/// Bytes of a section compressed as one block.
pub const CHUNK: usize = 8 << 20;

/// LZ4 writes at least one byte for every 255 it stands for (plus a little per block).
const MAX_RATIO: usize = 255;

/// `bytes` compressed.
pub fn squeeze(bytes: &[u8]) -> Vec<u8> {
    let chunks: Vec<&[u8]> = bytes.chunks(CHUNK).collect();
    let packed = on_threads(chunks.clone(), lz4_flex::block::compress);
    let mut out = Vec::with_capacity(12 + packed.iter().map(|p| p.len() + 8).sum::<usize>());
    out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
    out.extend_from_slice(&(chunks.len() as u32).to_le_bytes());
    for (raw, p) in chunks.iter().zip(&packed) {
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// What [`squeeze`] was given.
pub fn unsqueeze(bytes: &[u8]) -> Result<Vec<u8>, PersistError> {
    let mut at = 0;
    let total = usize::try_from(u64::from_le_bytes(take(bytes, &mut at)?))
        .map_err(|_| PersistError::Corrupt("a compressed section longer than memory"))?;
    let count = u32::from_le_bytes(take(bytes, &mut at)?) as usize;
    if count != total.div_ceil(CHUNK) {
        return Err(PersistError::Corrupt(
            "a compressed section's chunks do not match its length",
        ));
    }
    let mut chunks = Vec::with_capacity(count);
    let mut sum = 0usize;
    for _ in 0..count {
        let raw = u32::from_le_bytes(take(bytes, &mut at)?) as usize;
        let len = u32::from_le_bytes(take(bytes, &mut at)?) as usize;
        let packed = bytes
            .get(at..at.saturating_add(len))
            .ok_or(PersistError::Corrupt(
                "a compressed chunk runs past the file",
            ))?;
        at += len;
        if raw > CHUNK || raw > len.saturating_mul(MAX_RATIO).saturating_add(64) {
            return Err(PersistError::Corrupt(
                "a compressed chunk claims more than it can hold",
            ));
        }
        sum += raw;
        chunks.push((raw, packed));
    }
    if sum != total || at != bytes.len() {
        return Err(PersistError::Corrupt(
            "a compressed section's chunks do not add up",
        ));
    }
    let mut out = vec![0u8; total];
    let mut jobs: Vec<(&mut [u8], &[u8])> = Vec::with_capacity(count);
    let mut rest = out.as_mut_slice();
    for (raw, packed) in &chunks {
        let (head, tail) = rest.split_at_mut(*raw);
        jobs.push((head, packed));
        rest = tail;
    }
    let results = on_threads(jobs, |(dst, src)| {
        match lz4_flex::block::decompress_into(src, dst) {
            Ok(n) if n == dst.len() => Ok(()),
            _ => Err(PersistError::Corrupt(
                "a compressed chunk does not decompress",
            )),
        }
    });
    results.into_iter().collect::<Result<(), _>>()?;
    Ok(out)
}

fn take<const N: usize>(bytes: &[u8], at: &mut usize) -> Result<[u8; N], PersistError> {
    let field = bytes
        .get(*at..at.saturating_add(N))
        .and_then(|b| <[u8; N]>::try_from(b).ok())
        .ok_or(PersistError::Corrupt("a compressed section is cut short"))?;
    *at += N;
    Ok(field)
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8)
}

/// `f` of each item, in order, the items shared out over the cores.
fn on_threads<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<R> {
    if items.len() < 2 {
        return items.into_iter().map(&f).collect();
    }
    let per = items.len().div_ceil(threads());
    let mut parts: Vec<Vec<T>> = Vec::new();
    let mut items = items.into_iter().peekable();
    while items.peek().is_some() {
        parts.push(items.by_ref().take(per).collect());
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = parts
            .into_iter()
            .map(|part| scope.spawn(|| part.into_iter().map(&f).collect::<Vec<R>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("{{\"id\":\"{i:08}\",\"userName\":\"user{i}\"}},").into_bytes())
            .collect()
    }

    #[test]
    fn what_is_squeezed_comes_back_whole_and_smaller() {
        for n in [0, 1, 1000, CHUNK / 20] {
            let raw = sample(n);
            let packed = squeeze(&raw);
            assert_eq!(unsqueeze(&packed).unwrap(), raw, "{n} records");
            if n >= 1000 {
                assert!(
                    packed.len() * 2 < raw.len(),
                    "{} of {}",
                    packed.len(),
                    raw.len()
                );
            }
        }
        let raw = sample(CHUNK / 20);
        assert!(raw.len() > 2 * CHUNK, "several chunks");
    }

    #[test]
    fn damage_anywhere_is_an_error_not_a_panic_or_a_huge_allocation() {
        let raw = sample(2000);
        let packed = squeeze(&raw);
        for cut in 0..packed.len().min(200) {
            assert!(unsqueeze(&packed[..cut]).is_err(), "cut at {cut}");
        }
        for i in 0..20 {
            let mut bad = packed.clone();
            bad[i] ^= 0xff;
            assert!(unsqueeze(&bad).is_err(), "header byte {i}");
        }
        // A section claiming 4 GiB in one chunk of a few bytes.
        let mut huge = Vec::new();
        huge.extend_from_slice(&(u32::MAX as u64).to_le_bytes());
        huge.extend_from_slice(&1u32.to_le_bytes());
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&4u32.to_le_bytes());
        huge.extend_from_slice(&[0, 0, 0, 0]);
        assert!(unsqueeze(&huge).is_err());
    }
}
