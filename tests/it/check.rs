//! `jumpcloud-scim check`, run as an operator runs it, against the emulator: a good key, a bad key, an
//! outage, a multi-tenant administrator's key without `org_id`, a host that does not answer.

use std::process::Output;

use jumpcloud_scim::emulator::{self, EmulatorConfig};
use serde_json::json;

use crate::support::small_emulator;

/// Run `check` with exactly this environment (and no configuration file).
async fn check(vars: &[(&str, String)]) -> (bool, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_jumpcloud-scim"));
    cmd.arg("check").env_clear().kill_on_drop(true);
    cmd.env("PATH", crate::support::machine::path());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out: Output = tokio::time::timeout(std::time::Duration::from_secs(60), cmd.output())
        .await
        .expect("check finishes within a minute")
        .expect("check runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

fn vars(url: &str, key: &str) -> Vec<(&'static str, String)> {
    vec![
        ("JCSCIM_JUMPCLOUD__URL", url.to_owned()),
        ("JCSCIM_JUMPCLOUD__API_KEY", key.to_owned()),
    ]
}

#[tokio::test]
async fn check_reports_counts_or_what_to_fix() {
    let emu = emulator::spawn(small_emulator(37, 4)).await.unwrap();
    let url = emu.base_url();
    // A good key: the totals, without paging the directory, and no client credential needed.
    let (ok, text) = check(&vars(&url, "demo-key")).await;
    assert!(ok, "{text}");
    assert!(text.contains("system users: 37"), "{text}");
    let groups = reqwest::Client::new()
        .get(format!("{url}/api/v2/usergroups?limit=1"))
        .header("x-api-key", "demo-key")
        .send()
        .await
        .unwrap();
    let total = groups.headers()["x-total-count"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(text.contains(&format!("user groups: {total}")), "{text}");
    assert!(
        text.contains("latency:") && text.contains("check passed"),
        "{text}"
    );
    // A bad key.
    let (ok, text) = check(&vars(&url, "wrong-key")).await;
    assert!(!ok, "{text}");
    assert!(text.contains("refused the API key"), "{text}");
    assert!(text.contains("check FAILED"), "{text}");
    // An outage.
    let client = reqwest::Client::new();
    client
        .put(format!("{url}/__emulator/faults"))
        .json(&json!({"outage_now_s": 60}))
        .send()
        .await
        .unwrap();
    let (ok, text) = check(&vars(&url, "demo-key")).await;
    assert!(!ok, "{text}");
    assert!(
        text.contains("JumpCloud answered HTTP 502") && text.contains("outage"),
        "{text}"
    );
    // No key at all.
    let (ok, text) = check(&[("JCSCIM_JUMPCLOUD__URL", url.clone())]).await;
    assert!(
        !ok && text.contains("jumpcloud.api_key is not set"),
        "{text}"
    );
    // A host that does not answer.
    let (ok, text) = check(&vars("http://127.0.0.1:9", "demo-key")).await;
    assert!(!ok && text.contains("cannot reach 127.0.0.1:9"), "{text}");
}

#[tokio::test]
async fn check_names_the_org_id_a_multi_tenant_key_needs() {
    let emu = emulator::spawn(EmulatorConfig {
        multi_tenant: true,
        ..small_emulator(5, 1)
    })
    .await
    .unwrap();
    let url = emu.base_url();
    let (ok, text) = check(&vars(&url, "demo-key")).await;
    assert!(!ok, "{text}");
    assert!(text.contains("jumpcloud.org_id"), "{text}");
}

#[tokio::test]
async fn check_says_whether_the_organisation_has_the_feed() {
    let emu = emulator::spawn(small_emulator(5, 1)).await.unwrap();
    let (ok, text) = check(&vars(&emu.base_url(), "demo-key")).await;
    assert!(ok, "{text}");
    assert!(
        text.contains(&format!(
            "Directory Insights: available at {}/insights/directory/v1",
            emu.base_url()
        )) && text.contains("full refresh every 3600 s"),
        "{text}"
    );
    let without = emulator::spawn(EmulatorConfig {
        faults: emulator::FaultConfig {
            insights: false,
            ..Default::default()
        },
        ..small_emulator(5, 1)
    })
    .await
    .unwrap();
    // With "auto", a plan without the feed is a fact, not a problem.
    let (ok, text) = check(&vars(&without.base_url(), "demo-key")).await;
    assert!(ok, "{text}");
    assert!(
        text.contains("Directory Insights: not in the organisation's plan (HTTP 403")
            && text.contains("full refresh every 60 s"),
        "{text}"
    );
    // With "on", it is.
    let mut on = vars(&without.base_url(), "demo-key");
    on.push(("JCSCIM_INSIGHTS__ENABLED", "on".into()));
    let (ok, text) = check(&on).await;
    assert!(!ok, "{text}");
    assert!(
        text.contains("problem: Directory Insights: not in"),
        "{text}"
    );
}

#[tokio::test]
async fn check_says_whether_the_shared_store_answers_without_showing_its_password() {
    let emu = emulator::spawn(small_emulator(3, 1)).await.unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut v = vars(&emu.base_url(), "demo-key");
    v.push(("JCSCIM_STORE__KIND", "redis".to_owned()));
    v.push((
        "JCSCIM_STORE__URL",
        format!("redis://app:hunter2-secret@127.0.0.1:{closed}"),
    ));
    let (ok, text) = check(&v).await;
    assert!(!ok, "{text}");
    assert!(text.contains("shared store"), "{text}");
    assert!(text.contains("app:***@127.0.0.1"), "{text}");
    assert!(!text.contains("hunter2-secret"), "{text}");
}
