//! List queries and answers: the parameters of `GET /Users?…` and of a `POST /.search` body
//! (RFC 7644 §3.4.2, §3.4.3) read into one [`Query`], and the `ListResponse` envelope.
//!
//! Owns turning raw parameters into parsed, schema-checked parts (filter, attribute selection,
//! sort, paging) and the envelope's integer fields. Knows nothing of where resources are stored:
//! the caller filters, sorts and pages with the parts it gets back.

use scim_v2::models::others::SearchRequest;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::scim::attrs::AttrSelection;
use crate::scim::error::ScimError;
use crate::scim::filter::{CompiledFilter, parse_and_compile};
use crate::scim::paging::Paging;
use crate::scim::schema::ResourceKind;
use crate::scim::sort::SortSpec;

/// `schemas` URN of a list answer.
pub const LIST_RESPONSE_URN: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// `schemas` URN of a `POST /.search` body.
pub const SEARCH_REQUEST_URN: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The raw list parameters, as the query string carries them (also the target of a search body).
/// Deserialises from a query string with the RFC's parameter names.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryParams {
    /// `filter`
    pub filter: Option<String>,
    /// `attributes`, comma-separated.
    pub attributes: Option<String>,
    /// `excludedAttributes`, comma-separated.
    pub excluded_attributes: Option<String>,
    /// `sortBy`
    pub sort_by: Option<String>,
    /// `sortOrder`
    pub sort_order: Option<String>,
    /// `startIndex`, unparsed.
    pub start_index: Option<String>,
    /// `count`, unparsed.
    pub count: Option<String>,
}

/// A list request read and checked for one resource kind.
#[derive(Debug, Clone)]
pub struct Query {
    /// The filter, compiled; `None` lists everything.
    pub filter: Option<CompiledFilter>,
    /// What each returned resource carries.
    pub attributes: AttrSelection,
    /// The order; `None` leaves the caller's (stable) order.
    pub sort: Option<SortSpec>,
    /// The window.
    pub paging: Paging,
}

// === impl QueryParams ===

impl QueryParams {
    /// Read a `POST /.search` body (RFC 7644 §3.4.3) with `scim_v2`'s `SearchRequest` model.
    ///
    /// Lenient where clients are: a body without `schemas` is accepted; `attributes` may be a list
    /// or a comma-separated string. A body that is not such an object is 400 `invalidSyntax`.
    pub fn from_search_body(body: &[u8]) -> Result<QueryParams, ScimError> {
        let mut value: Value = serde_json::from_slice(body).map_err(|e| {
            ScimError::invalid_syntax(format!("the search request is not JSON: {e}"))
        })?;
        let Some(obj) = value.as_object_mut() else {
            return Err(ScimError::invalid_syntax(
                "the search request must be a JSON object",
            ));
        };
        obj.entry("schemas")
            .or_insert_with(|| json!([SEARCH_REQUEST_URN]));
        // Paging numbers are read as the query string's are (out-of-range integers saturate), not by the
        // model's integer types.
        let mut number = |key: &str| -> Result<Option<String>, ScimError> {
            let found = obj
                .keys()
                .find(|k| k.eq_ignore_ascii_case(key))
                .cloned()
                .and_then(|k| obj.remove(&k));
            match found {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
                    (Some(i), _, _) => Ok(Some(i.to_string())),
                    (None, Some(u), _) => Ok(Some(u.to_string())),
                    // Beyond 64 bits serde_json reads a float: a whole one saturates like its digits would.
                    (None, None, Some(f)) if f.is_finite() && f.fract() == 0.0 => {
                        Ok(Some(if f < 0.0 { i64::MIN } else { i64::MAX }.to_string()))
                    }
                    _ => Err(ScimError::invalid_value(format!(
                        "{key} must be an integer, got {n}"
                    ))),
                },
                Some(Value::String(s)) => Ok(Some(s)),
                Some(other) => Err(ScimError::invalid_value(format!(
                    "{key} must be an integer, got {}",
                    crate::scim::error::excerpt(&other.to_string())
                ))),
            }
        };
        let start_index = number("startIndex")?;
        let count = number("count")?;
        for key in ["attributes", "excludedAttributes"] {
            if let Some(Value::String(s)) = obj.get(key) {
                let list: Vec<Value> = s.split(',').map(|n| Value::from(n.trim())).collect();
                obj.insert(key.to_owned(), Value::Array(list));
            }
        }
        let request: SearchRequest<String> = serde_json::from_value(value)
            .map_err(|e| ScimError::invalid_syntax(format!("invalid search request: {e}")))?;
        let join = |list: &[String]| (!list.is_empty()).then(|| list.join(","));
        Ok(QueryParams {
            filter: request.filter,
            attributes: join(&request.attributes),
            excluded_attributes: join(&request.excluded_attributes),
            sort_by: request.sort_by,
            sort_order: request.sort_order.map(|o| match o {
                scim_v2::models::others::SortOrder::Ascending => "ascending".to_owned(),
                scim_v2::models::others::SortOrder::Descending => "descending".to_owned(),
            }),
            start_index,
            count,
        })
    }
}

// === impl Query ===

impl Query {
    /// Parse every part for `kind`; the first problem found is the error. `max_count` caps
    /// `count`. A root-level `/.search` over both kinds parses once per kind.
    pub fn parse(
        params: &QueryParams,
        kind: ResourceKind,
        max_count: usize,
    ) -> Result<Query, ScimError> {
        let filter = match params.filter.as_deref() {
            Some(raw) if !raw.trim().is_empty() => Some(parse_and_compile(raw, kind)?),
            _ => None,
        };
        Ok(Query {
            filter,
            attributes: AttrSelection::parse(
                params.attributes.as_deref(),
                params.excluded_attributes.as_deref(),
                kind,
            )?,
            sort: SortSpec::parse(
                params.sort_by.as_deref(),
                params.sort_order.as_deref(),
                kind,
            )?,
            paging: Paging::from_query(
                params.start_index.as_deref(),
                params.count.as_deref(),
                max_count,
            )?,
        })
    }
}

/// Where one page of a `ListResponse` stands in its result set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Position<'a> {
    /// Index paging (RFC 7644 §3.4.2.4): the page's 1-based `startIndex`.
    Index(usize),
    /// Cursor paging (RFC 9865): the cursors of the pages after and before this one, when there are such.
    Cursors {
        next: Option<&'a str>,
        previous: Option<&'a str>,
    },
}

/// A `ListResponse` around resources already serialised as JSON objects: `totalResults` (all matches) and
/// `itemsPerPage` (this page's size) as JSON integers, the page's [`Position`], and `Resources` (always
/// present, possibly empty). For small lists; a page of the directory is streamed from its parts instead
/// ([`list_head`], the resources with `,` between them, [`LIST_TAIL`]), copying no resource.
pub fn list_response<B: AsRef<[u8]>>(
    total: usize,
    position: Position<'_>,
    resources: &[B],
) -> Vec<u8> {
    list_around(list_head(total, resources.len(), position), resources)
}

/// A `ListResponse` from its envelope ([`list_head`]) and its resources, serialised already.
pub fn list_around<B: AsRef<[u8]>>(head: Vec<u8>, resources: &[B]) -> Vec<u8> {
    let size: usize = resources.iter().map(|b| b.as_ref().len() + 1).sum();
    let mut out = Vec::with_capacity(head.len() + size + LIST_TAIL.len());
    out.extend_from_slice(&head);
    for (i, b) in resources.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b.as_ref());
    }
    out.extend_from_slice(LIST_TAIL);
    out
}

/// What closes a `ListResponse` after its last resource.
pub const LIST_TAIL: &[u8] = b"]}";

/// A `ListResponse` up to its first resource: the one place the envelope is written.
///
/// Written piece by piece rather than through format strings: every list answer starts with one.
pub fn list_head(total: usize, items_per_page: usize, position: Position<'_>) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    out.extend_from_slice(b"{\"schemas\":[\"");
    out.extend_from_slice(LIST_RESPONSE_URN.as_bytes());
    out.extend_from_slice(b"\"],\"totalResults\":");
    push_decimal(&mut out, total);
    out.extend_from_slice(b",\"itemsPerPage\":");
    push_decimal(&mut out, items_per_page);
    out.push(b',');
    match position {
        Position::Index(start) => {
            out.extend_from_slice(b"\"startIndex\":");
            push_decimal(&mut out, start.max(1));
            out.push(b',');
        }
        Position::Cursors { next, previous } => {
            for (name, cursor) in [("nextCursor", next), ("previousCursor", previous)] {
                if let Some(c) = cursor {
                    out.extend_from_slice(format!("\"{name}\":{},", Value::from(c)).as_bytes());
                }
            }
        }
    }
    out.extend_from_slice(b"\"Resources\":[");
    out
}

/// `n` in decimal at the end of `out`.
fn push_decimal(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

#[cfg(test)]
#[path = "list_tests.rs"]
mod tests;
