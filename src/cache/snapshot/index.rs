//! The indexes reads use for `eq` filters and membership: which index keys an entry has, and keeping the
//! indexes in step as entries come and go.

use std::sync::Arc;

use imbl::{HashMap, OrdMap};
use serde_json::Value;

use super::{Entry, Id, IdSet, Kind, Snapshot};
use crate::scim::filter::fold_case;
use crate::scim::schema::ENTERPRISE_USER_URN;

/// Case-insensitive and exact lookups for indexed filters.
#[derive(Debug, Clone, Default)]
pub struct Indexes {
    /// Lower-cased served userName → user.
    pub user_name: Index,
    /// Lower-cased email (primary and alternate) → users.
    pub email: Index,
    /// externalId (case-exact) → users.
    pub user_external_id: Index,
    /// Lower-cased employeeNumber → users.
    pub employee_number: Index,
    /// Lower-cased displayName → groups.
    pub group_name: Index,
    /// externalId (case-exact) → groups.
    pub group_external_id: Index,
    /// Member user → Group entries listing it (user groups and directory groups).
    pub member_of: Index,
}

// === impl Indexes ===

/// One index: a key → the entries it names.
pub type Index = HashMap<Arc<str>, IdSet>;

impl Indexes {
    /// How many indexes there are, in the order of [`Indexes::as_array`].
    pub const COUNT: usize = 7;

    /// Every index in a fixed order, with the kind of entry its values name.
    pub fn as_array(&self) -> [(&Index, Kind); Self::COUNT] {
        [
            (&self.user_name, Kind::User),
            (&self.email, Kind::User),
            (&self.user_external_id, Kind::User),
            (&self.employee_number, Kind::User),
            (&self.group_name, Kind::Group),
            (&self.group_external_id, Kind::Group),
            (&self.member_of, Kind::Group),
        ]
    }

    /// The indexes from [`Indexes::as_array`]'s order.
    pub fn from_array(maps: [Index; Self::COUNT]) -> Indexes {
        let [
            user_name,
            email,
            user_external_id,
            employee_number,
            group_name,
            group_external_id,
            member_of,
        ] = maps;
        Indexes {
            user_name,
            email,
            user_external_id,
            employee_number,
            group_name,
            group_external_id,
            member_of,
        }
    }
}

/// The index an `index_keys` key goes to.
fn index_map(i: &mut Indexes, which: u8) -> &mut Index {
    match which {
        0 => &mut i.user_name,
        1 => &mut i.email,
        2 => &mut i.user_external_id,
        3 => &mut i.employee_number,
        4 => &mut i.group_name,
        5 => &mut i.group_external_id,
        _ => &mut i.member_of,
    }
}

/// A case-insensitive key, folded as filters fold their operands (so an index lookup finds what the
/// filter matches).
fn lower(s: &str) -> Arc<str> {
    Arc::from(fold_case(s).as_str())
}

impl Snapshot {
    /// Index every entry. Users and groups feed disjoint indexes, so they are built on two threads.
    pub(super) fn reindex_all(&mut self) {
        let of = |entries: &OrdMap<Id, Arc<Entry>>| {
            let mut idx = Indexes::default();
            for e in entries.values() {
                for (which, key) in Self::index_keys(e) {
                    index_map(&mut idx, which)
                        .entry(key)
                        .or_default()
                        .insert(e.id.clone());
                }
            }
            idx
        };
        let (u, g) = std::thread::scope(|scope| {
            let users = scope.spawn(|| of(&self.users));
            let g = of(&self.groups);
            (
                users
                    .join()
                    .unwrap_or_else(|p| std::panic::resume_unwind(p)),
                g,
            )
        });
        self.indexes = Indexes {
            user_name: u.user_name,
            email: u.email,
            user_external_id: u.user_external_id,
            employee_number: u.employee_number,
            group_name: g.group_name,
            group_external_id: g.group_external_id,
            member_of: g.member_of,
        };
    }

    fn index_keys(e: &Entry) -> Vec<(u8, Arc<str>)> {
        let j = e.json();
        let mut keys = Vec::new();
        match e.kind {
            Kind::User => {
                if let Some(u) = j.get("userName").and_then(Value::as_str) {
                    keys.push((0, lower(u)));
                }
                for em in j
                    .get("emails")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(v) = em.get("value").and_then(Value::as_str) {
                        keys.push((1, lower(v)));
                    }
                }
                if let Some(x) = j.get("externalId").and_then(Value::as_str) {
                    keys.push((2, Arc::from(x)));
                }
                if let Some(n) = j
                    .get(ENTERPRISE_USER_URN)
                    .and_then(|x| x.get("employeeNumber"))
                    .and_then(Value::as_str)
                {
                    keys.push((3, lower(n)));
                }
            }
            Kind::Group => {
                if let Some(n) = j.get("displayName").and_then(Value::as_str) {
                    keys.push((4, lower(n)));
                }
                if let Some(x) = j.get("externalId").and_then(Value::as_str) {
                    keys.push((5, Arc::from(x)));
                }
                for m in j
                    .get("members")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(v) = m.get("value").and_then(Value::as_str) {
                        keys.push((6, Arc::from(v)));
                    }
                }
            }
        }
        keys
    }

    fn index_map(&mut self, which: u8) -> &mut Index {
        index_map(&mut self.indexes, which)
    }

    pub(super) fn index(&mut self, e: &Entry) {
        for (which, key) in Self::index_keys(e) {
            self.index_map(which)
                .entry(key)
                .or_default()
                .insert(e.id.clone());
        }
    }

    pub(super) fn unindex(&mut self, e: &Entry) {
        for (which, key) in Self::index_keys(e) {
            let map = self.index_map(which);
            if let Some(set) = map.get_mut(&key) {
                set.remove(&e.id);
                if set.is_empty() {
                    map.remove(&key);
                }
            }
        }
    }
}
