//! Reading whole lists: v1 pages (`{totalCount, results}`, sorted by `_id`) and v2 pages (bare arrays with the
//! total in `x-total-count`), each page checked against the total the first one announced, and no id seen twice.
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

/// Fetch pages at `skip = 0, 100, 200, …` and check them against the total the first page announced: every
/// page but the last holds exactly 100, the last holds the rest, the total does not move while we page, and no
/// id repeats (which would mean the list shifted under us). Without a total (header or field missing), pages
/// run until one comes back short.
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
    let mut announced: Option<Option<u64>> = None;
    let mut skip = 0u64;
    for _ in 0..MAX_PAGES {
        let (items, total) = fetch(skip).await?;
        let total = match announced {
            None => {
                if total.is_none() {
                    tracing::debug!(
                        route = name,
                        "list carries no total; paging to a short page"
                    );
                }
                announced = Some(total);
                total
            }
            Some(first) if first == total => first,
            Some(first) => {
                return Err(JcError::protocol(format!(
                    "{name}: total changed from {} to {} while paging",
                    show(first),
                    show(total)
                )));
            }
        };
        let got = items.len() as u64;
        if let Some(total) = total {
            let expected = PAGE.min(total.saturating_sub(skip));
            if got != expected {
                return Err(JcError::protocol(format!(
                    "{name}: page at skip={skip} has {got} items, expected {expected} of {total}"
                )));
            }
        } else if got > PAGE {
            return Err(JcError::protocol(format!(
                "{name}: page at skip={skip} has {got} items, more than the limit {PAGE}"
            )));
        }
        for item in &items {
            let Some(id) = id_of(item) else { continue };
            if id.is_empty() {
                return Err(JcError::protocol(format!(
                    "{name}: an item at skip={skip} has no id"
                )));
            }
            if !seen.insert(id.to_owned()) {
                return Err(JcError::protocol(format!(
                    "{name}: id {id} appears twice (the list changed while paging)"
                )));
            }
        }
        out.extend(items);
        skip += PAGE;
        let done = match total {
            Some(total) => skip >= total,
            None => got < PAGE,
        };
        if done {
            return Ok(out);
        }
    }
    Err(JcError::protocol(format!(
        "{name}: more than {MAX_PAGES} pages; the server seems to ignore skip"
    )))
}

fn show(total: Option<u64>) -> String {
    total.map_or_else(|| "none".to_owned(), |t| t.to_string())
}

#[cfg(test)]
#[path = "pagination_tests.rs"]
mod tests;
