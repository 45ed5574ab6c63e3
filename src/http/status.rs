//! `/status`: a page a person reads at a glance, rendered on the server (no script), refreshing itself.
//!
//! Owns the page: what it shows and how (words for ages, a verdict at the top, small inline SVG charts of
//! the snapshot's age and of JumpCloud's answers over the last hour). Gathers aggregate figures only: counts,
//! times, states. It never sees a resource, so no userName or email can reach it. [`View`] is the page's
//! input, built by the handler from the store and the metrics; [`render`] is pure and tested alone.

use std::fmt::Write as _;

use jiff::Timestamp;

use crate::cache::RefreshStatus;
use crate::telemetry::history::{Class, MINUTES};

/// Everything the page shows.
#[derive(Debug, Clone)]
pub struct View {
    pub version: &'static str,
    pub now: Timestamp,
    pub started: Timestamp,
    /// The published snapshot: version, when it was read, users, groups; restoring from disk.
    pub snapshot: Option<SnapshotView>,
    /// Oldest first.
    pub refreshes: Vec<RefreshStatus>,
    pub refresh_interval_s: u64,
    /// 0 closed, 1 half-open, 2 open.
    pub breaker: u8,
    pub upstream_retries: u64,
    /// Per minute for the last hour, oldest first, by [`Class`].
    pub upstream: Vec<[u64; 5]>,
    pub requests: Vec<[u64; 5]>,
    pub pinned_walks: u64,
    pub held_back: Option<HeldBackView>,
    /// The Directory Insights feed; `None` when it is off.
    pub feed: Option<FeedView>,
    /// When polls of the feed found the snapshot current, oldest first (for the age chart).
    pub confirmations: Vec<Timestamp>,
    /// The shared store (replicas on Redis); `None` for the embedded one.
    pub store: Option<StoreView>,
}

/// The shared store, as this replica sees it.
#[derive(Debug, Clone)]
pub struct StoreView {
    /// `store.url`, password redacted.
    pub url: String,
    pub up: bool,
    pub leader: bool,
    pub version: u64,
    pub errors: u64,
}

/// The Directory Insights feed, in aggregate.
#[derive(Debug, Clone)]
pub struct FeedView {
    /// `auto`, `on`.
    pub mode: &'static str,
    /// Its state in words.
    pub state: String,
    /// In use, starting, or (with `auto`) not in the plan: nothing for a person to do.
    pub healthy: bool,
    pub poll_s: u64,
    pub last_read: Option<Timestamp>,
    pub failures: u32,
    pub events: u64,
    pub versions: u64,
    /// Seconds since the newest event applied happened; `None` before the first.
    pub lag_s: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct SnapshotView {
    pub version: u64,
    pub taken_at: Timestamp,
    /// Since when it is known to match JumpCloud (its read, or a later poll of the feed).
    pub fresh_as_of: Timestamp,
    pub users: usize,
    pub groups: usize,
    pub restoring: bool,
}

#[derive(Debug, Clone)]
pub struct HeldBackView {
    pub users: usize,
    pub groups: usize,
    pub high_water_users: usize,
    pub high_water_groups: usize,
    pub since: Timestamp,
    pub reason: String,
}

/// Seconds, in words: "12 seconds", "3 minutes", "2 hours 5 minutes", "4 days".
pub fn in_words(secs: u64) -> String {
    let plural = |n: u64, unit: &str| format!("{n} {unit}{}", if n == 1 { "" } else { "s" });
    match secs {
        0..=59 => plural(secs, "second"),
        60..=3599 => plural(secs / 60, "minute"),
        3600..=86_399 => {
            let (h, m) = (secs / 3600, secs % 3600 / 60);
            if m == 0 {
                plural(h, "hour")
            } else {
                format!("{} {}", plural(h, "hour"), plural(m, "minute"))
            }
        }
        _ => plural(secs / 86_400, "day"),
    }
}

fn since(now: Timestamp, then: Timestamp) -> u64 {
    (now.as_second() - then.as_second()).max(0) as u64
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The colour of each answer class in the charts and the legend.
fn colour(c: Class) -> &'static str {
    match c {
        Class::Ok => "#2e7d32",
        Class::Refused => "#f9a825",
        Class::Throttled => "#ef6c00",
        Class::Failed => "#c62828",
        Class::NoAnswer => "#6a1b9a",
    }
}

/// The whole page.
pub fn render(v: &View) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let (verdict, tone) = verdict(v);
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"15\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>jumpcloud-scim status</title><style>{STYLE}</style></head><body>\
         <header><h1>jumpcloud-scim <small>{}</small></h1>\
         <p class=\"verdict {tone}\">{}</p>\
         <p class=\"muted\">Up {} · this page refreshes every 15 seconds · {}</p></header><main>",
        esc(v.version),
        esc(&verdict),
        in_words(since(v.now, v.started)),
        v.now.strftime("%Y-%m-%d %H:%M:%S UTC")
    );
    snapshot_card(&mut out, v);
    if let Some(h) = &v.held_back {
        held_back_card(&mut out, v.now, h);
    }
    if let Some(f) = &v.feed {
        feed_card(&mut out, v, f);
    }
    if let Some(st) = &v.store {
        store_card(&mut out, st);
    }
    upstream_card(&mut out, v);
    requests_card(&mut out, v);
    refreshes_card(&mut out, v);
    out.push_str(
        "</main><footer class=\"muted\">Aggregate figures only. Machine-readable: <a href=\"/readyz\">/readyz</a> · \
         <a href=\"/metrics\">/metrics</a></footer></body></html>",
    );
    out
}

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;background:#f6f7f9;\
color:#1d2330}header{background:#fff;padding:16px 24px;border-bottom:1px solid #dde1e6}h1{margin:0;font-size:22px}\
h1 small{font-weight:400;color:#6b7380;font-size:14px}h2{font-size:15px;margin:0 0 10px;color:#3b4452}\
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px;padding:16px 24px}\
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:14px 16px}\
.verdict{font-size:17px;margin:8px 0 4px;padding:6px 10px;border-radius:6px;display:inline-block}\
.good{background:#e8f5e9;color:#1b5e20}.warn{background:#fff8e1;color:#8d6e00}.bad{background:#ffebee;color:#b71c1c}\
.muted{color:#6b7380;font-size:13px}dl{display:grid;grid-template-columns:auto 1fr;gap:4px 14px;margin:0}\
dt{color:#6b7380}dd{margin:0;font-variant-numeric:tabular-nums}table{border-collapse:collapse;width:100%;font-size:13px}\
td,th{text-align:left;padding:3px 6px;border-bottom:1px solid #eef0f3}th{color:#6b7380;font-weight:500}\
.ok{color:#2e7d32}.fail{color:#c62828}.legend span{display:inline-block;margin-right:10px;font-size:12px}\
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}\
footer{padding:8px 24px 24px}code{background:#eef0f3;padding:1px 4px;border-radius:4px}";

fn store_card(out: &mut String, st: &StoreView) {
    let state = if st.up {
        "<span class=\"ok\">answering</span>"
    } else {
        "<span class=\"fail\">down: reads go on from the last version loaded; refreshes and writes (503) wait</span>"
    };
    let _ = write!(
        out,
        "<section><h2>Shared store (Redis)</h2><dl><dt>Redis</dt><dd>{} · {state}</dd>\
         <dt>This replica</dt><dd>{}</dd><dt>Shared version loaded</dt><dd>{}</dd>\
         <dt>Errors</dt><dd>{}</dd></dl></section>",
        esc(&st.url),
        if st.leader {
            "leader: runs the refresher"
        } else {
            "follower: loads what the leader and writers publish"
        },
        st.version,
        st.errors
    );
}

fn verdict(v: &View) -> (String, &'static str) {
    let Some(s) = &v.snapshot else {
        return (
            "Not ready: waiting for the first snapshot of JumpCloud".to_owned(),
            "bad",
        );
    };
    let age = since(v.now, s.fresh_as_of);
    let last_failed = v.refreshes.last().is_some_and(|r| !r.ok && !r.held_back);
    if v.held_back.is_some() {
        return (
            "Serving; a refresh is held back and waits for an operator".to_owned(),
            "warn",
        );
    }
    if v.store.as_ref().is_some_and(|st| !st.up) {
        return (
            format!(
                "Serving the last loaded snapshot ({} old): the shared store (Redis) is down, so writes and \
                 refreshes are paused",
                in_words(age)
            ),
            "warn",
        );
    }
    let feed_healthy = v.feed.as_ref().is_some_and(|f| f.healthy);
    if v.breaker == 2 || (last_failed && !feed_healthy) {
        return (
            format!(
                "Serving the last good snapshot ({} old): JumpCloud is failing",
                in_words(age)
            ),
            "warn",
        );
    }
    if last_failed {
        // JumpCloud answers the feed and its fetches: the data is current; only the full read failed.
        return (
            format!(
                "Serving: snapshot {} old, kept current by the Directory Insights feed; the last full refresh \
                 failed and is tried again",
                in_words(age)
            ),
            "warn",
        );
    }
    if let Some(f) = v.feed.as_ref().filter(|f| !f.healthy) {
        return (
            format!(
                "Serving: snapshot {} old; the Directory Insights feed is {}",
                in_words(age),
                f.state
            ),
            "warn",
        );
    }
    (format!("Serving: snapshot {} old", in_words(age)), "good")
}

fn feed_card(out: &mut String, v: &View, f: &FeedView) {
    let read = f.last_read.map_or_else(
        || "not yet".to_owned(),
        |t| format!("{} ago", in_words(since(v.now, t))),
    );
    let lag = f.lag_s.map_or_else(
        || "no event yet".to_owned(),
        |s| format!("{} ago", in_words(s)),
    );
    let _ = write!(
        out,
        "<section><h2>Directory Insights feed</h2><dl><dt>State</dt><dd>{}</dd>         <dt>Setting</dt><dd>insights.enabled = \"{}\", read every {}</dd><dt>Last read</dt><dd>{read}</dd>         <dt>Newest event applied</dt><dd>{lag}</dd><dt>Events applied</dt><dd>{}</dd>         <dt>Versions published</dt><dd>{}</dd>",
        esc(&f.state),
        f.mode,
        in_words(f.poll_s),
        f.events,
        f.versions
    );
    if f.failures > 0 {
        let _ = write!(out, "<dt>Failed polls in a row</dt><dd>{}</dd>", f.failures);
    }
    let _ = write!(
        out,
        "</dl><p class=\"muted\">Between full refreshes (every {}), changes made in JumpCloud reach the snapshot \
         through the feed.</p></section>",
        in_words(v.refresh_interval_s)
    );
}

fn snapshot_card(out: &mut String, v: &View) {
    out.push_str("<section><h2>Snapshot</h2>");
    match &v.snapshot {
        None => out
            .push_str("<p>No snapshot yet: reads answer 503 until the first refresh succeeds.</p>"),
        Some(s) => {
            let _ = write!(
                out,
                "<dl><dt>Version</dt><dd>{}</dd><dt>Age</dt><dd>{} (read from JumpCloud {})</dd>\
                 <dt>Users</dt><dd>{}</dd><dt>Groups</dt><dd>{}</dd><dt>Pinned walks</dt><dd>{}</dd>\
                 <dt>Full refresh</dt><dd>every {}</dd></dl>",
                s.version,
                in_words(since(v.now, s.fresh_as_of)),
                s.taken_at.strftime("%H:%M:%S UTC"),
                s.users,
                s.groups,
                v.pinned_walks,
                in_words(v.refresh_interval_s)
            );
            if s.restoring {
                out.push_str("<p class=\"muted\">Restored from disk; JumpCloud's records behind it are still loading (writes wait).</p>");
            }
        }
    }
    out.push_str("<p class=\"muted\">Snapshot age, last hour</p>");
    age_chart(out, v);
    out.push_str("</section>");
}

fn held_back_card(out: &mut String, now: Timestamp, h: &HeldBackView) {
    let _ = write!(
        out,
        "<section><h2>Held-back refresh</h2><p>A refresh read {} users and {} groups, below the high-water mark of \
         {} and {}: {}. It has waited {}.</p><p>If JumpCloud really lost them, publish it with \
         <code>POST /admin/accept-shrink</code> (a provision credential).</p></section>",
        h.users,
        h.groups,
        h.high_water_users,
        h.high_water_groups,
        esc(&h.reason),
        in_words(since(now, h.since))
    );
}

fn sums(series: &[[u64; 5]]) -> [u64; 5] {
    let mut t = [0; 5];
    for m in series {
        for (i, n) in m.iter().enumerate() {
            t[i] += n;
        }
    }
    t
}

fn legend(out: &mut String, totals: &[u64; 5], classes: &[Class]) {
    out.push_str("<p class=\"legend\">");
    for c in classes {
        let _ = write!(
            out,
            "<span><i style=\"background:{}\"></i>{} {}</span>",
            colour(*c),
            c.label(),
            totals[*c as usize]
        );
    }
    out.push_str("</p>");
}

fn upstream_card(out: &mut String, v: &View) {
    let breaker = match v.breaker {
        0 => "closed: calls flow",
        1 => "half-open: one probe call is being let through",
        _ => "open: JumpCloud failed repeatedly; calls wait for the next probe",
    };
    let totals = sums(&v.upstream);
    let _ = write!(
        out,
        "<section><h2>JumpCloud</h2><dl><dt>Circuit breaker</dt><dd>{breaker}</dd>\
         <dt>Calls, last hour</dt><dd>{}</dd><dt>Retries, since start</dt><dd>{}</dd>\
         <dt>Throttled, last hour</dt><dd>{}</dd></dl><p class=\"muted\">Answers by class per minute, last hour</p>",
        totals.iter().sum::<u64>(),
        v.upstream_retries,
        totals[Class::Throttled as usize]
    );
    bar_chart(out, &v.upstream, &Class::ALL);
    legend(out, &totals, &Class::ALL);
    out.push_str("</section>");
}

fn requests_card(out: &mut String, v: &View) {
    let totals = sums(&v.requests);
    let classes = [Class::Ok, Class::Refused, Class::Throttled, Class::Failed];
    let _ = write!(
        out,
        "<section><h2>Requests served</h2><dl><dt>Last hour</dt><dd>{}</dd><dt>Client errors (4xx)</dt><dd>{}</dd>\
         <dt>Server errors (5xx)</dt><dd>{}</dd></dl><p class=\"muted\">Answers by class per minute, last hour</p>",
        totals.iter().sum::<u64>(),
        totals[Class::Refused as usize] + totals[Class::Throttled as usize],
        totals[Class::Failed as usize]
    );
    bar_chart(out, &v.requests, &classes);
    legend(out, &totals, &classes);
    out.push_str("</section>");
}

fn refreshes_card(out: &mut String, v: &View) {
    out.push_str("<section><h2>Last refreshes</h2>");
    if v.refreshes.is_empty() {
        out.push_str("<p>None yet.</p></section>");
        return;
    }
    out.push_str(
        "<table><tr><th>When</th><th>Outcome</th><th>Calls</th><th>Retries</th><th>Took</th><th>Why</th></tr>",
    );
    for r in v.refreshes.iter().rev().take(10) {
        let (outcome, class) = if r.held_back {
            ("held back", "fail")
        } else if r.ok {
            ("published", "ok")
        } else {
            ("failed", "fail")
        };
        let _ = write!(
            out,
            "<tr><td>{} ago</td><td class=\"{class}\">{outcome}</td><td>{}</td><td>{}</td><td>{:.1} s</td><td>{}</td></tr>",
            in_words(since(v.now, r.finished_at)),
            r.calls,
            r.retries,
            r.duration_ms as f64 / 1000.0,
            esc(r.error.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</table></section>");
}

const W: f64 = 560.0;
const H: f64 = 110.0;

/// Stacked bars, one per minute.
fn bar_chart(out: &mut String, series: &[[u64; 5]], classes: &[Class]) {
    let max = series
        .iter()
        .map(|m| classes.iter().map(|c| m[*c as usize]).sum::<u64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let bar = W / MINUTES as f64;
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {W} {}\" width=\"100%\" role=\"img\" aria-label=\"answers per minute\">",
        H + 16.0
    );
    for (i, m) in series.iter().enumerate() {
        let mut y = H;
        for c in classes {
            let n = m[*c as usize];
            if n == 0 {
                continue;
            }
            let h = n as f64 / max as f64 * (H - 4.0);
            y -= h;
            let _ = write!(
                out,
                "<rect x=\"{:.1}\" y=\"{y:.1}\" width=\"{:.1}\" height=\"{h:.1}\" fill=\"{}\"/>",
                i as f64 * bar + 0.5,
                bar - 1.0,
                colour(*c)
            );
        }
    }
    let _ = write!(
        out,
        "<line x1=\"0\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\" stroke=\"#c9ced6\"/>\
         <text x=\"0\" y=\"{}\" font-size=\"10\" fill=\"#6b7380\">60 min ago</text>\
         <text x=\"{W}\" y=\"{}\" font-size=\"10\" fill=\"#6b7380\" text-anchor=\"end\">now · peak {max}/min</text></svg>",
        H + 13.0,
        H + 13.0
    );
}

/// The snapshot's age over the last hour: it grows with time and drops when a refresh is published or a
/// poll of the Directory Insights feed finds it current.
fn age_chart(out: &mut String, v: &View) {
    let start = v.now.as_second() - (MINUTES as i64 * 60);
    let published: Vec<i64> = v
        .refreshes
        .iter()
        .filter(|r| r.ok && !r.held_back)
        .map(|r| r.finished_at.as_second())
        .chain(v.confirmations.iter().map(|t| t.as_second()))
        .collect();
    let taken = v.snapshot.as_ref().map(|s| s.taken_at.as_second());
    // The age at time t: t minus the last publication at or before it.
    let age_at = |t: i64| -> Option<i64> {
        let last = published
            .iter()
            .copied()
            .filter(|p| *p <= t)
            .max()
            .or(taken.filter(|s| *s <= t))?;
        Some(t - last)
    };
    let points: Vec<(f64, Option<i64>)> = (0..=120)
        .map(|i| {
            let t = start + i * 30;
            (i as f64 / 120.0 * W, age_at(t))
        })
        .collect();
    let max = points.iter().filter_map(|p| p.1).max().unwrap_or(0).max(60);
    let _ = write!(
        out,
        "<svg viewBox=\"0 0 {W} {}\" width=\"100%\" role=\"img\" aria-label=\"snapshot age\">",
        H + 16.0
    );
    let mut path = String::new();
    for (x, age) in &points {
        match age {
            Some(a) => {
                let y = H - (*a as f64 / max as f64) * (H - 4.0);
                let _ = write!(
                    path,
                    "{}{x:.1},{y:.1} ",
                    if path.is_empty() || path.ends_with('M') {
                        "M"
                    } else {
                        "L"
                    }
                );
            }
            None => {
                if !path.is_empty() {
                    path.push('M');
                }
            }
        }
    }
    let path = path.trim_end_matches('M').trim();
    if !path.is_empty() {
        let _ = write!(
            out,
            "<path d=\"{path}\" fill=\"none\" stroke=\"#1565c0\" stroke-width=\"2\"/>"
        );
    }
    let _ = write!(
        out,
        "<line x1=\"0\" y1=\"{H}\" x2=\"{W}\" y2=\"{H}\" stroke=\"#c9ced6\"/>\
         <text x=\"0\" y=\"{}\" font-size=\"10\" fill=\"#6b7380\">60 min ago</text>\
         <text x=\"{W}\" y=\"{}\" font-size=\"10\" fill=\"#6b7380\" text-anchor=\"end\">now · top {}</text></svg>",
        H + 13.0,
        H + 13.0,
        in_words(max as u64)
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(s).unwrap()
    }

    fn view() -> View {
        let now = 1_800_000_000;
        View {
            version: "9.9.9",
            now: t(now),
            started: t(now - 7_300),
            snapshot: Some(SnapshotView {
                version: 42,
                taken_at: t(now - 12),
                fresh_as_of: t(now - 12),
                users: 601,
                groups: 53,
                restoring: false,
            }),
            refreshes: vec![
                RefreshStatus {
                    finished_at: t(now - 600),
                    ok: false,
                    held_back: false,
                    error: Some("JumpCloud is unavailable (HTTP 502) <b>".into()),
                    calls: 7,
                    retries: 6,
                    duration_ms: 4100,
                },
                RefreshStatus {
                    finished_at: t(now - 12),
                    ok: true,
                    held_back: false,
                    error: None,
                    calls: 86,
                    retries: 1,
                    duration_ms: 900,
                },
            ],
            refresh_interval_s: 60,
            breaker: 0,
            upstream_retries: 7,
            upstream: (0..60).map(|i| [i, 0, 0, i % 3, 0]).collect(),
            requests: (0..60).map(|i| [i * 2, 1, 0, 0, 0]).collect(),
            pinned_walks: 3,
            held_back: None,
            feed: None,
            confirmations: Vec::new(),
            store: None,
        }
    }

    #[test]
    fn ages_read_as_words() {
        assert_eq!(in_words(1), "1 second");
        assert_eq!(in_words(42), "42 seconds");
        assert_eq!(in_words(61), "1 minute");
        assert_eq!(in_words(7_500), "2 hours 5 minutes");
        assert_eq!(in_words(3 * 86_400), "3 days");
    }

    #[test]
    fn replicas_show_the_shared_store_without_its_password() {
        let mut v = view();
        assert!(!render(&v).contains("Shared store"));
        v.store = Some(StoreView {
            url: crate::config::redact_url("redis://app:hunter2@redis:6379"),
            up: false,
            leader: true,
            version: 17,
            errors: 3,
        });
        let html = render(&v);
        for needle in [
            "Shared store (Redis)",
            "app:***@redis:6379",
            "down: reads go on",
            "leader: runs",
        ] {
            assert!(html.contains(needle), "{needle} not in the page");
        }
        assert!(!html.contains("hunter2"));
        assert!(
            html.contains("the shared store (Redis) is down, so writes and refreshes are paused"),
            "the verdict says what Redis being down means"
        );
        v.store.as_mut().unwrap().up = true;
        assert!(render(&v).contains("Serving: snapshot 12 seconds old"));
    }

    #[test]
    fn the_page_says_what_matters_and_escapes_what_it_quotes() {
        let html = render(&view());
        for needle in [
            "Serving: snapshot 12 seconds old",
            "Version</dt><dd>42",
            "Users</dt><dd>601",
            "Up 2 hours 1 minute",
            "closed: calls flow",
            "failed",
            "HTTP 502) &lt;b&gt;",
            "<svg",
            "http-equiv=\"refresh\"",
        ] {
            assert!(html.contains(needle), "{needle} not in the page");
        }
        assert!(!html.contains("<b>"));
        let mut held = view();
        held.held_back = Some(HeldBackView {
            users: 10,
            groups: 2,
            high_water_users: 601,
            high_water_groups: 53,
            since: t(1_800_000_000 - 300),
            reason: "users fell by 98%".into(),
        });
        let html = render(&held);
        assert!(html.contains("POST /admin/accept-shrink") && html.contains("held back"));
        let mut none = view();
        none.snapshot = None;
        assert!(render(&none).contains("Not ready"));
    }

    fn feed(healthy: bool, state: &str) -> FeedView {
        FeedView {
            mode: "auto",
            state: state.into(),
            healthy,
            poll_s: 5,
            last_read: Some(t(1_800_000_000 - 3)),
            failures: u32::from(!healthy) * 4,
            events: 1234,
            versions: 56,
            lag_s: Some(9),
        }
    }

    #[test]
    fn the_feed_has_a_card_and_its_confirmations_keep_the_age_low() {
        let mut v = view();
        let now = 1_800_000_000;
        // Read by a refresh an hour ago, found current by the feed 4 s ago.
        v.snapshot.as_mut().unwrap().taken_at = t(now - 3_600);
        v.snapshot.as_mut().unwrap().fresh_as_of = t(now - 4);
        v.refreshes.clear();
        v.refresh_interval_s = 3600;
        v.feed = Some(feed(true, "in use"));
        v.confirmations = (1..120).map(|i| t(now - 3_600 + i * 30)).collect();
        let html = render(&v);
        for needle in [
            "Serving: snapshot 4 seconds old",
            "Directory Insights feed",
            "State</dt><dd>in use",
            "insights.enabled = \"auto\", read every 5 seconds",
            "Events applied</dt><dd>1234",
            "Newest event applied</dt><dd>9 seconds ago",
            "every 1 hour",
        ] {
            assert!(html.contains(needle), "{needle} not in the page");
        }
        assert!(!html.contains("Failed polls"));
        assert!(
            html.contains("top 1 minute"),
            "the age chart stays low between refreshes"
        );
        v.feed = Some(feed(false, "failing: JumpCloud is unavailable (HTTP 502)"));
        let html = render(&v);
        assert!(
            html.contains("the Directory Insights feed is failing"),
            "{html}"
        );
        assert!(html.contains("Failed polls in a row</dt><dd>4"));
        assert!(render(&view()).contains("Serving: snapshot 12 seconds old"));
        assert!(!render(&view()).contains("Directory Insights feed"));
    }

    #[test]
    fn a_failed_full_refresh_beside_a_healthy_feed_is_not_called_jumpcloud_failing() {
        let mut v = view();
        let now = 1_800_000_000;
        v.snapshot.as_mut().unwrap().fresh_as_of = t(now - 4);
        v.refreshes.reverse(); // the failed one is the last
        v.feed = Some(feed(true, "in use"));
        let html = render(&v);
        assert!(
            html.contains(
                "Serving: snapshot 4 seconds old, kept current by the Directory Insights feed; the last full \
                 refresh failed"
            ),
            "{html}"
        );
        assert!(!html.contains("JumpCloud is failing"));
        // Without the feed, or with JumpCloud's breaker open, it is JumpCloud failing.
        v.feed = Some(feed(false, "failing: JumpCloud is unavailable (HTTP 502)"));
        assert!(render(&v).contains("JumpCloud is failing"));
        v.feed = Some(feed(true, "in use"));
        v.breaker = 2;
        assert!(render(&v).contains("JumpCloud is failing"));
    }
}
