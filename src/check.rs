//! `jumpcloud-scim check`: a few cheap calls that tell an operator whether the configured JumpCloud URL and
//! key work, what they see, and what to fix when they do not.
//!
//! Needs only the `jumpcloud` part of the configuration. It reads the organisations the key sees, the
//! totals of users, groups and directories (one page of one item each, never the whole directory), times
//! every call, and turns each failure into a sentence a person can act on: a key JumpCloud refuses (and, for
//! the US console, the hint that an EU organisation lives at `console.eu.jumpcloud.com`), a multi-tenant
//! administrator's key without `org_id`, a host that does not answer, a TLS handshake that fails, an
//! outage; and whether the organisation has the Directory Insights feed the service reads between full
//! refreshes. Knows JumpCloud only through `crate::jumpcloud`'s client.

use std::time::Duration;

use crate::config::{Config, FeedMode};
use crate::jumpcloud::{FeedError, JcClient, JcError};

/// What `check` found: the lines to print and whether everything worked.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub lines: Vec<String>,
    pub problems: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    /// The report as printed: facts, then each problem, then the verdict.
    pub fn render(&self) -> String {
        let mut out = self.lines.join("\n");
        for p in &self.problems {
            out.push_str(&format!("\nproblem: {p}"));
        }
        out.push_str(if self.ok() {
            "\ncheck passed"
        } else {
            "\ncheck FAILED"
        });
        out
    }
}

/// Run the checks against the configuration's JumpCloud.
pub async fn run(config: &Config) -> Report {
    let mut report = Report::default();
    let url = config.jumpcloud.url.trim_end_matches('/').to_owned();
    report.lines.push(format!("JumpCloud: {url}"));
    if config
        .jumpcloud
        .api_key
        .as_ref()
        .is_none_or(|k| k.is_empty())
    {
        report.problems.push(
            "jumpcloud.api_key is not set: set JCSCIM_JUMPCLOUD__API_KEY, or JCSCIM_JUMPCLOUD__API_KEY_FILE naming \
             a file that holds it (an administrator's API key, from the JumpCloud console's API Settings)"
                .to_owned(),
        );
        return report;
    }
    let client = match crate::app::jumpcloud_client_for_check(config) {
        Ok(c) => c,
        Err(e) => {
            report
                .problems
                .push(format!("the JumpCloud client cannot be built: {e}"));
            return report;
        }
    };
    let mut latencies = Vec::new();
    if let Some(org_names) = organisations(&client, config, &url, &mut report, &mut latencies).await
    {
        if let Some(org) = &config.jumpcloud.org_id {
            report.lines.push(format!("organisation served: {org}"));
        }
        counts(
            &client,
            config,
            &url,
            &org_names,
            &mut report,
            &mut latencies,
        )
        .await;
        if report.ok() {
            insights(&client, config, &mut report, &mut latencies).await;
        }
    }
    latency_line(&mut latencies, &mut report);
    store(config, &mut report).await;
    report
}

/// With `store.kind = "redis"`: whether Redis answers at `store.url` (shown with its password redacted).
async fn store(config: &Config, report: &mut Report) {
    if config.store.kind != crate::config::StoreKind::Redis {
        return;
    }
    let shown = config.store.redacted_url();
    if let Err(e) = config.store.validate(config.data_dir.is_some()) {
        report.problems.push(e);
        return;
    }
    let url = config.store.exposed_url();
    let timeout = Duration::from_millis(config.store.timeout_ms);
    let answered = crate::cache::replicas::ping(&url, timeout).await;
    match answered {
        Ok(()) => report.lines.push(format!("shared store: Redis at {shown} answers")),
        Err(e) => report.problems.push(format!(
            "the shared store at {shown} does not answer: {e}; replicas serve their last version but cannot \
             refresh or write until it does"
        )),
    }
}

/// The organisations the key sees (sent without x-org-id, which this route does not need), as
/// `name (id)`; `None` when checking cannot go on.
async fn organisations(
    client: &JcClient,
    config: &Config,
    url: &str,
    report: &mut Report,
    latencies: &mut Vec<Duration>,
) -> Option<Vec<String>> {
    let orgs = match timed(latencies, client.list_organizations()).await {
        Ok(orgs) => orgs,
        Err(e) => {
            report
                .problems
                .push(explain(&e, url, config.jumpcloud.org_id.is_some()));
            return None;
        }
    };
    let names: Vec<String> = orgs
        .iter()
        .map(|o| {
            let id = o
                .get("_id")
                .or_else(|| o.get("id"))
                .and_then(|v| v.as_str())
                .unwrap_or("?");
            let name = o
                .get("displayName")
                .or_else(|| o.get("name"))
                .and_then(|v| v.as_str())
                .unwrap_or("(unnamed)");
            format!("{name} ({id})")
        })
        .collect();
    report
        .lines
        .push(format!("organisations the key sees: {}", names.join(", ")));
    if orgs.len() > 1 && config.jumpcloud.org_id.is_none() {
        report.problems.push(format!(
            "this is a multi-tenant administrator's key ({} organisations): set jumpcloud.org_id \
             (JCSCIM_JUMPCLOUD__ORG_ID) to the one to serve: {}",
            orgs.len(),
            names.join(", ")
        ));
        return None;
    }
    Some(names)
}

/// How many users, groups and directories JumpCloud holds, each by its total.
async fn counts(
    client: &JcClient,
    config: &Config,
    url: &str,
    org_names: &[String],
    report: &mut Report,
    latencies: &mut Vec<Duration>,
) {
    for (what, result) in [
        ("system users", timed(latencies, client.count_users()).await),
        ("user groups", timed(latencies, client.count_groups()).await),
        (
            "directories",
            timed(latencies, client.count_directories()).await,
        ),
    ] {
        match result {
            Ok(n) => report.lines.push(format!("{what}: {n}")),
            // The organisations route takes any key; the others want x-org-id from a multi-tenant one.
            Err(JcError::Unauthorized { .. })
                if config.jumpcloud.org_id.is_none() && !org_names.is_empty() =>
            {
                report.problems.push(format!(
                    "JumpCloud lists the key's organisations but refuses its requests without x-org-id: this is a \
                     multi-tenant administrator's key; set jumpcloud.org_id (JCSCIM_JUMPCLOUD__ORG_ID) to the \
                     organisation to serve: {}",
                    org_names.join(", ")
                ));
                return;
            }
            Err(e) => {
                let why = explain(&e, url, config.jumpcloud.org_id.is_some());
                report.problems.push(format!("counting {what}: {why}"));
                return;
            }
        }
    }
}

/// Whether the organisation has the Directory Insights feed (one event asked for), and what the service
/// does about it. Only with `insights.enabled = "on"` is a feed that cannot be read a problem: `auto` falls
/// back to full refreshes.
async fn insights(
    client: &JcClient,
    config: &Config,
    report: &mut Report,
    latencies: &mut Vec<Duration>,
) {
    let mode = config.insights.enabled;
    if mode == FeedMode::Off {
        report.lines.push(format!(
            "Directory Insights: not read (insights.enabled = \"off\"): full refresh every {} s",
            config.refresh_interval_s(false)
        ));
        return;
    }
    let url = config.insights_url();
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let started = tokio::time::Instant::now();
    let answer = client.directory_events(since, 1).await;
    latencies.push(started.elapsed());
    let problem = |report: &mut Report, line: String| {
        if mode == FeedMode::On {
            report.problems.push(format!(
                "{line}; insights.enabled = \"on\" expects it (\"auto\" would fall back quietly)"
            ));
        } else {
            report.lines.push(line);
        }
    };
    match answer {
        Ok(_) => report.lines.push(format!(
            "Directory Insights: available at {url} (insights.enabled = \"{}\"): read every {} s, full \
             refresh every {} s",
            mode.as_str(),
            config.insights.poll_s,
            config.refresh_interval_s(true)
        )),
        Err(FeedError::NotInPlan) => problem(
            report,
            format!(
                "Directory Insights: not in the organisation's plan (HTTP 403 from {url}): full refresh every {} s",
                config.refresh_interval_s(false)
            ),
        ),
        Err(FeedError::Upstream(e)) => problem(
            report,
            format!(
                "Directory Insights: {url} could not be read ({}): check insights.url; meanwhile full refresh \
                 every {} s",
                e.in_words(),
                config.refresh_interval_s(false)
            ),
        ),
    }
}

/// The calls' latencies in one line.
fn latency_line(latencies: &mut [Duration], report: &mut Report) {
    latencies.sort();
    if let (Some(fastest), Some(slowest)) = (latencies.first(), latencies.last()) {
        let median = latencies[latencies.len() / 2];
        report.lines.push(format!(
            "latency: {} calls, fastest {} ms, median {} ms, slowest {} ms",
            latencies.len(),
            fastest.as_millis(),
            median.as_millis(),
            slowest.as_millis()
        ));
    }
}

async fn timed<T>(
    latencies: &mut Vec<Duration>,
    call: impl Future<Output = Result<T, JcError>>,
) -> Result<T, JcError> {
    let started = tokio::time::Instant::now();
    let r = call.await;
    latencies.push(started.elapsed());
    r
}

/// A failure in words that say what to fix.
fn explain(e: &JcError, url: &str, has_org: bool) -> String {
    let host = url
        .split("://")
        .nth(1)
        .unwrap_or(url)
        .split('/')
        .next()
        .unwrap_or(url);
    match e {
        JcError::Unauthorized { status } => {
            let mut s = format!(
                "JumpCloud refused the API key (HTTP {status}): check jumpcloud.api_key (an administrator's key, \
                 from the JumpCloud console's API Settings; a key stops working when it is regenerated)"
            );
            if !has_org {
                s.push_str("; a multi-tenant administrator's key also needs jumpcloud.org_id");
            }
            if host.eq_ignore_ascii_case("console.jumpcloud.com") {
                s.push_str(
                    "; an organisation in the EU region is served at https://console.eu.jumpcloud.com \
                     (jumpcloud.url)",
                );
            }
            s
        }
        JcError::Transient {
            status: None,
            message,
            sent: false,
            ..
        } => {
            let lower = message.to_ascii_lowercase();
            if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake")
            {
                format!(
                    "the TLS handshake with {host} failed ({message}): check jumpcloud.url, and whether a proxy \
                     intercepts TLS or the system's CA certificates are missing"
                )
            } else {
                format!(
                    "cannot reach {host} ({message}): check jumpcloud.url, DNS and the network path (a proxy or \
                     firewall) to it"
                )
            }
        }
        JcError::Transient {
            status: None,
            message,
            ..
        } => format!(
            "{host} did not answer in time ({message}): JumpCloud may be slow or unreachable; try again"
        ),
        JcError::Transient {
            status: Some(429), ..
        } => "JumpCloud is throttling this key (HTTP 429): try again in a minute".to_owned(),
        JcError::Transient {
            status: Some(s), ..
        } => format!(
            "JumpCloud answered HTTP {s} (its gateway is failing): this is JumpCloud's outage, not the \
             configuration; the service serves its last snapshot through it. Try again later"
        ),
        JcError::NotFound { .. } => format!(
            "{url} answered 404 for JumpCloud's API: check jumpcloud.url (https://console.jumpcloud.com, or \
             https://console.eu.jumpcloud.com)"
        ),
        JcError::Protocol { message } => {
            format!("{url} does not answer like JumpCloud's API ({message}): check jumpcloud.url")
        }
        other => format!("{other}"),
    }
}
