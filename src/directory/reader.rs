//! What the SCIM read handlers call: the snapshot a request reads, chosen once here, and the page it
//! answers with.
//!
//! Owns the reading side's policy: a single resource and the root `/.search` read the latest version; an
//! index-paged walk reads the version its first page pinned ([`super::pins`]); an RFC 9865 cursor names
//! its walk and offset (`<walk>.<offset>`), and reads its walk's version too. Query evaluation itself is
//! [`super::read::list`]'s. Knows nothing of HTTP: handlers parse the request into a [`Query`] and render
//! what comes back.

use std::sync::Arc;

use rand::{Rng, SeedableRng};
use scim_v2::models::errors::ScimType;

use super::pins::Pins;
use super::read::{self, Items, ListPage};
use super::{WriteError, not_ready};
use crate::cache::replicas::Shared;
use crate::cache::{Entry, Snapshot, Store};
use crate::scim::ResourceKind;
use crate::scim::error::ScimError;
use crate::scim::list::{Query, QueryParams};
use crate::scim::paging::Paging;

/// Reads over the published snapshot and the pinned walks.
#[derive(Debug, Clone)]
pub struct Reader {
    store: Arc<Store>,
    pins: Arc<Pins>,
    /// With replicas: pins are shared through Redis, so a walk's pages may land on any replica.
    shared: Option<Arc<Shared>>,
}

/// One page and the snapshot it was read from (for `X-Snapshot-Version` and `X-Snapshot-Age`).
#[derive(Debug)]
pub struct Read<T> {
    pub snapshot: Arc<Snapshot>,
    pub value: T,
}

/// A page of a cursor walk, with the cursors of the pages after and before it.
#[derive(Debug)]
pub struct CursorPage {
    pub page: ListPage,
    pub next: Option<String>,
    pub previous: Option<String>,
}

/// The two pages of a root `/.search`: Users then Groups, one result set paged as a whole.
#[derive(Debug)]
pub struct RootPage {
    pub users: ListPage,
    pub groups: ListPage,
}

/// What makes two requests pages of one listing: everything but where the page starts.
/// The parts are joined by U+001F (unit separator), written one after another into a string of the right
/// size: a page of a walk asks for its key every time.
pub fn walk_key(principal: &str, kind: ResourceKind, params: &QueryParams) -> String {
    let parts = [
        Some(principal),
        Some(kind.endpoint()),
        params.filter.as_deref(),
        params.sort_by.as_deref(),
        params.sort_order.as_deref(),
        params.count.as_deref(),
        params.attributes.as_deref(),
        params.excluded_attributes.as_deref(),
    ];
    let len = parts.iter().map(|p| p.map_or(0, str::len) + 1).sum();
    let mut key = String::with_capacity(len);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            key.push('\u{1f}');
        }
        key.push_str(part.unwrap_or_default());
    }
    key
}

impl Reader {
    pub fn new(store: Arc<Store>, pins: Arc<Pins>) -> Reader {
        Reader {
            store,
            pins,
            shared: None,
        }
    }

    /// The same reader sharing its pins through the shared store (replicas).
    pub fn with_shared(mut self, shared: Option<Arc<Shared>>) -> Reader {
        self.shared = shared;
        self
    }

    /// Before a later page of walk `walk`: when the walk was pinned on another replica, its version is
    /// fetched (this replica's current one, or read back from Redis while it is kept) and pinned here too.
    /// Without replicas, or when the walk is pinned here already, nothing to do.
    pub async fn follow_walk(&self, walk: &str) {
        self.follow_walk_named(|| walk.to_owned()).await;
    }

    /// [`Self::follow_walk`] for a walk whose name is only spelled out when there is a shared store to
    /// look it up in.
    pub async fn follow_walk_named(&self, walk: impl FnOnce() -> String) {
        let Some(shared) = &self.shared else {
            return;
        };
        let walk = walk();
        self.follow_shared(shared, &walk).await;
    }

    async fn follow_shared(&self, shared: &Arc<Shared>, walk: &str) {
        if self.pins.pinned(walk).is_some() {
            return;
        }
        let Some(version) = shared.pinned(walk).await else {
            return;
        };
        // Another walk that came here from the same version holds it already: not read back again.
        if let Some(snapshot) = self.pins.held(version) {
            self.pins.pin(walk, &snapshot);
        } else if let Some(snapshot) = shared.version(version).await {
            self.pins.pin(walk, &snapshot);
        }
    }

    /// Pin `snapshot` for `walk` here and, with replicas, in Redis.
    fn pin(&self, walk: &str, snapshot: &Arc<Snapshot>) {
        self.pins.pin(walk, snapshot);
        if let (Some(shared), Ok(rt)) = (&self.shared, tokio::runtime::Handle::try_current()) {
            let (shared, walk, version) = (shared.clone(), walk.to_owned(), snapshot.version);
            rt.spawn(async move { shared.pin(&walk, version).await });
        }
    }

    /// How many walks are pinned now.
    pub fn pinned_walks(&self) -> u64 {
        self.pins.walks()
    }

    fn latest(&self) -> Result<Arc<Snapshot>, WriteError> {
        self.store.load().ok_or_else(not_ready)
    }

    /// One resource from the latest version (`None` inside when there is no such resource).
    pub fn get(
        &self,
        kind: ResourceKind,
        id: &str,
    ) -> Result<Read<Option<Arc<Entry>>>, WriteError> {
        let snapshot = self.latest()?;
        let value = snapshot.get(kind, id).cloned();
        Ok(Read { snapshot, value })
    }

    /// One page of an index-paged walk (a GET list or a `.search`) named by `walk` ([`walk_key`]): the first
    /// page pins the latest version for the walk, later pages read the pinned one (or the latest, once the
    /// pin is gone).
    ///
    /// `walk` spells the name out: a first page answered whole (a lookup) never needs it.
    pub fn index_page(
        &self,
        walk: &dyn Fn() -> String,
        kind: ResourceKind,
        query: &Query,
    ) -> Result<Read<ListPage>, WriteError> {
        let latest = self.latest()?;
        if query.paging.start_index <= 1 {
            let value = read::list(&latest, kind, query);
            // Only a walk with a page after this one needs its version kept: a lookup answered in one page
            // (a `userName eq`, a small delta) pins nothing.
            if value.total > value.items.len() {
                self.pin(&walk(), &latest);
            }
            return Ok(Read {
                snapshot: latest,
                value,
            });
        }
        let snapshot = self.pins.pinned(&walk()).unwrap_or(latest);
        let value = read::list(&snapshot, kind, query);
        Ok(Read { snapshot, value })
    }

    /// One page of an RFC 9865 cursor walk: `cursor` is empty for the first page (which starts a walk and
    /// pins the latest version) or one this service issued; `query`'s paging is replaced by the cursor's
    /// offset and `count`.
    pub fn cursor_page(
        &self,
        kind: ResourceKind,
        cursor: &str,
        count: usize,
        mut query: Query,
    ) -> Result<Read<CursorPage>, WriteError> {
        let latest = self.latest()?;
        let (walk, offset, snapshot) = if cursor.is_empty() {
            let walk = new_walk_id();
            self.pin(&walk, &latest);
            (walk, 0usize, latest)
        } else {
            let (walk, offset) = parse_cursor(cursor)?;
            let snapshot = self.pins.pinned(&walk).unwrap_or(latest);
            (walk, offset, snapshot)
        };
        query.paging = Paging {
            start_index: offset + 1,
            count: Some(count),
        };
        let page = read::list(&snapshot, kind, &query);
        let end = offset + page.items.len();
        let value = CursorPage {
            next: (end < page.total && !page.items.is_empty()).then(|| format!("{walk}.{end}")),
            previous: (offset > 0).then(|| format!("{walk}.{}", offset.saturating_sub(count))),
            page,
        };
        Ok(Read { snapshot, value })
    }

    /// `POST /.search`: `users` and `groups` evaluated over the latest version without paging, then one
    /// window of `paging` cut from Users followed by Groups.
    pub fn search_root(
        &self,
        users: &Query,
        groups: &Query,
        paging: &Paging,
    ) -> Result<Read<RootPage>, WriteError> {
        let snapshot = self.latest()?;
        let mut all = Vec::new();
        for (q, kind) in [(users, ResourceKind::User), (groups, ResourceKind::Group)] {
            let unpaged = Query {
                paging: Paging::default(),
                ..q.clone()
            };
            let page = read::list(&snapshot, kind, &unpaged);
            all.extend(page.items.iter().cloned().map(|e| (e, kind)));
        }
        let total = all.len();
        let window = paging.window(total);
        let empty = |total| ListPage {
            total,
            start_index: paging.start_index,
            items: Items::default(),
        };
        let mut value = RootPage {
            users: empty(total),
            groups: empty(0),
        };
        for (e, kind) in all.drain(window) {
            match kind {
                ResourceKind::User => value.users.items.push(e),
                ResourceKind::Group => value.groups.items.push(e),
            }
        }
        Ok(Read { snapshot, value })
    }
}

/// A cursor this service issued: `<walk>.<offset>`.
fn parse_cursor(cursor: &str) -> Result<(String, usize), ScimError> {
    cursor
        .split_once('.')
        .and_then(|(w, o)| Some((w.to_string(), o.parse::<usize>().ok()?)))
        .ok_or_else(|| {
            ScimError::new(
                400,
                Some(ScimType::Other("invalidCursor".into())),
                format!(
                    "cursor {cursor:?} was not issued by this service; start again with cursor="
                ),
            )
        })
}

/// An unguessable walk id for a cursor.
fn new_walk_id() -> String {
    let mut rng = rand::rngs::StdRng::from_os_rng();
    (0..16)
        .map(|_| format!("{:x}", rng.random_range(0..16u8)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_walk_and_offset_and_anything_else_is_refused() {
        assert_eq!(parse_cursor("abc.20").unwrap(), ("abc".to_string(), 20));
        for bad in ["abc", "abc.x", ".", "abc.-1"] {
            let e = parse_cursor(bad).unwrap_err();
            assert_eq!(e.status, 400, "{bad}");
            assert!(
                e.detail.contains("start again with cursor="),
                "{}",
                e.detail
            );
        }
        let a = new_walk_id();
        assert_eq!(a.len(), 16);
        assert_ne!(a, new_walk_id());
    }

    #[test]
    fn a_walk_is_named_by_everything_but_where_its_page_starts() {
        let params = |start: &str, filter: &str| QueryParams {
            filter: Some(filter.into()),
            start_index: Some(start.into()),
            ..QueryParams::default()
        };
        let a = walk_key(
            "sailpoint",
            ResourceKind::User,
            &params("1", "active eq true"),
        );
        assert_eq!(
            a,
            walk_key(
                "sailpoint",
                ResourceKind::User,
                &params("101", "active eq true")
            )
        );
        assert_ne!(
            a,
            walk_key("okta", ResourceKind::User, &params("1", "active eq true"))
        );
        assert_ne!(
            a,
            walk_key(
                "sailpoint",
                ResourceKind::Group,
                &params("1", "active eq true")
            )
        );
        assert_ne!(
            a,
            walk_key(
                "sailpoint",
                ResourceKind::User,
                &params("1", "active eq false")
            )
        );
    }
}
