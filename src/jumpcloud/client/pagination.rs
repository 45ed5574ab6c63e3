//! Reading whole lists: v1 pages (`{totalCount, results}`, sorted by `_id`) and v2 pages (bare arrays with the
//! total in `x-total-count`), in overlapping pages anchored on items already read, so a list that changes
//! while it is read (a console admin at work) is still read whole, each item once.
//!
//! Must not know any endpoint; callers name the route, the path and the extra query.

use std::collections::HashSet;
use std::future::Future;

use serde::de::DeserializeOwned;

use super::handle::JcClient;
use super::routes::Route;
use super::transport::{Call, parse};
use crate::jumpcloud::error::JcError;
use crate::jumpcloud::model::V1Page;

/// Page size of every list: JumpCloud's maximum on v1 and v2.
const PAGE: u64 = 100;

/// A list longer than this many pages is taken as a server ignoring `skip`, not as a directory.
const MAX_PAGES: u64 = 10_000;

/// Items each page shares with the one before it: how many deletions ahead of the reader between two pages
/// are absorbed without reading a page again (3% more calls than pages that do not overlap).
const OVERLAP: u64 = 3;

/// Pages read again in a row from further back, each twice as far, before a list is taken as moving faster
/// than it can be read (about 25,000 items slid past between two pages).
const MAX_STEP_BACKS: u32 = 8;

impl JcClient {
    /// All pages of a v1 list (`{totalCount, results}`), sorted by `_id` so `skip` paging is stable.
    pub(super) async fn v1_list<T: DeserializeOwned>(
        &self,
        route: Route,
        segments: &[&str],
        extra: Vec<(&'static str, String)>,
        org_header: bool,
        id_of: impl Fn(&T) -> Option<&str>,
    ) -> Result<Vec<T>, JcError> {
        collect_pages(
            route,
            |skip| {
                let mut call = Call::new(route, segments.to_vec());
                call.org_header = org_header;
                call.query.extend(extra.iter().cloned());
                let call = call
                    .query("limit", PAGE.to_string())
                    .query("skip", skip.to_string())
                    .query("sort", "_id");
                async move {
                    let reply = self.send_read(&call).await?;
                    let page: V1Page<T> = parse(route, &reply.body)?;
                    Ok((page.results, page.total_count))
                }
            },
            id_of,
        )
        .await
    }

    /// All pages of a v2 list (bare array, total in `x-total-count`).
    pub(super) async fn v2_list<T: DeserializeOwned>(
        &self,
        route: Route,
        segments: &[&str],
        extra: Vec<(&'static str, String)>,
        id_of: impl Fn(&T) -> Option<&str>,
    ) -> Result<Vec<T>, JcError> {
        collect_pages(
            route,
            |skip| {
                let mut call = Call::new(route, segments.to_vec());
                call.query.extend(extra.iter().cloned());
                let call = call
                    .query("limit", PAGE.to_string())
                    .query("skip", skip.to_string());
                async move {
                    let reply = self.send_read(&call).await?;
                    let total = match reply.headers.get("x-total-count") {
                        None => None,
                        Some(v) => Some(
                            v.to_str()
                                .ok()
                                .and_then(|s| s.trim().parse::<u64>().ok())
                                .ok_or_else(|| {
                                    JcError::protocol(format!(
                                        "{}: x-total-count {v:?} is not a count",
                                        route.template
                                    ))
                                })?,
                        ),
                    };
                    let items: Vec<T> = parse(route, &reply.body)?;
                    Ok((items, total))
                }
            },
            id_of,
        )
        .await
    }
}

/// Fetch a list page by page while it may change under us, and miss nothing that stayed in it.
///
/// A directory being changed in the console (or by the service's own writes) moves a list while it is read
/// by `skip`: an item deleted ahead of the reader slides the rest one place back, so a reader stepping by
/// whole pages would skip one item per deletion, and at 100,000 users (1,000 pages, seconds of paging) some
/// change always lands mid-walk. So pages overlap by [`OVERLAP`] items, and every page after the first must
/// hold an item already read (its *anchor*): the items after the last such one are the list's next ones,
/// as long as the list keeps its order (v1 lists are sorted by `_id`, v2 lists keep theirs). A page holding
/// no item already read means more than the overlap slid past: it is read again from further back (twice
/// as far each time, at most [`MAX_STEP_BACKS`] times before a page brings new items), never taken on trust. An item inserted
/// behind the reader, or deleted after it was read, is what a snapshot taken over a few seconds holds either
/// way; the next refresh (or the Directory Insights events laid over this one) brings it in line.
///
/// A page longer than the limit, one id twice on one page, or a page short of the limit while the total
/// announced with it says the list goes on (a server capping pages unannounced) are protocol errors. The
/// walk ends at a short page, or at a full one that reaches the total it was announced with.
async fn collect_pages<T, F, Fut>(
    route: Route,
    mut fetch: F,
    id_of: impl Fn(&T) -> Option<&str>,
) -> Result<Vec<T>, JcError>
where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, Option<u64>), JcError>>,
{
    let name = route.template;
    let mut out: Vec<T> = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    let mut skip = 0u64;
    let mut back = 0u32;
    let mut moved = 0u32;
    for _ in 0..MAX_PAGES {
        let (items, total) = fetch(skip).await?;
        let got = items.len() as u64;
        if got > PAGE {
            return Err(JcError::protocol(format!(
                "{name}: page at skip={skip} has {got} items, more than the limit {PAGE}"
            )));
        }
        let ids = page_ids(name, skip, &items, &id_of)?;
        let anchor = ids
            .iter()
            .rposition(|id| id.as_ref().is_some_and(|id| seen.contains(id)));
        match anchor {
            Some(_) => {}
            // The first page, or read again from the list's head: nothing can have slid past.
            None if skip == 0 => {}
            None => {
                back += 1;
                moved += 1;
                if back > MAX_STEP_BACKS {
                    return Err(JcError::protocol(format!(
                        "{name}: the list moved by more than the reader can follow while paging \
                         ({MAX_STEP_BACKS} pages in a row read again from further back held nothing read before)"
                    )));
                }
                let by = (PAGE - OVERLAP) << (back - 1);
                tracing::debug!(
                    route = name,
                    skip,
                    by,
                    "the list moved while paging; reading again from further back"
                );
                skip = skip.saturating_sub(by);
                continue;
            }
        }
        let fresh_from = anchor.map_or(0, |j| j + 1);
        let before = out.len();
        for (i, (item, id)) in items.into_iter().zip(ids).enumerate() {
            let new = match id {
                Some(id) => seen.insert(id),
                None => i >= fresh_from,
            };
            if new {
                out.push(item);
            }
        }
        // Reading again from further back ends when a page anchored on what was read brings new items:
        // a page of items all read before is no progress, so it does not reset the count.
        if anchor.is_some() && out.len() > before {
            back = 0;
        }
        let reached = skip + got;
        let done = walk_ends(name, skip, got, total)?;
        if done {
            if moved > 0 {
                tracing::debug!(
                    route = name,
                    moved,
                    items = out.len(),
                    "list read whole while it moved"
                );
            }
            return Ok(out);
        }
        skip = reached - OVERLAP;
    }
    Err(JcError::protocol(format!(
        "{name}: more than {MAX_PAGES} pages; the server seems to ignore skip"
    )))
}

/// The ids of a page's items, in order; an empty id, or one id twice on the page, is a protocol error.
fn page_ids<T>(
    name: &str,
    skip: u64,
    items: &[T],
    id_of: &impl Fn(&T) -> Option<&str>,
) -> Result<Vec<Option<String>>, JcError> {
    let mut ids: Vec<Option<String>> = Vec::with_capacity(items.len());
    let mut on_page: HashSet<&str> = HashSet::with_capacity(items.len());
    for item in items {
        let id = id_of(item);
        if let Some(id) = id {
            if id.is_empty() {
                return Err(JcError::protocol(format!(
                    "{name}: an item at skip={skip} has no id"
                )));
            }
            if !on_page.insert(id) {
                return Err(JcError::protocol(format!(
                    "{name}: id {id} appears twice on the page at skip={skip}"
                )));
            }
        }
        ids.push(id.map(str::to_owned));
    }
    Ok(ids)
}

/// Whether the page of `got` items at `skip`, announced with `total`, is the list's last: a short one is
/// (unless its total says the list goes on: a server capping pages unannounced), and so is a full one that
/// reaches its total.
fn walk_ends(name: &str, skip: u64, got: u64, total: Option<u64>) -> Result<bool, JcError> {
    let reached = skip + got;
    if got < PAGE {
        if let Some(total) = total
            && reached < total
        {
            return Err(JcError::protocol(format!(
                "{name}: page at skip={skip} has {got} items, fewer than the limit {PAGE}, \
                 though the list holds {total}"
            )));
        }
        return Ok(true);
    }
    Ok(total.is_some_and(|total| reached >= total))
}

#[cfg(test)]
#[path = "pagination_tests.rs"]
mod tests;
