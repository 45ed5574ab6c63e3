//! Identifiers and timestamps as the API spells them: 24-hex ObjectId-like ids that sort by creation time,
//! and ISO-8601 UTC timestamps with milliseconds.
//!
//! Owns only the formats; which object gets which id, and when, is the store's and the seed's business.

/// Formats a timestamp as the API does: ISO-8601 UTC with milliseconds and `Z`.
pub fn iso_millis(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Hands out 24-hex ObjectId-like ids: 4 bytes of seconds, 5 bytes fixed per organisation, 3 bytes counter.
/// Ids therefore sort by creation time, as MongoDB's do.
#[derive(Debug, Clone)]
pub struct IdGen {
    machine: u64,
    counter: u32,
}

// === impl IdGen ===

impl IdGen {
    pub fn new(machine: u64, counter: u32) -> Self {
        Self {
            machine: machine & 0xff_ffff_ffff,
            counter: counter & 0xff_ffff,
        }
    }

    /// A fresh id stamped with `unix_secs`.
    pub fn next(&mut self, unix_secs: i64) -> String {
        let id = format!(
            "{:08x}{:010x}{:06x}",
            unix_secs.clamp(0, i64::from(u32::MAX)) as u32,
            self.machine,
            self.counter
        );
        self.counter = (self.counter + 1) & 0xff_ffff;
        id
    }
}

/// Whether `s` looks like an ObjectId.
pub fn is_object_id(s: &str) -> bool {
    s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit())
}
