//! Response helpers shared by the SCIM handlers: content type, snapshot headers, ETags.

use std::borrow::Cow;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;

use crate::cache::snapshot::etag_listed;
use crate::cache::{Entry, Snapshot, age_seconds};
use crate::scim::ResourceKind;
use crate::scim::SCIM_CONTENT_TYPE;
use crate::scim::attrs::AttrSelection;
use crate::scim::error::ScimError;
use crate::scim::list::QueryParams;
use axum::body::Bytes;

/// A response with a SCIM JSON body.
pub fn scim_response(status: StatusCode, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(SCIM_CONTENT_TYPE),
    );
    resp
}

/// The names of the snapshot headers, parsed once.
pub static X_SNAPSHOT_VERSION: HeaderName = HeaderName::from_static("x-snapshot-version");
pub static X_SNAPSHOT_AGE: HeaderName = HeaderName::from_static("x-snapshot-age");

/// `X-Snapshot-Version` and `X-Snapshot-Age` on every read. The age is since the version was known to
/// match JumpCloud: its read, or a later poll of the Directory Insights feed that found nothing to change
/// (the version was current then, whatever its data's read time says).
pub fn add_snapshot_headers(resp: &mut Response, snap: &Snapshot, store: &crate::cache::Store) {
    let now = Timestamp::now();
    let mut age = age_seconds(snap.taken_at, now);
    if let Some(at) = store.confirmed_for(snap.version) {
        age = age.min(age_seconds(at, now));
    }
    let h = resp.headers_mut();
    h.insert(X_SNAPSHOT_VERSION.clone(), HeaderValue::from(snap.version));
    h.insert(X_SNAPSHOT_AGE.clone(), HeaderValue::from(age));
}

/// Whether an `If-None-Match` header matches `etag` (weak comparison, `*` matches anything).
pub fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| etag_listed(v, etag))
}

/// The query string's parameters this service reads: the list parameters and RFC 9865's `cursor`.
#[derive(Debug, Default)]
pub struct UrlQuery {
    pub params: QueryParams,
    pub cursor: Option<String>,
}

/// Read a query string: names are matched case-insensitively (clients differ: `startIndex`,
/// `startindex`), values are decoded, the last of a repeated name wins and names this service does not
/// read are ignored. Every pair must be valid percent-encoding. Read straight into [`UrlQuery`]'s fields:
/// no map is built, and a name or value without `%` or `+` is not copied to be compared.
pub fn url_query(raw: Option<&str>) -> Result<UrlQuery, ScimError> {
    let mut out = UrlQuery::default();
    let Some(raw) = raw else { return Ok(out) };
    for pair in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k).ok_or_else(|| {
            ScimError::invalid_syntax(format!(
                "query parameter {k:?} is not valid percent-encoding"
            ))
        })?;
        let v = percent_decode(v).ok_or_else(|| {
            ScimError::invalid_syntax(format!(
                "the value of query parameter {k:?} is not valid percent-encoding"
            ))
        })?;
        let p = &mut out.params;
        let slot = [
            ("filter", &mut p.filter),
            ("attributes", &mut p.attributes),
            ("excludedattributes", &mut p.excluded_attributes),
            ("sortby", &mut p.sort_by),
            ("sortorder", &mut p.sort_order),
            ("startindex", &mut p.start_index),
            ("count", &mut p.count),
            ("cursor", &mut out.cursor),
        ]
        .into_iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&k));
        if let Some((_, slot)) = slot {
            *slot = Some(v.into_owned());
        }
    }
    Ok(out)
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space); the text itself when there is nothing
/// to decode.
fn percent_decode(s: &str) -> Option<Cow<'_, str>> {
    let bytes = s.as_bytes();
    if !bytes.iter().any(|b| matches!(b, b'%' | b'+')) {
        return Some(Cow::Borrowed(s));
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                out.push(hex_digit(hex[0])? << 4 | hex_digit(hex[1])?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok().map(Cow::Owned)
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b).to_digit(16).map(|d| d as u8)
}

/// `attributes` / `excludedAttributes` from a query string, for one resource kind.
pub fn selection(raw: Option<&str>, kind: ResourceKind) -> Result<AttrSelection, ScimError> {
    let q = url_query(raw)?.params;
    AttrSelection::parse(
        q.attributes.as_deref(),
        q.excluded_attributes.as_deref(),
        kind,
    )
}

/// An entry as served under a projection: its pre-serialised bytes when nothing is projected away.
pub fn entry_bytes(e: &Entry, attrs: &AttrSelection, kind: ResourceKind) -> Bytes {
    if attrs.is_default() {
        e.bytes.clone()
    } else {
        let resource = e.to_json_skipping(&|key| attrs.drops_core(kind, key));
        Bytes::from(serde_json::to_vec(&attrs.project(&resource, kind)).unwrap_or_default())
    }
}

/// Whether a JSON text nests arrays and objects deeper than `limit` (strings are skipped; the text need
/// not be valid JSON). One pass, no allocation: it runs before the parser, which would recurse.
pub fn nests_deeper_than(bytes: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// A JSON request body as a SCIM endpoint takes it: not nested deeper than `depth`, valid JSON, and an
/// object (a resource, a PatchOp or a SearchRequest). Every refusal is 400 `invalidSyntax`.
pub fn json_object(body: &[u8], depth: usize) -> Result<serde_json::Value, ScimError> {
    if nests_deeper_than(body, depth) {
        return Err(ScimError::invalid_syntax(format!(
            "the request body nests arrays and objects more than {depth} deep (limits.json_depth)"
        )));
    }
    let v: serde_json::Value = serde_json::from_slice(body).map_err(|e| {
        ScimError::invalid_syntax(format!("the request body is not valid JSON: {e}"))
    })?;
    if !v.is_object() {
        return Err(ScimError::invalid_syntax(
            "the request body must be a JSON object (a SCIM resource, a PatchOp or a SearchRequest)",
        ));
    }
    Ok(v)
}

/// A SCIM error as a response (for `?`-style returns in handlers).
pub fn error(e: ScimError) -> Response {
    e.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_names_are_case_insensitive_and_values_decoded() {
        let q = url_query(Some(
            "filter=userName+eq+%22a%40b.c%22&StartIndex=2&count=&other=x&COUNT=5&Cursor=",
        ))
        .unwrap();
        assert_eq!(q.params.filter.as_deref(), Some("userName eq \"a@b.c\""));
        assert_eq!(q.params.start_index.as_deref(), Some("2"));
        // The last of a repeated name wins.
        assert_eq!(q.params.count.as_deref(), Some("5"));
        assert_eq!(q.cursor.as_deref(), Some(""));
        assert_eq!(q.params.sort_by, None);
        assert!(url_query(Some("filter=%zz")).is_err());
        assert!(url_query(Some("unknown=%zz")).is_err());
        assert!(url_query(Some("%zz=1")).is_err());
        assert!(url_query(Some("filter=%4")).is_err());
        let q = url_query(Some("filter=a%2bb%2B%e2%82%ac")).unwrap();
        assert_eq!(q.params.filter.as_deref(), Some("a+b+€"));
        assert!(url_query(Some("filter=%e2%82")).is_err(), "not UTF-8");
    }

    #[test]
    fn json_bodies_are_bounded_objects() {
        assert!(!nests_deeper_than(br#"{"a": [{"b": "[[[[[["}]}"#, 3));
        assert!(nests_deeper_than(br#"{"a": [{"b": [1]}]}"#, 3));
        assert!(!nests_deeper_than(br#"{"a": "\"[[[[", "b": 1}"#, 1));
        let deep = "[".repeat(100_000);
        let e = json_object(deep.as_bytes(), 32).unwrap_err();
        assert!(e.detail.contains("limits.json_depth"), "{}", e.detail);
        for bad in [&b"[1, 2]"[..], b"\"x\"", b"nope"] {
            let e = json_object(bad, 32).unwrap_err();
            assert_eq!(
                e.scim_type,
                Some(scim_v2::models::errors::ScimType::InvalidSyntax)
            );
        }
        assert!(json_object(br#"{"userName": "a"}"#, 32).is_ok());
    }

    #[test]
    fn etag_conditions() {
        let mut h = HeaderMap::new();
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_static("W/\"abc\", W/\"def\""),
        );
        assert!(if_none_match(&h, "W/\"def\""));
        assert!(!if_none_match(&h, "W/\"xyz\""));
        // If-Match uses the same list comparison (the write path's check).
        assert!(etag_listed("W/\"abc\"", "W/\"abc\""));
        assert!(etag_listed("\"abc\"", "W/\"abc\""));
        assert!(etag_listed("*", "W/\"abc\""));
        assert!(!etag_listed("W/\"abc\"", "W/\"other\""));
    }
}
