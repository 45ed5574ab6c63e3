//! Request counters behind `GET/DELETE /__emulator/stats`: per route template and status, plus a total.
//!
//! Counts what the client saw, faults and 401s included; the control endpoints themselves are never counted.

use std::collections::BTreeMap;

use serde::Serialize;

/// Counts since start or the last reset.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Stats {
    total: u64,
    /// `"GET /api/systemusers"` → `"200"` → count. Ordered maps keep the JSON stable to read and diff.
    routes: BTreeMap<String, BTreeMap<String, u64>>,
}

// === impl Stats ===

impl Stats {
    /// Counts one answer with `status` on `route`.
    pub fn record(&mut self, route: &str, status: u16) {
        self.total += 1;
        let statuses = match self.routes.get_mut(route) {
            Some(s) => s,
            None => self.routes.entry(route.to_owned()).or_default(),
        };
        *statuses.entry(status.to_string()).or_insert(0) += 1;
    }

    pub fn reset(&mut self) {
        *self = Stats::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_resets() {
        let mut s = Stats::default();
        s.record("GET /a", 200);
        s.record("GET /a", 502);
        s.record("GET /a", 200);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"total": 3, "routes": {"GET /a": {"200": 2, "502": 1}}})
        );
        s.reset();
        assert_eq!(s, Stats::default());
    }
}
