//! The last hour, minute by minute: upstream answers and requests served by class, for the status page's
//! charts. Sixty slots, each keyed by its minute since the epoch, so a slot from an hour ago is recognised
//! and cleared rather than added to: memory is fixed whatever the traffic.

/// A class of HTTP status, as the status page counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// 2xx and 3xx.
    Ok,
    /// 4xx other than 429.
    Refused,
    /// 429.
    Throttled,
    /// 5xx.
    Failed,
    /// No answer at all (upstream only).
    NoAnswer,
}

impl Class {
    pub const ALL: [Class; 5] = [
        Class::Ok,
        Class::Refused,
        Class::Throttled,
        Class::Failed,
        Class::NoAnswer,
    ];

    pub fn of(status: u16) -> Class {
        match status {
            0 => Class::NoAnswer,
            429 => Class::Throttled,
            400..=499 => Class::Refused,
            500.. => Class::Failed,
            _ => Class::Ok,
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Class::Ok => "ok",
            Class::Refused => "refused (4xx)",
            Class::Throttled => "throttled (429)",
            Class::Failed => "failed (5xx)",
            Class::NoAnswer => "no answer",
        }
    }
}

/// Minutes kept.
pub const MINUTES: usize = 60;

/// Counts by class, per minute, for the last hour.
#[derive(Debug, Clone)]
pub struct LastHour {
    slots: Vec<(i64, [u64; 5])>,
}

impl Default for LastHour {
    fn default() -> Self {
        LastHour {
            slots: vec![(i64::MIN, [0; 5]); MINUTES],
        }
    }
}

impl LastHour {
    /// Count one answer of `status` in the minute `minute` (minutes since the Unix epoch).
    pub fn add(&mut self, minute: i64, status: u16) {
        let i = minute.rem_euclid(MINUTES as i64) as usize;
        let slot = &mut self.slots[i];
        if slot.0 != minute {
            *slot = (minute, [0; 5]);
        }
        slot.1[Class::of(status) as usize] += 1;
    }

    /// The last hour up to `minute`, oldest first: one count per class per minute (zero for a minute
    /// nothing happened in).
    pub fn series(&self, minute: i64) -> Vec<[u64; 5]> {
        (0..MINUTES as i64)
            .rev()
            .map(|back| {
                let m = minute - back;
                let (at, counts) = self.slots[m.rem_euclid(MINUTES as i64) as usize];
                if at == m { counts } else { [0; 5] }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_roll_over_after_an_hour() {
        let mut h = LastHour::default();
        h.add(1000, 200);
        h.add(1000, 502);
        h.add(1000, 0);
        h.add(1001, 429);
        let s = h.series(1001);
        assert_eq!(s.len(), MINUTES);
        assert_eq!(s[MINUTES - 2], [1, 0, 0, 1, 1]);
        assert_eq!(s[MINUTES - 1], [0, 0, 1, 0, 0]);
        // An hour later, the old minute's slot is reused, not added to.
        h.add(1060, 404);
        let s = h.series(1060);
        assert_eq!(s[MINUTES - 1], [0, 1, 0, 0, 0]);
        assert_eq!(s.iter().map(|c| c.iter().sum::<u64>()).sum::<u64>(), 2);
    }
}
