//! `startIndex` / `count` (RFC 7644 §3.4.2.4): 1-based index paging over an ordered result set.
//!
//! Owns reading the two parameters the way Table 6 says a server SHALL read them, and the slice of
//! the result set they select. Knows nothing about what is being paged.

use std::ops::Range;

use crate::scim::error::ScimError;

/// A page request after the RFC's interpretation rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    /// 1-based index of the first result (at least 1).
    pub start_index: usize,
    /// Most results to return; `None` when the client gave no `count` (every match).
    pub count: Option<usize>,
}

impl Default for Paging {
    fn default() -> Self {
        Paging {
            start_index: 1,
            count: None,
        }
    }
}

// === impl Paging ===

impl Paging {
    /// Read the raw query parameters.
    ///
    /// `startIndex` below 1 is 1 and a negative `count` is 0 (RFC 7644 Table 6). A `count` above
    /// `max_count` is capped to it: the RFC lets a server return fewer results than asked, and
    /// refusing would break clients that ask for large pages. Without `count`, every match is
    /// returned. A blank parameter counts as absent; anything else that is not an integer is
    /// 400 `invalidValue`.
    pub fn from_query(
        start_index: Option<&str>,
        count: Option<&str>,
        max_count: usize,
    ) -> Result<Paging, ScimError> {
        let start_index = parse_integer("startIndex", start_index)?;
        let count = parse_integer("count", count)?;
        Ok(Paging::from_numbers(start_index, count, max_count))
    }

    /// The same rules for numbers already parsed (a `SearchRequest` body).
    pub fn from_numbers(start_index: Option<i64>, count: Option<i64>, max_count: usize) -> Paging {
        let start_index =
            start_index.map_or(1, |s| usize::try_from(s.max(1)).unwrap_or(usize::MAX));
        let count = count.map(|c| {
            usize::try_from(c.max(0))
                .unwrap_or(usize::MAX)
                .min(max_count)
        });
        Paging { start_index, count }
    }

    /// The indices of `0..total` this page covers; empty past the end or for `count=0`.
    pub fn window(&self, total: usize) -> Range<usize> {
        let start = (self.start_index - 1).min(total);
        let end = match self.count {
            Some(count) => start.saturating_add(count).min(total),
            None => total,
        };
        start..end
    }
}

/// An optional integer parameter; out-of-range digit strings saturate instead of failing.
fn parse_integer(name: &str, raw: Option<&str>) -> Result<Option<i64>, ScimError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Ok(n) = raw.parse::<i64>() {
        return Ok(Some(n));
    }
    let (negative, digits) = match raw.as_bytes()[0] {
        b'-' => (true, &raw[1..]),
        b'+' => (false, &raw[1..]),
        _ => (false, raw),
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(Some(if negative { i64::MIN } else { i64::MAX }));
    }
    Err(ScimError::invalid_value(format!(
        "{name} must be an integer, got {raw:?}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Raw = Option<&'static str>;

    fn page(start: Option<&str>, count: Option<&str>) -> Paging {
        Paging::from_query(start, count, 1000).unwrap()
    }

    #[test]
    fn interpretation_rules() {
        let rows: &[(Raw, Raw, usize, Option<usize>)] = &[
            (None, None, 1, None),
            (Some("1"), Some("10"), 1, Some(10)),
            (Some("0"), None, 1, None),
            (Some("-5"), None, 1, None),
            (Some(" 7 "), Some("+3"), 7, Some(3)),
            (None, Some("-1"), 1, Some(0)),
            (None, Some("0"), 1, Some(0)),
            (None, Some("5000"), 1, Some(1000)),
            (None, Some("99999999999999999999999"), 1, Some(1000)),
            (Some("-99999999999999999999999"), None, 1, None),
            (Some(""), Some(" "), 1, None),
        ];
        for (start, count, want_start, want_count) in rows {
            assert_eq!(
                page(*start, *count),
                Paging {
                    start_index: *want_start,
                    count: *want_count
                },
                "{start:?} {count:?}"
            );
        }
        for (start, count) in [
            (Some("x"), None),
            (None, Some("1.5")),
            (None, Some("ten")),
            (Some("-"), None),
        ] {
            let err = Paging::from_query(start, count, 1000).unwrap_err();
            assert_eq!(
                err.scim_type,
                Some(scim_v2::models::errors::ScimType::InvalidValue)
            );
        }
        assert_eq!(
            Paging::from_numbers(Some(0), Some(2000), 100),
            Paging {
                start_index: 1,
                count: Some(100)
            }
        );
        assert_eq!(Paging::default(), page(None, None));
    }

    #[test]
    fn windows() {
        let rows: &[(Raw, Raw, usize, Range<usize>)] = &[
            (None, None, 25, 0..25),
            (Some("1"), Some("10"), 25, 0..10),
            (Some("11"), Some("10"), 25, 10..20),
            (Some("21"), Some("10"), 25, 20..25),
            (Some("26"), Some("10"), 25, 25..25),
            (Some("500"), None, 25, 25..25),
            (Some("3"), Some("0"), 25, 2..2),
            (None, Some("5"), 0, 0..0),
        ];
        for (start, count, total, want) in rows {
            assert_eq!(
                page(*start, *count).window(*total),
                *want,
                "{start:?} {count:?} {total}"
            );
        }
        let huge = Paging {
            start_index: 2,
            count: Some(usize::MAX),
        };
        assert_eq!(huge.window(10), 1..10);
    }
}
