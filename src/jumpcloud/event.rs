//! Directory Insights events (facts sheet §5.4) as the feed sends them: only the fields a cache acts on.
//!
//! Reading is lenient in a stricter sense than the other DTOs: any JSON object reads as an event, whatever its
//! fields hold (a field of the wrong type reads as absent), so one odd event never fails a page of them. What
//! a reader cannot act on (no id, no time it can read, an edge without ends) is for the caller to notice; see
//! [`JcEvent::at`]. Must not know what the events mean to a cache.

use jiff::Timestamp;
use serde::{Deserialize, Deserializer};

/// One event of the `directory` service.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct JcEvent {
    #[serde(deserialize_with = "text")]
    pub id: String,
    /// e.g. `user_update`, `association_change`; matched case-insensitively by readers.
    #[serde(deserialize_with = "text")]
    pub event_type: String,
    /// RFC 3339, UTC.
    #[serde(deserialize_with = "text")]
    pub timestamp: String,
    /// `false` for an attempt that changed nothing.
    #[serde(deserialize_with = "lenient")]
    pub success: Option<bool>,
    /// What the event is about: `{type, id}` (`systemuser`, `user_group`, a directory's type).
    #[serde(deserialize_with = "lenient")]
    pub resource: Option<JcEventResource>,
    /// For `association_change`: the edge added or removed.
    #[serde(deserialize_with = "lenient")]
    pub association: Option<JcAssociation>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct JcEventResource {
    #[serde(rename = "type", deserialize_with = "text")]
    pub kind: String,
    #[serde(deserialize_with = "text")]
    pub id: String,
}

/// `association`: `op` (`add` / `remove`) and the edge's two ends.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct JcAssociation {
    #[serde(deserialize_with = "text")]
    pub op: String,
    #[serde(deserialize_with = "lenient")]
    pub connection: Option<JcConnection>,
}

#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct JcConnection {
    #[serde(deserialize_with = "lenient")]
    pub from: Option<JcEventEnd>,
    #[serde(deserialize_with = "lenient")]
    pub to: Option<JcEventEnd>,
}

/// One end of an edge: its graph type (`user`, `user_group`, `active_directory`, `g_suite`, `office_365`, …;
/// JumpCloud spells them in either case) and the object's id.
#[derive(Clone, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(default)]
pub struct JcEventEnd {
    #[serde(rename = "type", deserialize_with = "text")]
    pub kind: String,
    #[serde(deserialize_with = "text")]
    pub object_id: String,
}

impl JcEvent {
    /// An event read from one element of the feed's array: anything but an object reads as an event with
    /// no id (which no reader can place).
    pub fn from_value(v: serde_json::Value) -> JcEvent {
        if !v.is_object() {
            return JcEvent::default();
        }
        serde_json::from_value(v).unwrap_or_default()
    }

    /// When it happened; `None` when `timestamp` is not RFC 3339 (a time without an offset is UTC, as the
    /// feed's query accepts).
    pub fn at(&self) -> Option<Timestamp> {
        let t = self.timestamp.trim();
        if let Ok(ts) = t.parse::<Timestamp>() {
            return Some(ts);
        }
        let civil: jiff::civil::DateTime = t.parse().ok()?;
        jiff::tz::Offset::UTC.to_timestamp(civil).ok()
    }

    /// Whether the change took place (an event without `success` did).
    pub fn succeeded(&self) -> bool {
        self.success != Some(false)
    }
}

/// A string; anything else (a number, `null`, an object) reads as empty.
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => s,
        _ => String::new(),
    })
}

/// `T` when the value reads as one, else absent. Only an object reads as a struct (serde would read an array
/// as its fields in order).
fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    let v = serde_json::Value::deserialize(d)?;
    if v.is_array() {
        return Ok(None);
    }
    Ok(serde_json::from_value(v).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_feed_shape_reads_and_odd_fields_read_as_absent() {
        let e = JcEvent::from_value(json!({
            "id": "e1", "event_type": "association_change", "timestamp": "2024-05-01T10:00:00.123Z",
            "service": "directory", "success": true, "resource": {"type": "user_group", "id": "g1", "name": "x"},
            "association": {"op": "add", "connection": {
                "from": {"type": "user_group", "object_id": "g1", "name": "Eng"},
                "to": {"type": "user", "object_id": "u1"}}},
            "changes": [{"field": "x", "from": 1, "to": 2}], "geoip": {}
        }));
        assert_eq!(e.id, "e1");
        assert_eq!(e.at().unwrap().as_millisecond(), 1_714_557_600_123);
        let c = e.association.unwrap().connection.unwrap();
        assert_eq!(c.from.unwrap().object_id, "g1");
        assert_eq!(c.to.unwrap().kind, "user");
        let odd = JcEvent::from_value(json!({
            "id": 7, "event_type": "user_update", "timestamp": "yesterday", "success": "yes",
            "resource": "u1", "association": [1]
        }));
        assert_eq!(odd.id, "");
        assert_eq!(odd.at(), None);
        assert!(odd.succeeded(), "an unreadable success counts as a change");
        assert_eq!((odd.resource, odd.association), (None, None));
        assert_eq!(
            JcEvent::from_value(json!("not an object")),
            JcEvent::default()
        );
        let failed = JcEvent::from_value(json!({"id": "e2", "success": false}));
        assert!(!failed.succeeded());
        let no_offset = JcEvent::from_value(json!({"timestamp": "2024-05-01T10:00:00"}));
        assert_eq!(no_offset.at().unwrap().as_second(), 1_714_557_600);
    }
}
