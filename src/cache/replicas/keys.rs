//! Every Redis key and channel the replicas share, named in one place from the configured prefix. Pure:
//! knows nothing of what the keys hold beyond their names.

use sha2::{Digest, Sha256};

/// The names under one `store.key_prefix`.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: prefix.to_owned(),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The current version's number.
    pub fn current(&self) -> String {
        format!("{}current", self.prefix)
    }

    /// A version's manifest (length, chunk count, checksum).
    pub fn version(&self, version: u64) -> String {
        format!("{}v:{version}", self.prefix)
    }

    /// Chunk `index` of a version's serialised snapshot.
    pub fn chunk(&self, version: u64, index: usize) -> String {
        format!("{}v:{version}:{index}", self.prefix)
    }

    /// What the write that published a version touched (`refresh` for a refresh), for a while.
    pub fn touched(&self, version: u64) -> String {
        format!("{}t:{version}", self.prefix)
    }

    /// Where the leader's Directory Insights reader stands (its cursor, and the version it describes), so a
    /// new leader reads the feed on from there.
    pub fn feed(&self) -> String {
        format!("{}feed", self.prefix)
    }

    /// The published versions kept, newest first.
    pub fn versions(&self) -> String {
        format!("{}versions", self.prefix)
    }

    /// The refresher's lease (holds the leader's fencing token).
    pub fn lease(&self) -> String {
        format!("{}lease", self.prefix)
    }

    /// The fencing tokens' counter.
    pub fn fence(&self) -> String {
        format!("{}fence", self.prefix)
    }

    /// The lock every publication takes.
    pub fn publish(&self) -> String {
        format!("{}publish", self.prefix)
    }

    /// The write lock of one resource (`what` is the writer's lock key: an id, a userName, a group name),
    /// case-folded as the writer's local stripes are.
    pub fn lock(&self, what: &str) -> String {
        format!("{}lock:{}", self.prefix, hashed(&what.to_lowercase()))
    }

    /// A pinned walk's version (the walk key holds a principal's name and a filter: hashed, never stored).
    pub fn pin(&self, walk: &str) -> String {
        format!("{}pin:{}", self.prefix, hashed(walk))
    }

    /// The replicas alive: a sorted set scored by when each one's heartbeat expires (unix ms).
    pub fn replicas(&self) -> String {
        format!("{}replicas", self.prefix)
    }

    /// The version each replica has loaded (a hash by replica id).
    pub fn loaded(&self) -> String {
        format!("{}loaded", self.prefix)
    }

    /// Where a new version's number is announced.
    pub fn channel(&self) -> String {
        format!("{}published", self.prefix)
    }

    /// Where a follower asks the leader for a refresh (`POST /admin/refresh`).
    pub fn refresh_channel(&self) -> String {
        format!("{}refresh", self.prefix)
    }
}

fn hashed(s: &str) -> String {
    let digest = Sha256::digest(s.as_bytes());
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_live_under_the_prefix_and_hide_what_they_name() {
        let k = Keys::new("jcscim:");
        assert_eq!(k.current(), "jcscim:current");
        assert_eq!(k.version(7), "jcscim:v:7");
        assert_eq!(k.chunk(7, 2), "jcscim:v:7:2");
        assert_eq!(k.lease(), "jcscim:lease");
        assert_eq!(k.feed(), "jcscim:feed");
        assert_eq!(k.channel(), "jcscim:published");
        let pin = k.pin("alice\u{1f}Users\u{1f}userName sw \"a\"");
        assert!(pin.starts_with("jcscim:pin:"));
        assert!(!pin.contains("alice"));
        assert_eq!(pin.len(), "jcscim:pin:".len() + 32);
        assert_eq!(k.lock("Alice@Example.com"), k.lock("alice@example.com"));
        assert_ne!(k.lock("alice"), k.lock("bob"));
        assert!(Keys::new("other:").lease().starts_with("other:"));
    }
}
