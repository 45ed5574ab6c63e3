//! Building the client: unusable settings refused, the key kept out of every text, counters diffed.

use std::time::Duration;

use serde_json::json;

use crate::jumpcloud::client::test_support::{KEY, Upstream, reply};
use crate::jumpcloud::{ClientStats, JcClient, JcClientConfig, JcError};

#[tokio::test]
async fn the_key_stays_out_of_debug_and_errors() {
    let up = Upstream::start(|s, _| {
        let echoed = s.header("x-api-key").unwrap_or("").to_owned();
        reply(
            400,
            json!({"message": format!("key {echoed} is not allowed here")}),
        )
    })
    .await;
    let config = up.config();
    let client = JcClient::new(config.clone()).unwrap();
    let err = client.list_users().await.unwrap_err();
    for text in [
        format!("{config:?}"),
        format!("{client:?}"),
        format!("{err:?}"),
        err.to_string(),
    ] {
        assert!(!text.contains(KEY), "{text}");
    }
    assert!(err.to_string().contains("[redacted]"));
}

#[test]
fn unusable_configuration_is_refused() {
    let ok = JcClientConfig::new("https://console.jumpcloud.com", KEY);
    assert!(JcClient::new(ok.clone()).is_ok());
    let bad = [
        JcClientConfig::new("console.jumpcloud.com", KEY),
        JcClientConfig::new("ftp://console.jumpcloud.com", KEY),
        JcClientConfig::new("https://console.jumpcloud.com/?x=1", KEY),
        JcClientConfig::new("https://console.jumpcloud.com", " "),
        JcClientConfig::new("https://console.jumpcloud.com", "key\nwith-newline"),
        JcClientConfig {
            timeout: Duration::ZERO,
            ..ok.clone()
        },
        JcClientConfig {
            org_id: Some("bad\norg".into()),
            ..ok
        },
    ];
    for config in bad {
        let shown = format!("{config:?}");
        assert!(
            matches!(JcClient::new(config), Err(JcError::Protocol { .. })),
            "{shown}"
        );
    }
}

#[test]
fn stats_diff() {
    let before = ClientStats {
        calls: 10,
        retries: 2,
        failed_fast: 4,
        retries_refused: 0,
    };
    let after = ClientStats {
        calls: 15,
        retries: 3,
        failed_fast: 9,
        retries_refused: 1,
    };
    assert_eq!(
        after.since(before),
        ClientStats {
            calls: 5,
            retries: 1,
            failed_fast: 5,
            retries_refused: 1,
        }
    );
}
