//! A JumpCloud user as a snapshot keeps it: its record packed into one allocation ([`PackedUser`]).
//!
//! The snapshot reads a user's JumpCloud record only to derive its resource again and to diff a write
//! against it; everything a read serves comes from the entry. So the record is kept as the postcard bytes
//! of its plain mirror ([`UserRec`]): about a third of the struct of owned strings it replaces, and one
//! allocation rather than one per field. The fields other code looks up across every user (`id`,
//! `username`, `manager`) lead the encoding and are read from its head without decoding the rest.

use std::fmt;
use std::sync::Arc;

use serde::Deserialize;

use crate::cache::records::UserRec;
use crate::jumpcloud::JcUser;

/// A user's JumpCloud record, packed. Cloning shares it.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedUser(Arc<[u8]>);

/// The leading fields of a packed [`UserRec`], borrowed.
#[derive(Deserialize)]
struct Head<'a> {
    id: &'a str,
    username: &'a str,
    manager: Option<&'a str>,
}

// === impl PackedUser ===

impl PackedUser {
    pub fn pack(user: &JcUser) -> PackedUser {
        // A record of strings, numbers and booleans always encodes.
        let bytes = postcard::to_allocvec(&UserRec::from(user)).unwrap_or_default();
        PackedUser(Arc::from(bytes))
    }

    /// The record, decoded. The bytes were encoded by [`PackedUser::pack`] in this process, so they
    /// decode; should that ever fail, the user reads as a record of its id alone.
    pub fn unpack(&self) -> JcUser {
        postcard::from_bytes::<UserRec>(&self.0)
            .ok()
            .and_then(|r| JcUser::try_from(r).ok())
            .unwrap_or_else(|| JcUser {
                id: self.id().to_owned(),
                ..JcUser::default()
            })
    }

    fn head(&self) -> Option<Head<'_>> {
        postcard::take_from_bytes::<Head<'_>>(&self.0)
            .ok()
            .map(|(h, _)| h)
    }

    pub fn id(&self) -> &str {
        self.head().map_or("", |h| h.id)
    }

    /// The JumpCloud username.
    pub fn username(&self) -> &str {
        self.head().map_or("", |h| h.username)
    }

    /// The manager's user id, when one is set.
    pub fn manager(&self) -> Option<&str> {
        self.head()
            .and_then(|h| h.manager)
            .filter(|m| !m.is_empty())
    }

    /// Whether both hold the same record (the same allocation, or equal bytes).
    pub fn same(&self, other: &PackedUser) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0
    }

    /// Bytes the record holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for PackedUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackedUser({}, {} bytes)", self.id(), self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jumpcloud::{JcAttribute, JcPhoneNumber};

    fn user() -> JcUser {
        JcUser {
            id: "5f0c1a2b3c4d5e6f7a8b9c0d".into(),
            username: "jdoe".into(),
            email: "jdoe@example.com".into(),
            firstname: Some("Jane".into()),
            lastname: Some("Doe".into()),
            manager: Some("5f0c1a2b3c4d5e6f7a8b9c0e".into()),
            suspended: true,
            phone_numbers: vec![JcPhoneNumber {
                id: None,
                kind: Some("work".into()),
                number: Some("+1 555".into()),
            }],
            attributes: vec![JcAttribute {
                name: "scimExternalId".into(),
                value: "e-1".into(),
            }],
            created: Some("2026-01-01T00:00:00.000Z".into()),
            ..JcUser::default()
        }
    }

    #[test]
    fn a_packed_user_unpacks_to_the_same_record_and_reads_its_head() {
        let u = user();
        let p = PackedUser::pack(&u);
        assert_eq!(p.unpack(), u);
        assert_eq!(p.id(), u.id);
        assert_eq!(p.username(), "jdoe");
        assert_eq!(p.manager(), Some("5f0c1a2b3c4d5e6f7a8b9c0e"));
        let mut none = u.clone();
        none.manager = Some(String::new());
        assert_eq!(PackedUser::pack(&none).manager(), None);
        assert!(p.same(&PackedUser::pack(&u)));
        assert!(!p.same(&PackedUser::pack(&none)));
        // Smaller than the strings it holds would be as separate allocations.
        assert!(p.len() < 200, "{}", p.len());
    }
}
