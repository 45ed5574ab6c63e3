//! Directory Insights: the `directory` service's events from a start time, oldest first (facts sheet §5):
//! `POST …/events` with an `EventQuery` body, paged by copying `X-Search_after` into the next body's
//! `search_after` until a page holds fewer rows (`X-Result-Count`) than `X-Limit`. Sent to the insights host
//! through its own guard (breaker, retry budget, in-flight bound) and retried like every read.
//!
//! Must not know what the events mean, nor where a reader keeps its place: it returns events in the order
//! the feed sent them.

use jiff::Timestamp;
use serde_json::{Value, json};

use super::handle::JcClient;
use super::routes::EVENTS;
use super::transport::{Call, Host, parse};
use crate::jumpcloud::error::JcError;
use crate::jumpcloud::event::JcEvent;

/// Rows asked for per page (the feed allows up to 10,000; its default is 1,000).
pub const EVENTS_PAGE: usize = 1000;
/// Pages one read follows at most, whatever `X-Limit` the feed pages by; past them it says more follow.
const MAX_PAGES: usize = 100;

/// Why the feed could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    /// 403: the organisation's plan has no Directory Insights (or the key may not read it).
    #[error("Directory Insights is not available to this organisation (HTTP 403): not in its plan")]
    NotInPlan,
    #[error(transparent)]
    Upstream(#[from] JcError),
}

/// Events read from the feed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventBatch {
    /// In the order the feed sent them (ascending time).
    pub events: Vec<JcEvent>,
    /// The feed holds more past the bound asked for.
    pub more: bool,
}

/// A response header as text.
fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

impl JcClient {
    /// The `directory` events from `start` on (inclusive), oldest first, at most `max_events` of them; `more`
    /// says whether the feed had more. `start` is sent to the millisecond.
    pub async fn directory_events(
        &self,
        start: Timestamp,
        max_events: usize,
    ) -> Result<EventBatch, FeedError> {
        let start_time = start.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string();
        let mut batch = EventBatch::default();
        let mut after: Option<Value> = None;
        for _ in 0..MAX_PAGES {
            let limit = EVENTS_PAGE.min(max_events - batch.events.len()).max(1);
            let mut body = json!({
                "service": ["directory"],
                "start_time": start_time,
                "limit": limit,
                "sort": "ASC",
            });
            if let (Some(a), Some(b)) = (&after, body.as_object_mut()) {
                b.insert("search_after".into(), a.clone());
            }
            let (rows, next, full) = self.events_page(&body, limit).await?;
            batch.events.extend(rows);
            if !full {
                return Ok(batch);
            }
            if batch.events.len() >= max_events {
                batch.more = true;
                return Ok(batch);
            }
            if after.as_ref() == Some(&next) {
                return Err(JcError::protocol(format!(
                    "{}: X-Search_after did not move past a full page",
                    EVENTS.template
                ))
                .into());
            }
            after = Some(next);
        }
        batch.more = true;
        Ok(batch)
    }

    /// One page: its events, the cursor for the next, and whether it was full (`X-Result-Count` ≥ `X-Limit`).
    async fn events_page(
        &self,
        body: &Value,
        limit: usize,
    ) -> Result<(Vec<JcEvent>, Value, bool), FeedError> {
        let mut call = Call::new(EVENTS, vec!["events"]).json(body)?;
        call.host = Host::Insights;
        let reply = match self.send_read(&call).await {
            Ok(r) => r,
            Err(JcError::Unauthorized { status: 403 }) => return Err(FeedError::NotInPlan),
            Err(e) => return Err(e.into()),
        };
        let rows: Vec<Value> = parse(EVENTS, &reply.body)?;
        let h = &reply.headers;
        if let Some(sort) = header(h, "x-sort")
            && !sort.eq_ignore_ascii_case("asc")
        {
            return Err(JcError::protocol(format!(
                "{}: the feed answered in {sort:?} order, not ASC",
                EVENTS.template
            ))
            .into());
        }
        let number = |name: &str| header(h, name).and_then(|v| v.parse::<usize>().ok());
        let count = number("x-result-count").unwrap_or(rows.len());
        let page_limit = number("x-limit").unwrap_or(limit);
        let full = count >= page_limit && !rows.is_empty();
        let next = match header(h, "x-search_after") {
            Some(v) => serde_json::from_str::<Value>(v)
                .ok()
                .filter(Value::is_array)
                .ok_or_else(|| {
                    JcError::protocol(format!(
                        "{}: X-Search_after is not a JSON array",
                        EVENTS.template
                    ))
                })?,
            None if full => {
                return Err(JcError::protocol(format!(
                    "{}: a full page without X-Search_after",
                    EVENTS.template
                ))
                .into());
            }
            None => Value::Array(Vec::new()),
        };
        Ok((
            rows.into_iter().map(JcEvent::from_value).collect(),
            next,
            full,
        ))
    }
}

#[cfg(test)]
#[path = "insights_tests.rs"]
mod tests;
