//! Directory Insights: `POST /insights/directory/v1/events` and `POST /insights/directory/v1/events/count`
//! (facts sheet §5) over the store's event history, on the emulator's own address.
//!
//! The `EventQuery` body: `service` (required, a list from [`SERVICES`]; an unknown value is a 400 that lists
//! the valid ones), `start_time` (required, RFC 3339, not in the future; a time without an offset is UTC),
//! `end_time` (optional, not before `start_time`; `start_time <= timestamp < end_time`), `limit` (default
//! 1000, at most 10 000; anything else silently the default, which `X-Limit` shows), `sort` (`ASC`/`DESC`,
//! any case; anything else silently ASC, which `X-Sort` shows), `fields` (projection, dotted paths; empty
//! or naming no known field is a 400), `search_term` (one of `and`/`or`/`not` over `{field: value}` or
//! `{field: [values]}` terms, nested; stored values compare lower-cased, so search in lower case; a field
//! may not repeat in one list; `changes`, `useragent`, `system_timestamp` are not searchable), `search_after`
//! (the previous answer's `X-Search_after`), `skip`, and `q` (substring) or `exact_match` (whole value), not
//! both.
//!
//! An answer is a JSON array with `X-Result-Count`, `X-Limit`, `X-Sort`, `X-Search_after` (a JSON array
//! `[timestamp_ms, "id"]` of the page's last event, on every page: the request's own cursor, or `[]`, when
//! the page is empty) and `X-Request-Id`. `/events/count` answers `{"count": N}` for the same filters,
//! ignoring `limit`, `skip`, `sort` and `search_after`.
//!
//! Visibility: an event is returned once `insights_lag_ms` has passed since it happened (the setting in
//! force at query time; an event `insights_late_next` delayed, that much later again), and only within the
//! retention (`insights_retention_s`, 90 days unless set). A plan without Directory Insights (`insights`
//! false) answers 403. Only the `directory` service has events here; any other valid service is empty.
//!
//! Handlers are thin; parsing, matching and paging are pure functions, tested in `insights_tests.rs`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Map, Value, json};

use super::App;
use super::error::{ApiError, Body, json_response, parse_object};
use super::events::{Event, EventLog, RETENTION_MS, SERVICE};

/// Rows per answer when `limit` is absent or nonsensical.
pub const DEFAULT_LIMIT: usize = 1000;
/// The largest `limit` honoured.
pub const MAX_LIMIT: usize = 10_000;
/// Deepest nesting of `and`/`or`/`not` accepted.
const MAX_DEPTH: usize = 8;
/// Most terms in one `search_term`.
const MAX_TERMS: usize = 256;

/// Valid `service` values (facts sheet §5.2).
pub const SERVICES: &[&str] = &[
    "alerts",
    "all",
    "directory",
    "ldap",
    "mdm",
    "notifications",
    "object_storage",
    "password_manager",
    "radius",
    "reports",
    "saas_app_management",
    "software",
    "sso",
    "systems",
    "access_management",
    "asset_management",
];

/// Top-level fields of a directory event (the spec's "Directory Attributes"); a `fields` or `search_term`
/// path is known when its first segment is one of them.
const KNOWN_FIELDS: &[&str] = &[
    "id",
    "event_type",
    "timestamp",
    "service",
    "organization",
    "success",
    "client_ip",
    "geoip",
    "useragent",
    "auth_method",
    "provider",
    "@version",
    "resource",
    "changes",
    "initiated_by",
    "correlation",
    "association",
    "system_group",
    "application",
    "mfa",
    "mfa_meta",
    "error_message",
    "system",
    "auth_context",
    "message_chain",
    "idm_client_id",
];
/// Fields the spec says cannot be searched.
const UNSEARCHABLE: &[&str] = &["changes", "useragent", "system_timestamp"];

const ROUTE_EVENTS: &str = "/insights/directory/v1/events";
const ROUTE_COUNT: &str = "/insights/directory/v1/events/count";

/// A parsed `EventQuery`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventQuery {
    pub services: Vec<String>,
    pub start_ms: i64,
    /// Exclusive.
    pub end_ms: Option<i64>,
    pub limit: usize,
    pub desc: bool,
    pub fields: Option<Vec<String>>,
    pub search: Option<Term>,
    /// `(timestamp ms, id)` of the last event already seen.
    pub search_after: Option<(i64, String)>,
    pub skip: usize,
    pub text: Option<Text>,
}

/// A `search_term` tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    And(Vec<Term>),
    Or(Vec<Term>),
    /// None of the terms holds.
    Not(Vec<Term>),
    /// The value at `path` (dotted; arrays on the way match if any element does) is one of `values`.
    Is {
        path: String,
        values: Vec<String>,
    },
}

/// `q` or `exact_match`.
#[derive(Debug, Clone, PartialEq)]
pub enum Text {
    /// Some string value contains it (case-insensitively).
    Contains(String),
    /// Some string value is it (case-insensitively).
    Exact(String),
}

/// One answer of `/events`.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    pub rows: Vec<Value>,
    /// What `X-Search_after` says.
    pub cursor: Value,
}

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(ROUTE_EVENTS, post(events))
        .route(ROUTE_COUNT, post(count_events))
}

// --- handlers ---

/// Which events a query can see: those older than the ingestion lag, within the retention.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Visibility {
    pub lag_ms: i64,
    pub retention_ms: i64,
}

/// The plan check, the body and the visibility in force: what both routes start from.
fn prepare(app: &App, body: &[u8], now_ms: i64) -> Result<(EventQuery, Visibility), ApiError> {
    let (enabled, lag_ms, retention_s) = {
        let f = app.faults();
        let c = f.config();
        (c.insights, c.insights_lag_ms, c.insights_retention_s)
    };
    if !enabled {
        return Err(ApiError::Forbidden(
            "Directory Insights is not available: the organization's plan does not include it"
                .into(),
        ));
    }
    let q = parse_query(&parse_object(body)?, now_ms)?;
    let visibility = Visibility {
        lag_ms: i64::try_from(lag_ms).unwrap_or(i64::MAX),
        retention_ms: i64::try_from(retention_s.saturating_mul(1000))
            .unwrap_or(RETENTION_MS)
            .min(RETENTION_MS),
    };
    Ok((q, visibility))
}

async fn events(State(app): State<Arc<App>>, Body(body): Body) -> Result<Response, ApiError> {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let (q, visibility) = prepare(&app, &body, now_ms)?;
    let page = run(&app.read().events, &q, now_ms, visibility);
    let request_id = app.request_ids.fetch_add(1, Ordering::Relaxed);
    let mut resp = json_response(StatusCode::OK, &page.rows);
    let h = resp.headers_mut();
    let mut set = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            h.insert(HeaderName::from_static(name), v);
        }
    };
    set("x-result-count", page.rows.len().to_string());
    set("x-limit", q.limit.to_string());
    set("x-sort", if q.desc { "DESC" } else { "ASC" }.to_owned());
    set("x-search_after", page.cursor.to_string());
    set(
        "x-request-id",
        format!("00000000-0000-4000-8000-{request_id:012x}"),
    );
    Ok(resp)
}

async fn count_events(State(app): State<Arc<App>>, Body(body): Body) -> Result<Response, ApiError> {
    let now_ms = jiff::Timestamp::now().as_millisecond();
    let (q, visibility) = prepare(&app, &body, now_ms)?;
    let n = count(&app.read().events, &q, now_ms, visibility);
    Ok(json_response(StatusCode::OK, &json!({ "count": n })))
}

// --- running a query ---

/// Events the query's service and time window admit, visible at `now_ms`, oldest first. An event that
/// arrives late ([`Event::late_ms`]) stays hidden that much longer than the others.
fn window<'a>(
    log: &'a EventLog,
    q: &EventQuery,
    now_ms: i64,
    visibility: Visibility,
) -> Option<impl DoubleEndedIterator<Item = &'a Event> + 'a> {
    if !q.services.iter().any(|s| s == "all" || s == SERVICE) {
        return None;
    }
    let from = q
        .start_ms
        .max(now_ms.saturating_sub(visibility.retention_ms));
    let visible_until = now_ms.saturating_sub(visibility.lag_ms).saturating_add(1);
    let until = q.end_ms.map_or(visible_until, |e| e.min(visible_until));
    Some(
        log.between(from, until)
            .filter(move |e| e.at_ms.saturating_add(e.late_ms) < visible_until),
    )
}

/// Whether `e` passes `search_term` and `q`/`exact_match`; renders it only when one of them is set.
fn admits(log: &EventLog, q: &EventQuery, e: &Event) -> bool {
    if q.search.is_none() && q.text.is_none() {
        return true;
    }
    let v = log.render(e);
    q.search.as_ref().is_none_or(|t| t.matches(&v)) && q.text.as_ref().is_none_or(|t| t.matches(&v))
}

/// One page of `q` at `now_ms`.
pub fn run(log: &EventLog, q: &EventQuery, now_ms: i64, visibility: Visibility) -> Page {
    let mut rows = Vec::new();
    let mut last: Option<&Event> = None;
    if let Some(events) = window(log, q, now_ms, visibility) {
        let after = q.search_after.as_ref();
        let ordered: Box<dyn Iterator<Item = &Event>> = if q.desc {
            Box::new(
                events
                    .rev()
                    .filter(move |e| after.is_none_or(|(ms, id)| e.key() < (*ms, id.as_str()))),
            )
        } else {
            Box::new(
                events.filter(move |e| after.is_none_or(|(ms, id)| e.key() > (*ms, id.as_str()))),
            )
        };
        for e in ordered
            .filter(|e| admits(log, q, e))
            .skip(q.skip)
            .take(q.limit)
        {
            let v = log.render(e);
            rows.push(match &q.fields {
                Some(fields) => project(&v, fields),
                None => v,
            });
            last = Some(e);
        }
    }
    let cursor = match (last, &q.search_after) {
        (Some(e), _) => json!([e.at_ms, e.id]),
        (None, Some((ms, id))) => json!([ms, id]),
        (None, None) => json!([]),
    };
    Page { rows, cursor }
}

/// How many events match `q` at `now_ms`, whatever its paging.
pub fn count(log: &EventLog, q: &EventQuery, now_ms: i64, visibility: Visibility) -> u64 {
    window(log, q, now_ms, visibility).map_or(0, |events| {
        events.filter(|e| admits(log, q, e)).count() as u64
    })
}

/// Keeps the `fields` paths of `v` that exist, nested as they were.
fn project(v: &Value, fields: &[String]) -> Value {
    let mut out = Map::new();
    for f in fields {
        let path: Vec<&str> = f.split('.').collect();
        let mut at = v;
        let mut found = true;
        for seg in &path {
            match at.get(*seg) {
                Some(x) => at = x,
                None => {
                    found = false;
                    break;
                }
            }
        }
        if !found {
            continue;
        }
        let mut slot = &mut out;
        for (i, seg) in path.iter().enumerate() {
            if i + 1 == path.len() {
                slot.insert((*seg).to_owned(), at.clone());
                break;
            }
            let entry = slot
                .entry((*seg).to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            match entry {
                Value::Object(m) => slot = m,
                _ => break,
            }
        }
    }
    Value::Object(out)
}

// === impl Term ===

impl Term {
    pub fn matches(&self, v: &Value) -> bool {
        match self {
            Term::And(ts) => ts.iter().all(|t| t.matches(v)),
            Term::Or(ts) => ts.iter().any(|t| t.matches(v)),
            Term::Not(ts) => !ts.iter().any(|t| t.matches(v)),
            Term::Is { path, values } => {
                let path: Vec<&str> = path.split('.').collect();
                let mut found = Vec::new();
                leaves(v, &path, &mut found);
                if found.is_empty() {
                    found.push(&Value::Null);
                }
                found
                    .iter()
                    .filter_map(|x| stored_text(x))
                    .any(|s| values.contains(&s))
            }
        }
    }
}

/// Values at `path` below `v`; arrays on the way contribute each element.
fn leaves<'a>(v: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    if let Value::Array(items) = v {
        for i in items {
            leaves(i, path, out);
        }
        return;
    }
    match path.split_first() {
        None => out.push(v),
        Some((head, rest)) => {
            if let Some(x) = v.get(*head) {
                leaves(x, rest, out);
            }
        }
    }
}

/// A scalar as the feed stores it for search: lower-cased text.
fn stored_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.to_lowercase()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Null => Some("null".into()),
        _ => None,
    }
}

// === impl Text ===

impl Text {
    pub fn matches(&self, v: &Value) -> bool {
        match v {
            Value::String(s) => {
                let s = s.to_lowercase();
                match self {
                    Text::Contains(t) => s.contains(t.as_str()),
                    Text::Exact(t) => s == *t,
                }
            }
            Value::Array(items) => items.iter().any(|i| self.matches(i)),
            Value::Object(m) => m.values().any(|i| self.matches(i)),
            _ => false,
        }
    }
}

// --- parsing ---

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(message.into())
}

/// Reads an `EventQuery` body, validated as of `now_ms`.
pub fn parse_query(body: &Map<String, Value>, now_ms: i64) -> Result<EventQuery, ApiError> {
    let services = parse_services(body.get("service"))?;
    let start_ms = match body.get("start_time") {
        None | Some(Value::Null) => {
            return Err(bad(
                "start_time is required: an RFC 3339 date-time such as 2020-01-01T14:00:00Z",
            ));
        }
        Some(v) => parse_time("start_time", v)?,
    };
    if start_ms > now_ms {
        return Err(bad("start_time must not be in the future"));
    }
    let end_ms = match body.get("end_time") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_time("end_time", v)?),
    };
    if end_ms.is_some_and(|e| e < start_ms) {
        return Err(bad("end_time must be after start_time"));
    }
    let search = match body.get("search_term") {
        None | Some(Value::Null) => None,
        Some(v) => Some(parse_search_term(v)?),
    };
    Ok(EventQuery {
        services,
        start_ms,
        end_ms,
        limit: parse_limit(body.get("limit")),
        desc: matches!(body.get("sort"), Some(Value::String(s)) if s.eq_ignore_ascii_case("desc")),
        fields: parse_fields(body.get("fields"))?,
        search,
        search_after: parse_search_after(body.get("search_after"))?,
        skip: parse_skip(body.get("skip"))?,
        text: parse_text(body)?,
    })
}

fn parse_services(v: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let valid = SERVICES.join(", ");
    let items = match v {
        None | Some(Value::Null) => {
            return Err(bad(format!(
                "service is required: a list of one or more of {valid}"
            )));
        }
        Some(Value::Array(items)) if !items.is_empty() => items,
        Some(_) => {
            return Err(bad(format!(
                "service must be a non-empty list of one or more of {valid}"
            )));
        }
    };
    items
        .iter()
        .map(|i| match i {
            Value::String(s) if SERVICES.contains(&s.as_str()) => Ok(s.clone()),
            other => Err(bad(format!(
                "invalid service {other}: valid values are {valid}"
            ))),
        })
        .collect()
}

/// RFC 3339; a date-time without an offset is taken as UTC, as the spec allows.
fn parse_time(name: &str, v: &Value) -> Result<i64, ApiError> {
    let invalid = || {
        bad(format!(
            "invalid {name} {v}: expected an RFC 3339 date-time such as 2020-01-01T14:00:00Z"
        ))
    };
    let Value::String(s) = v else {
        return Err(invalid());
    };
    if let Ok(ts) = s.parse::<jiff::Timestamp>() {
        return Ok(ts.as_millisecond());
    }
    let dt: jiff::civil::DateTime = s.parse().map_err(|_| invalid())?;
    jiff::tz::Offset::UTC
        .to_timestamp(dt)
        .map(|ts| ts.as_millisecond())
        .map_err(|_| invalid())
}

/// 1..=10 000 as given; anything else (absent, 0, negative, too large, not a number) the default.
fn parse_limit(v: Option<&Value>) -> usize {
    let n = match v {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.trim().parse::<u64>().ok(),
        _ => None,
    };
    match n {
        Some(n) if (1..=MAX_LIMIT as u64).contains(&n) => n as usize,
        _ => DEFAULT_LIMIT,
    }
}

fn parse_skip(v: Option<&Value>) -> Result<usize, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(0),
        Some(Value::Number(n)) => n
            .as_u64()
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            .ok_or_else(|| bad("skip must be a non-negative integer")),
        Some(_) => Err(bad("skip must be a non-negative integer")),
    }
}

fn known(path: &str) -> bool {
    let head = path.split('.').next().unwrap_or("");
    KNOWN_FIELDS.contains(&head)
}

/// `fields`: the known paths, or a 400 when the list is empty or names none.
fn parse_fields(v: Option<&Value>) -> Result<Option<Vec<String>>, ApiError> {
    let items = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(bad("fields must be a list of field names")),
    };
    let names: Vec<String> = items
        .iter()
        .filter_map(Value::as_str)
        .filter(|f| known(f))
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Err(bad(format!(
            "fields must name at least one known field, e.g. {}",
            KNOWN_FIELDS[..4].join(", ")
        )));
    }
    Ok(Some(names))
}

fn parse_search_after(v: Option<&Value>) -> Result<Option<(i64, String)>, ApiError> {
    let invalid = || {
        bad(
            "search_after must be the X-Search_after array of a previous answer, e.g. [1576181718000, \"id\"]",
        )
    };
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Array(items)) if items.is_empty() => Ok(None),
        Some(Value::Array(items)) => match items.as_slice() {
            [ms, Value::String(id)] => {
                let ms = match ms {
                    Value::Number(n) => n.as_i64(),
                    Value::String(s) => s.parse::<i64>().ok(),
                    _ => None,
                }
                .ok_or_else(invalid)?;
                Ok(Some((ms, id.clone())))
            }
            _ => Err(invalid()),
        },
        Some(_) => Err(invalid()),
    }
}

fn parse_text(body: &Map<String, Value>) -> Result<Option<Text>, ApiError> {
    let get = |name: &str| match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.to_lowercase())),
        Some(_) => Err(bad(format!("{name} must be a string"))),
    };
    match (get("q")?, get("exact_match")?) {
        (Some(_), Some(_)) => Err(bad("q and exact_match cannot be combined")),
        (Some(q), None) => Ok(Some(Text::Contains(q))),
        (None, Some(e)) => Ok(Some(Text::Exact(e))),
        (None, None) => Ok(None),
    }
}

/// `search_term`: exactly one of `and`, `or`, `not`.
fn parse_search_term(v: &Value) -> Result<Term, ApiError> {
    let mut terms = 0;
    let term = match v {
        Value::Object(m) if m.len() == 1 => parse_element(m, 0, &mut terms)?,
        _ => {
            return Err(bad(
                "search_term must be an object with exactly one of and, or, not",
            ));
        }
    };
    Ok(term)
}

/// One object of a conjunction: `{"and"|"or"|"not": [...]}` nests, anything else is `{field: value, ...}`
/// (several fields in one object must all hold).
fn parse_element(
    m: &Map<String, Value>,
    depth: usize,
    terms: &mut usize,
) -> Result<Term, ApiError> {
    if depth > MAX_DEPTH {
        return Err(bad(format!(
            "search_term is nested deeper than {MAX_DEPTH} levels"
        )));
    }
    if m.len() == 1
        && let Some((op, list)) = m.iter().next()
        && matches!(op.as_str(), "and" | "or" | "not")
    {
        let parts = parse_list(op, list, depth + 1, terms)?;
        return Ok(match op.as_str() {
            "and" => Term::And(parts),
            "or" => Term::Or(parts),
            _ => Term::Not(parts),
        });
    }
    let mut parts = Vec::with_capacity(m.len());
    for (field, value) in m {
        parts.push(parse_is(field, value, terms)?);
    }
    Ok(match parts.len() {
        1 => parts.remove(0),
        _ => Term::And(parts),
    })
}

/// The list of a conjunction: an array of objects, or one object of field terms.
fn parse_list(
    op: &str,
    list: &Value,
    depth: usize,
    terms: &mut usize,
) -> Result<Vec<Term>, ApiError> {
    let elements: Vec<Map<String, Value>> = match list {
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::Object(m) => Ok(m.clone()),
                _ => Err(bad(format!(
                    "search_term {op}: each element must be an object"
                ))),
            })
            .collect::<Result<_, _>>()?,
        Value::Object(m) => m
            .iter()
            .map(|(k, v)| {
                let mut one = Map::new();
                one.insert(k.clone(), v.clone());
                one
            })
            .collect(),
        _ => return Err(bad(format!("search_term {op} must be a list"))),
    };
    let mut seen: Vec<&str> = Vec::new();
    for e in &elements {
        for k in e.keys() {
            if matches!(k.as_str(), "and" | "or" | "not") {
                continue;
            }
            if seen.contains(&k.as_str()) {
                return Err(bad(format!(
                    "search_term {op}: field {k} may not repeat in one list; give its values as an array"
                )));
            }
            seen.push(k);
        }
    }
    elements
        .iter()
        .map(|e| parse_element(e, depth, terms))
        .collect()
}

fn parse_is(field: &str, value: &Value, terms: &mut usize) -> Result<Term, ApiError> {
    *terms += 1;
    if *terms > MAX_TERMS {
        return Err(bad(format!("search_term has more than {MAX_TERMS} terms")));
    }
    let head = field.split('.').next().unwrap_or("");
    if UNSEARCHABLE.contains(&head) {
        return Err(bad(format!("{head} cannot be searched")));
    }
    let scalar = |v: &Value| match v {
        Value::String(s) => Ok(s.clone()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Null => Ok("null".to_owned()),
        _ => Err(bad(format!(
            "search_term {field}: a value must be a string, number, boolean or a list of them"
        ))),
    };
    let values = match value {
        Value::Array(items) => items.iter().map(scalar).collect::<Result<_, _>>()?,
        v => vec![scalar(v)?],
    };
    Ok(Term::Is {
        path: field.to_owned(),
        values,
    })
}

#[cfg(test)]
#[path = "insights_tests.rs"]
mod tests;
