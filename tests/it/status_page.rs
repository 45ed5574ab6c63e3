//! `/status` as a person sees it: HTML with the figures that matter and none of the directory's personal
//! data, and, in a real headless browser (Chromium from the Debian packages), a page that renders to a
//! screenshot. Where Chromium is missing the screenshot part says so loudly and how to install it;
//! `.ci/run` installs it and sets `JCSCIM_REQUIRE_REAL_PARTS=1`, which turns that skip into a failure.

use std::path::PathBuf;

use crate::support::{Harness, json_of, small_emulator};

fn chromium() -> Option<PathBuf> {
    let on_path = crate::support::machine::on_path(&["chromium", "chromium-browser"]);
    on_path.or_else(|| Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.is_file()))
}

#[tokio::test]
async fn the_status_page_shows_figures_and_no_personal_data() {
    let h = Harness::start(small_emulator(25, 3), |_| {}).await;
    h.wait_ready().await;
    assert_eq!(h.refresh_now().await["ok"], true);
    let users = json_of(h.get("/Users").send().await.unwrap()).await;
    let r = h
        .http
        .get(format!("{}/status", h.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = r.text().await.unwrap();
    for needle in [
        "Serving: snapshot",
        "Users</dt><dd>25",
        "Last refreshes",
        "published",
        "<svg",
        "Circuit breaker",
    ] {
        assert!(html.contains(needle), "{needle} is not on the page");
    }
    for u in users["Resources"].as_array().unwrap() {
        let name = u["userName"].as_str().unwrap();
        assert!(!html.contains(name), "the page shows the userName {name}");
        for e in u["emails"].as_array().into_iter().flatten() {
            let email = e["value"].as_str().unwrap();
            assert!(!html.contains(email), "the page shows the email {email}");
        }
        let given = u["name"]["givenName"].as_str().unwrap_or("");
        assert!(
            given.is_empty() || !html.contains(&format!(">{given}<")),
            "{given}"
        );
    }

    let Some(browser) = chromium() else {
        let required = crate::support::machine::real_parts_required();
        let how = "install it with: apt-get install chromium";
        assert!(
            !required,
            "Chromium is not installed, and JCSCIM_REQUIRE_REAL_PARTS=1: {how}"
        );
        eprintln!("SKIPPED: the status page's screenshot needs Chromium ({how})");
        return;
    };
    let dir = std::env::temp_dir().join(format!("jcscim-chromium-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shot =
        crate::support::machine::screenshot_target().unwrap_or_else(|| dir.join("status.png"));
    let out = tokio::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,1500",
        ])
        .arg(format!("--user-data-dir={}", dir.join("profile").display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("{}/status", h.base))
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(std::time::Duration::from_secs(120), out)
        .await
        .expect("Chromium renders within two minutes")
        .expect("Chromium runs");
    let png = std::fs::read(&shot).unwrap_or_else(|e| {
        panic!(
            "no screenshot at {} ({e}): {}",
            shot.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG");
    assert!(
        png.len() > 20_000,
        "a page, not a blank: {} bytes",
        png.len()
    );
}

#[tokio::test]
async fn operations_endpoints_can_live_on_their_own_address_or_behind_a_credential() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let ops: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let h = Harness::start(small_emulator(3, 1), move |c| {
        c.ops.listen = Some(ops);
        c.ops.auth = jumpcloud_scim::config::OpsAuth::Read;
    })
    .await;
    h.wait_ready().await;
    let get = |url: String| h.http.get(url).send();
    // The main listener keeps the probes; /metrics and /status moved.
    assert_eq!(
        get(format!("{}/healthz", h.base)).await.unwrap().status(),
        200
    );
    assert_eq!(
        get(format!("{}/readyz", h.base)).await.unwrap().status(),
        200
    );
    assert_eq!(
        get(format!("{}/metrics", h.base)).await.unwrap().status(),
        404
    );
    let ops_base = format!("http://{ops}");
    assert_eq!(
        get(format!("{ops_base}/healthz")).await.unwrap().status(),
        200
    );
    // ops.auth = "read": a credential is needed, a read one is enough.
    assert_eq!(
        get(format!("{ops_base}/metrics")).await.unwrap().status(),
        401
    );
    let r = h
        .http
        .get(format!("{ops_base}/status"))
        .bearer_auth(crate::support::READ_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("jumpcloud-scim"));
}
