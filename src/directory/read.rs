//! Answering a SCIM list query from one snapshot: candidates (from an index when the filter allows),
//! filter, sort, page. Pure over the snapshot; the HTTP layer renders the result.

use std::sync::Arc;

use crate::cache::{Entry, Index, Snapshot};
use crate::scim::filter::IndexHint;
use crate::scim::list::Query;
use crate::scim::schema::ResourceKind;

/// One page of a list answer.
#[derive(Debug)]
pub struct ListPage {
    pub total: usize,
    pub start_index: usize,
    pub items: Items,
}

/// A page's resources: chosen one by one (a filter, a sort), or a window of the version's own list, which a
/// page of an unfiltered walk shares rather than copies (so a list of every user costs no list of its own),
/// with the list's stretches of neighbours ([`Snapshot::stretches`]).
#[derive(Debug, Clone)]
pub enum Items {
    Owned(Vec<Arc<Entry>>),
    Shared(Arc<[Arc<Entry>]>, std::ops::Range<usize>, Arc<[u32]>),
}

impl Default for Items {
    fn default() -> Items {
        Items::Owned(Vec::new())
    }
}

impl Items {
    pub fn as_slice(&self) -> &[Arc<Entry>] {
        match self {
            Items::Owned(v) => v,
            Items::Shared(all, range, _) => all.get(range.clone()).unwrap_or_default(),
        }
    }

    /// The last item of the stretch of neighbours in one block that item `i` begins (`i` itself when
    /// its successor is not its neighbour), within this window; `None` when the window does not know.
    pub fn stretch_end(&self, i: usize) -> Option<usize> {
        match self {
            Items::Shared(_, range, ends) => {
                let end = *ends.get(range.start.checked_add(i)?)? as usize;
                Some(
                    end.min(range.end.checked_sub(1)?)
                        .checked_sub(range.start)?
                        .max(i),
                )
            }
            Items::Owned(_) => None,
        }
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Arc<Entry>> {
        self.as_slice().iter()
    }

    pub fn len(&self) -> usize {
        self.as_slice().len()
    }

    pub fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// Add `e` at the end (a shared window becomes a list of its own first).
    pub fn push(&mut self, e: Arc<Entry>) {
        if let Items::Shared(..) = self {
            *self = Items::Owned(self.as_slice().to_vec());
        }
        if let Items::Owned(v) = self {
            v.push(e);
        }
    }
}

fn lookup(
    set: Option<&crate::cache::IdSet>,
    snap: &Snapshot,
    kind: ResourceKind,
) -> Vec<Arc<Entry>> {
    set.into_iter()
        .flatten()
        .filter_map(|id| snap.get(kind, id).cloned())
        .collect()
}

/// Candidates an indexed filter can narrow to, in id order; `None` when the filter needs a scan.
fn candidates(snap: &Snapshot, kind: ResourceKind, hint: &IndexHint) -> Option<Vec<Arc<Entry>>> {
    if let IndexHint::Id(v) = hint {
        return Some(snap.get(kind, v).cloned().into_iter().collect());
    }
    if let IndexHint::ModifiedSince(t) = hint {
        let mut out: Vec<Arc<Entry>> = snap
            .indexes
            .modified_since(kind, *t)
            .iter()
            .filter_map(|id| snap.get(kind, id).cloned())
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        return Some(out);
    }
    let (index, value) = match (kind, hint) {
        (ResourceKind::User, IndexHint::UserName(v)) => (Index::UserName, v),
        (ResourceKind::User, IndexHint::ExternalId(v)) => (Index::UserExternalId, v),
        (ResourceKind::User, IndexHint::Email(v)) => (Index::Email, v),
        (ResourceKind::Group, IndexHint::DisplayName(v)) => (Index::GroupName, v),
        (ResourceKind::Group, IndexHint::ExternalId(v)) => (Index::GroupExternalId, v),
        (ResourceKind::Group, IndexHint::Member(v)) => (Index::MemberOf, v),
        _ => return None,
    };
    let mut out = lookup(snap.indexes.find(index, value), snap, kind);
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out.dedup_by(|a, b| a.id == b.id);
    Some(out)
}

/// Above this many resources a scan is split over the cores.
const PARALLEL_SCAN: usize = 20_000;

/// The entries `keep` holds for, in order; split over the cores when there are many.
fn scan(all: &[Arc<Entry>], keep: impl Fn(&Entry) -> bool + Sync) -> Vec<Arc<Entry>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
    if all.len() < PARALLEL_SCAN || threads < 2 {
        return all.iter().filter(|e| keep(e)).cloned().collect();
    }
    let chunk = all.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let parts: Vec<_> = all
            .chunks(chunk)
            .map(|part| {
                let keep = &keep;
                scope.spawn(move || part.iter().filter(|e| keep(e)).cloned().collect::<Vec<_>>())
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

/// Whether answering `query` reads every resource of its kind (a filter no index narrows, or a sort): work to
/// keep off the async workers.
pub fn scans(query: &Query) -> bool {
    query.sort.is_some()
        || query
            .filter
            .as_ref()
            .is_some_and(|f| f.index_hint().is_none())
}

/// Run a list query against one snapshot.
pub fn list(snap: &Snapshot, kind: ResourceKind, query: &Query) -> ListPage {
    if query.filter.is_none() && query.sort.is_none() {
        // The common aggregation walk: the per-version list, sliced, with no per-request copy of it.
        let all = snap.list(kind);
        let total = all.len();
        let window = query.paging.window(total);
        return ListPage {
            total,
            start_index: query.paging.start_index,
            items: Items::Shared(all, window, snap.stretches(kind)),
        };
    }
    let mut matched: Vec<Arc<Entry>> = match &query.filter {
        None => snap.list(kind).to_vec(),
        Some(f) => {
            let base = f.index_hint().and_then(|h| candidates(snap, kind, h));
            match base {
                Some(c) => c.into_iter().filter(|e| f.matches_view(e.view())).collect(),
                None => scan(&snap.list(kind), |e| f.matches_view(e.view())),
            }
        }
    };
    if let Some(sort) = &query.sort {
        sort.sort_with(&mut matched, |e| sort.sort_key_of(e.view()));
    }
    let total = matched.len();
    let window = query.paging.window(total);
    let start_index = query.paging.start_index;
    let items = Items::Owned(matched.drain(window).collect());
    ListPage {
        total,
        start_index,
        items,
    }
}
