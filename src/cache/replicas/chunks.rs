//! A serialised snapshot cut into chunks for Redis (one value per chunk, so no single value grows past what
//! Redis and its clients handle well), and put back together with its length and CRC-32 checked. Pure.

/// The largest chunk: 4 MiB.
pub const CHUNK_BYTES: usize = 4 << 20;

/// What a version's manifest says of its bytes: `len:chunks:crc32` in Redis for a whole version, and
/// `len:chunks:crc32:base:depth` for a delta on version `base`, the `depth`-th since a whole one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest {
    pub len: u64,
    pub chunks: usize,
    pub crc: u32,
    /// For a delta: the version it is made on, and how many deltas lead back to a whole version.
    pub delta: Option<Delta>,
}

/// Where a delta stands in its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delta {
    pub base: u64,
    pub depth: u32,
}

/// Why chunks do not make the snapshot their manifest describes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("the manifest {0:?} does not read as len:chunks:crc32")]
    BadManifest(String),
    #[error("chunk {0} is missing")]
    Missing(usize),
    #[error("the chunks hold {found} bytes where the manifest says {expected}")]
    Length { expected: u64, found: u64 },
    #[error("the checksum does not match: the chunks are damaged or of another version")]
    Checksum,
}

impl Manifest {
    /// The manifest of `bytes` cut into chunks of `chunk` bytes.
    pub fn of(bytes: &[u8], chunk: usize) -> Manifest {
        Manifest {
            len: bytes.len() as u64,
            chunks: bytes.len().div_ceil(chunk.max(1)).max(1),
            crc: crc32fast::hash(bytes),
            delta: None,
        }
    }

    /// The same bytes, as a delta.
    pub fn on(self, delta: Delta) -> Manifest {
        Manifest {
            delta: Some(delta),
            ..self
        }
    }

    pub fn encode(&self) -> String {
        match self.delta {
            None => format!("{}:{}:{}", self.len, self.chunks, self.crc),
            Some(d) => format!(
                "{}:{}:{}:{}:{}",
                self.len, self.chunks, self.crc, d.base, d.depth
            ),
        }
    }

    pub fn decode(s: &str) -> Result<Manifest, ChunkError> {
        let bad = || ChunkError::BadManifest(s.chars().take(64).collect());
        let mut parts = s.split(':');
        let mut next = || parts.next().ok_or_else(bad);
        let len = next()?.parse().map_err(|_| bad())?;
        let chunks = next()?.parse().map_err(|_| bad())?;
        let crc = next()?.parse().map_err(|_| bad())?;
        let delta = match parts.next() {
            None => None,
            Some(base) => Some(Delta {
                base: base.parse().map_err(|_| bad())?,
                depth: parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?,
            }),
        };
        if parts.next().is_some() || chunks == 0 || chunks > 1 << 20 {
            return Err(bad());
        }
        Ok(Manifest {
            len,
            chunks,
            crc,
            delta,
        })
    }
}

/// `bytes` in chunks of at most `chunk` bytes (one empty chunk for no bytes).
pub fn split(bytes: &[u8], chunk: usize) -> Vec<&[u8]> {
    if bytes.is_empty() {
        return vec![bytes];
    }
    bytes.chunks(chunk.max(1)).collect()
}

/// The bytes `parts` make, once their count, length and checksum agree with `manifest`.
pub fn join(manifest: &Manifest, parts: Vec<Option<Vec<u8>>>) -> Result<Vec<u8>, ChunkError> {
    if parts.len() != manifest.chunks {
        return Err(ChunkError::Missing(parts.len().min(manifest.chunks)));
    }
    let found: u64 = parts.iter().flatten().map(|p| p.len() as u64).sum();
    if let Some(i) = parts.iter().position(Option::is_none) {
        return Err(ChunkError::Missing(i));
    }
    if found != manifest.len {
        return Err(ChunkError::Length {
            expected: manifest.len,
            found,
        });
    }
    let mut out = Vec::with_capacity(found as usize);
    for p in parts.into_iter().flatten() {
        out.extend_from_slice(&p);
    }
    if crc32fast::hash(&out) != manifest.crc {
        return Err(ChunkError::Checksum);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(bytes: &[u8], chunk: usize) -> Result<Vec<u8>, ChunkError> {
        let m = Manifest::decode(&Manifest::of(bytes, chunk).encode())?;
        let parts = split(bytes, chunk)
            .into_iter()
            .map(|p| Some(p.to_vec()))
            .collect();
        join(&m, parts)
    }

    #[test]
    fn chunks_put_back_make_the_same_bytes() {
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for chunk in [1, 3, 4096, 9_999, 10_000, 10_001, CHUNK_BYTES] {
            assert_eq!(roundtrip(&bytes, chunk).unwrap(), bytes, "chunk {chunk}");
            assert_eq!(
                Manifest::of(&bytes, chunk).chunks,
                split(&bytes, chunk).len()
            );
        }
        assert_eq!(roundtrip(&[], 4).unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn a_delta_manifest_names_its_base_and_depth() {
        let m = Manifest::of(b"abc", 2).on(Delta { base: 41, depth: 3 });
        assert_eq!(m.encode(), format!("3:2:{}:41:3", crc32fast::hash(b"abc")));
        assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
        let whole = Manifest::of(b"abc", 2);
        assert_eq!(Manifest::decode(&whole.encode()).unwrap().delta, None);
    }

    #[test]
    fn damaged_missing_or_foreign_chunks_are_refused() {
        let bytes = vec![5u8; 100];
        let m = Manifest::of(&bytes, 40);
        assert_eq!(m.chunks, 3);
        let good = || -> Vec<Option<Vec<u8>>> {
            split(&bytes, 40)
                .into_iter()
                .map(|p| Some(p.to_vec()))
                .collect()
        };
        let mut missing = good();
        missing[1] = None;
        assert_eq!(join(&m, missing), Err(ChunkError::Missing(1)));
        let mut short = good();
        short.pop();
        assert!(matches!(join(&m, short), Err(ChunkError::Missing(_))));
        let mut flipped = good();
        flipped[2].as_mut().unwrap()[0] ^= 1;
        assert_eq!(join(&m, flipped), Err(ChunkError::Checksum));
        let mut longer = good();
        longer[0].as_mut().unwrap().push(0);
        assert!(matches!(join(&m, longer), Err(ChunkError::Length { .. })));
        for bad in [
            "",
            "1:2",
            "a:1:1",
            "1:0:1",
            "1:1:1:1",
            "1:1:1:1:x",
            "1:1:1:1:1:1",
        ] {
            assert!(Manifest::decode(bad).is_err(), "{bad}");
        }
    }
}
