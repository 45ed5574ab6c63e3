//! An independent RFC 7643/7644 conformance suite (python-scim's `scim2-tester`, through the `scim2` command
//! of `scim2-cli`) run against the service in front of a small fault-free directory, as an outside reviewer
//! would run it against `demo`. Every check must pass.
//!
//! The suite comes from PyPI. Where `scim2` is not on `PATH` the test says so loudly and how to install it,
//! and passes; `.ci/run` installs it and sets `JCSCIM_REQUIRE_REAL_PARTS=1`, which turns that skip into a
//! failure, so CI can never pass it silently.

use crate::support::{Harness, TOKEN, small_emulator};

/// The `scim2` command, or why it cannot run here.
fn scim2_command() -> Option<std::path::PathBuf> {
    crate::support::machine::on_path(&["scim2"])
}

#[tokio::test]
async fn an_outside_conformance_suite_finds_nothing() {
    let Some(scim2) = scim2_command() else {
        let required = crate::support::machine::real_parts_required();
        let how = "install it with: python3 -m venv .venv && .venv/bin/pip install scim2-cli==0.6.0 \
                   scim2-tester==0.5.2, then put .venv/bin on PATH";
        assert!(
            !required,
            "the conformance suite (scim2) is not installed, and JCSCIM_REQUIRE_REAL_PARTS=1: {how}"
        );
        eprintln!("SKIPPED: the conformance suite is not installed ({how})");
        return;
    };
    let h = Harness::start(small_emulator(5, 2), |_| {}).await;
    h.wait_ready().await;
    let base = h.scim("");
    let out = tokio::process::Command::new(&scim2)
        .arg("-u")
        .arg(base.trim_end_matches('/'))
        .arg("-h")
        .arg(format!("Authorization: Bearer {TOKEN}"))
        .arg("test")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(300), out)
        .await
        .expect("the suite finishes within five minutes")
        .expect("scim2 runs");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let passed = text.lines().filter(|l| l.starts_with("SUCCESS")).count();
    let failed: Vec<&str> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("ERROR") || l.starts_with("CRITICAL"))
        .map(|(_, l)| l)
        .collect();
    assert!(failed.is_empty(), "{} checks failed:\n{text}", failed.len());
    assert!(passed >= 100, "only {passed} checks passed:\n{text}");
}
