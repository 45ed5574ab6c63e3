//! Configuration loading: precedence, secret files, strict credential tables, the example file.
use super::*;
use crate::auth::Scope;

/// Load as the service does (`Config::load`), with exactly these environment variables.
// The jail's closure returns figment's own (large) error type.
#[allow(clippy::result_large_err)]
fn load_from(file: Option<&Path>, vars: &[(String, String)]) -> Result<Loaded, ConfigError> {
    let mut out = None;
    figment::Jail::expect_with(|jail| {
        jail.clear_env();
        for (k, v) in vars {
            jail.set_env(k, v);
        }
        out = Some(Config::load(file));
        Ok(())
    });
    out.expect("the jail ran")
}

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn environment_layers_over_defaults() {
    let loaded = load_from(
        None,
        &env(&[
            ("JCSCIM_JUMPCLOUD__API_KEY", "k-123"),
            ("JCSCIM_AUTH__TOKENS", "12345678,readonly-token:read"),
            ("JCSCIM_REFRESH__INTERVAL_S", "5"),
            ("JCSCIM_GROUPS__DIRECTORIES_AS_GROUPS", "false"),
            ("JCSCIM_BOGUS", "x"),
            ("PATH", "/bin"),
        ]),
    )
    .unwrap();
    let c = loaded.config;
    assert_eq!(c.jumpcloud.api_key.unwrap().expose(), "k-123");
    assert_eq!(c.refresh.interval_s, Some(5));
    assert!(!c.groups.directories_as_groups);
    assert_eq!(c.auth.tokens.len(), 2);
    assert_eq!(
        c.auth.tokens[0].token.as_ref().unwrap().expose(),
        "12345678"
    );
    assert_eq!(c.auth.tokens[0].scope, Scope::Provision);
    assert_eq!(c.auth.tokens[1].scope, Scope::Read);
    assert_eq!(loaded.warnings.len(), 1);
    assert!(loaded.warnings[0].contains("JCSCIM_BOGUS"));
}

#[test]
fn file_then_environment_and_file_secrets() {
    let dir = std::env::temp_dir().join(format!("jcscim-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:9999\"\nmystery = 1\n[jumpcloud]\nurl = \"http://127.0.0.1:1\"\n\
         [[auth.tokens]]\ntoken = \"abcdefgh\"\nname = \"sailpoint\"\nscope = \"read\"\n",
    )
    .unwrap();
    let keyfile = dir.join("key");
    std::fs::write(&keyfile, "from-file\n").unwrap();
    let loaded = load_from(
        Some(&file),
        &env(&[("JCSCIM_JUMPCLOUD__API_KEY_FILE", keyfile.to_str().unwrap())]),
    )
    .unwrap();
    assert_eq!(loaded.config.listen.port(), 9999);
    assert_eq!(
        loaded.config.jumpcloud.api_key.as_ref().unwrap().expose(),
        "from-file"
    );
    assert_eq!(
        loaded.config.auth.tokens[0].name.as_deref(),
        Some("sailpoint")
    );
    assert_eq!(loaded.config.auth.tokens[0].scope, Scope::Read);
    assert!(loaded.warnings.iter().any(|w| w.contains("mystery")));
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn oauth_clients_and_jwt_from_file_and_environment() {
    let dir = std::env::temp_dir().join(format!("jcscim-config-oauth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    let write = |text: &str| std::fs::write(&file, text).unwrap();
    let base = "[[auth.clients]]\nclient_id = \"sailpoint\"\nclient_secret = \"0123456789abcdef\"\n\
                [[auth.clients]]\nclient_id = \"auditor\"\nscope = \"read\"\n\
                client_secret_sha256 = \"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"\n\
                [auth.jwt]\naudience = \"scim-prod\"\nttl_s = 900\nkid = \"x\"\n";
    write(base);
    let keyfile = dir.join("jwt");
    std::fs::write(&keyfile, "a-signing-key-from-a-file-0123456789\n").unwrap();
    let vars = env(&[
        ("JCSCIM_JUMPCLOUD__API_KEY", "k"),
        ("JCSCIM_AUTH__JWT__SECRET_FILE", keyfile.to_str().unwrap()),
        ("JCSCIM_AUTH__JWT__ISSUER", "https://scim.example.com"),
    ]);
    // OAuth clients alone are a credential: the service is not open.
    let loaded = load_from(Some(&file), &vars).unwrap();
    let auth = &loaded.config.auth;
    assert_eq!(auth.clients.len(), 2);
    assert_eq!(auth.clients[1].scope, Scope::Read);
    assert_eq!(auth.jwt.audience, "scim-prod");
    assert_eq!(auth.jwt.issuer, "https://scim.example.com");
    assert_eq!(auth.jwt.ttl_s, 900);
    assert_eq!(
        auth.jwt.secret.as_ref().unwrap().expose(),
        "a-signing-key-from-a-file-0123456789"
    );
    assert!(
        loaded.warnings.iter().any(|w| w.contains("auth.jwt.kid")),
        "{:?}",
        loaded.warnings
    );
    let dbg = format!("{:?}", loaded.config);
    assert!(
        !dbg.contains("0123456789abcdef") && !dbg.contains("from-a-file"),
        "{dbg}"
    );

    let refused = |text: &str, vars: &[(&str, &str)]| {
        write(text);
        load_from(Some(&file), &env(vars)).unwrap_err().to_string()
    };
    let key = ("JCSCIM_JUMPCLOUD__API_KEY", "k");
    let e = refused(
        "[[auth.clients]]\nclient_id = \"a\"\nclient_secret = \"short\"\n",
        &[key],
    );
    assert!(e.contains("at least 16"), "{e}");
    let e = refused(
        "[[auth.clients]]\nclient_id = \"a\"\nclient_secret = \"0123456789abcdef\"\n\
         [[auth.clients]]\nclient_id = \"a\"\nclient_secret = \"0123456789abcdef\"\n",
        &[key],
    );
    assert!(e.contains("twice"), "{e}");
    let e = refused(base, &[key, ("JCSCIM_AUTH__JWT__SECRET", "too-short")]);
    assert!(e.contains("auth.jwt.secret"), "{e}");
    let e = refused(base, &[key, ("JCSCIM_AUTH__JWT__TTL_S", "5")]);
    assert!(e.contains("ttl_s"), "{e}");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let pem = fixtures.join("jwt-es256.pem");
    let public = fixtures.join("jwt-es256-public.pem");
    let pem_var = ("JCSCIM_AUTH__JWT__PRIVATE_KEY_FILE", pem.to_str().unwrap());
    write(base);
    let loaded = load_from(Some(&file), &env(&[key, pem_var])).unwrap();
    assert_eq!(
        loaded.config.auth.jwt.private_key_file.as_deref(),
        Some(pem.as_path())
    );
    let e = refused(
        base,
        &[
            key,
            pem_var,
            (
                "JCSCIM_AUTH__JWT__SECRET",
                "an-hmac-key-of-at-least-32-characters",
            ),
        ],
    );
    assert!(e.contains("not both"), "{e}");
    let e = refused(
        base,
        &[
            key,
            (
                "JCSCIM_AUTH__JWT__PRIVATE_KEY_FILE",
                public.to_str().unwrap(),
            ),
        ],
    );
    assert!(e.contains("jwt-es256-public.pem"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn never_open_by_default_and_key_required() {
    let err = load_from(None, &env(&[("JCSCIM_JUMPCLOUD__API_KEY", "k")])).unwrap_err();
    assert!(err.to_string().contains("never open"), "{err}");
    let err = load_from(None, &env(&[("JCSCIM_AUTH__TOKENS", "abcdefgh")])).unwrap_err();
    assert!(err.to_string().contains("api_key"), "{err}");
}

#[test]
fn credential_tables_are_strict() {
    let dir = std::env::temp_dir().join(format!("jcscim-config-strict-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    let key = env(&[("JCSCIM_JUMPCLOUD__API_KEY", "k")]);
    let phc = crate::auth::hash_password("correct horse").unwrap();
    for (table, needle) in [
        (
            "[[auth.tokens]]\ntoken = \"abcdefgh\"\nscop = \"read\"\n",
            "auth.tokens[0]: unknown key \"scop\"",
        ),
        (
            "[[auth.basic]]\nusername = \"iiq\"\npassword_hash = \"x\"\nscopes = \"read\"\n",
            "auth.basic[0]: unknown key \"scopes\"",
        ),
        (
            "[[auth.clients]]\nclient_id = \"a\"\nclient_secret = \"0123456789abcdef\"\nsecret = \"x\"\n",
            "auth.clients[0]: unknown key \"secret\"",
        ),
        (
            "[[auth.basic]]\nusername = \"iiq\"\npassword_hash = \"plain\"\n",
            "argon2id PHC string",
        ),
        (
            "[[auth.tokens]]\ntoken = \"abcdefgh\"\nscope = \"admin\"\n",
            "auth.tokens[0]",
        ),
    ] {
        std::fs::write(&file, table).unwrap();
        let e = load_from(Some(&file), &key).unwrap_err().to_string();
        assert!(e.contains(needle), "{table}: {e}");
    }
    std::fs::write(
        &file,
        format!(
            "[[auth.basic]]\nusername = \"iiq\"\npassword_hash = \"{phc}\"\nscope = \"read\"\n"
        ),
    )
    .unwrap();
    let loaded = load_from(Some(&file), &key).unwrap();
    assert_eq!(loaded.config.auth.basic[0].scope, Scope::Read);
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn token_list_scopes_are_checked() {
    for bad in ["tok:readonly", "tok:READ", "tok:admin", "a,b:x"] {
        let e = load_from(
            None,
            &env(&[
                ("JCSCIM_JUMPCLOUD__API_KEY", "k"),
                ("JCSCIM_AUTH__TOKENS", bad),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("TOKEN:read or TOKEN:provision"), "{bad}: {e}");
    }
    let e = parse_token_list("abcdefgh:9f8e7d6c5b4a39281706f5e4d3c2b1a0").unwrap_err();
    assert!(!e.contains("9f8e7d6c"), "never a piece of a secret: {e}");
    let ok = parse_token_list("one-token, two-token:read ,three:provision").unwrap();
    assert_eq!(
        ok.iter().map(|t| t.scope).collect::<Vec<_>>(),
        [Scope::Provision, Scope::Read, Scope::Provision]
    );
}

#[test]
fn secrets_are_redacted_in_debug() {
    let loaded = load_from(
        None,
        &env(&[
            ("JCSCIM_JUMPCLOUD__API_KEY", "supersecret"),
            ("JCSCIM_AUTH__TOKENS", "tok-secret-1"),
        ]),
    )
    .unwrap();
    let dbg = format!("{:?}", loaded.config);
    assert!(
        !dbg.contains("supersecret") && !dbg.contains("tok-secret-1"),
        "{dbg}"
    );
}

#[test]
fn the_example_file_documents_every_key_with_its_default() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.example.toml");
    let loaded = load_from(
        Some(&example),
        &env(&[
            ("JCSCIM_JUMPCLOUD__API_KEY", "k"),
            ("JCSCIM_AUTH__TOKENS", "abcdefgh"),
        ]),
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let mut want = Config::default();
    want.jumpcloud.api_key = Some(Secret::new("k"));
    want.auth.tokens = parse_token_list("abcdefgh").unwrap();
    assert_eq!(loaded.config, want, "the example's values are the defaults");
    // Every key of the configuration is named in it, set or commented out.
    let text = std::fs::read_to_string(&example).unwrap();
    let named = |key: &str| {
        text.lines().any(|l| {
            let l = l.trim_start_matches('#').trim();
            l.starts_with(&format!("{key} ="))
                || (l.starts_with("[[") && l.ends_with(&format!(".{key}]]")))
        })
    };
    fn leaves(v: &serde_json::Value, at: &str, out: &mut Vec<(String, String)>) {
        if let serde_json::Value::Object(m) = v {
            for (k, v) in m {
                leaves(v, k, out);
                if !v.is_object() {
                    out.push((at.to_string(), k.clone()));
                }
            }
        }
    }
    let mut keys = Vec::new();
    leaves(
        &serde_json::to_value(Config::default()).unwrap(),
        "",
        &mut keys,
    );
    for (_, key) in keys {
        assert!(named(&key), "config.example.toml does not name {key}");
    }
    for key in [
        "api_key",
        "org_id",
        "public_url",
        "data_dir",
        "secret",
        "private_key_file",
    ] {
        assert!(named(key), "config.example.toml does not name {key}");
    }
}

#[test]
fn precedence_is_default_file_environment_then_secret_files() {
    let dir = std::env::temp_dir().join(format!("jcscim-config-order-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("c.toml");
    let secret = dir.join("client-secret");
    std::fs::write(&secret, "a-client-secret-from-a-file\n").unwrap();
    std::fs::write(
        &file,
        format!(
            "[refresh]\ninterval_s = 10\njitter = 0.2\n[jumpcloud]\napi_key = \"from-the-file\"\n\
             [[auth.clients]]\nclient_id = \"sp\"\nclient_secret_file = \"{}\"\n[log]\nlevel = \"debug\"\n",
            secret.display()
        ),
    )
    .unwrap();
    let key_file = dir.join("api-key");
    std::fs::write(&key_file, "from-a-secret-file\n").unwrap();
    let loaded = load_from(
        Some(&file),
        &env(&[
            ("JCSCIM_REFRESH__INTERVAL_S", "20"),
            ("JCSCIM_JUMPCLOUD__API_KEY", "from-the-environment"),
            ("JCSCIM_JUMPCLOUD__API_KEY_FILE", key_file.to_str().unwrap()),
        ]),
    )
    .unwrap();
    let c = &loaded.config;
    assert_eq!(c.refresh.interval_s, Some(20), "environment over file");
    assert_eq!(c.refresh.jitter, 0.2, "file over default");
    assert_eq!(c.refresh.max_shrink, 0.1, "default");
    assert_eq!(c.log.level, "debug");
    assert_eq!(
        c.jumpcloud.api_key.as_ref().unwrap().expose(),
        "from-a-secret-file",
        "a secret file over everything"
    );
    assert_eq!(
        c.auth.clients[0].client_secret.as_ref().unwrap().expose(),
        "a-client-secret-from-a-file"
    );
    assert_eq!(loaded.secret_files.len(), 2);
    // A missing secret file names itself; a bad value names its key.
    let e = load_from(
        Some(&file),
        &env(&[("JCSCIM_JUMPCLOUD__API_KEY_FILE", "/nonexistent/api-key")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("/nonexistent/api-key"), "{e}");
    let e = load_from(
        Some(&file),
        &env(&[("JCSCIM_REFRESH__INTERVAL_S", "often")]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("refresh.interval_s"), "{e}");
    let e = load_from(None, &env(&[("JCSCIM_AUTH__TOKENS", "abcdefgh")]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("jumpcloud.api_key is required"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_feed_settings_load_validate_and_pick_the_refresh_interval() {
    let base = [
        ("JCSCIM_JUMPCLOUD__API_KEY", "k"),
        ("JCSCIM_AUTH__TOKENS", "abcdefgh"),
    ];
    let c = load_from(None, &env(&base)).unwrap().config;
    assert_eq!(c.insights, InsightsConfig::default());
    assert_eq!(c.insights.enabled, FeedMode::Auto);
    assert_eq!(c.refresh.interval_s, None);
    assert_eq!(
        (c.refresh_interval_s(false), c.refresh_interval_s(true)),
        (60, 3600)
    );
    assert_eq!(
        c.insights_url(),
        "https://api.jumpcloud.com/insights/directory/v1"
    );
    let mut vars = base.to_vec();
    vars.extend([
        ("JCSCIM_INSIGHTS__ENABLED", "off"),
        ("JCSCIM_INSIGHTS__URL", "http://127.0.0.1:9/di/"),
        ("JCSCIM_INSIGHTS__POLL_S", "2"),
        ("JCSCIM_REFRESH__INTERVAL_S", "300"),
    ]);
    let c = load_from(None, &env(&vars)).unwrap().config;
    assert_eq!(c.insights.enabled, FeedMode::Off);
    assert_eq!(c.insights.poll_s, 2);
    assert_eq!(c.insights_url(), "http://127.0.0.1:9/di");
    assert_eq!(
        (c.refresh_interval_s(false), c.refresh_interval_s(true)),
        (300, 300),
        "a value set applies in both cases"
    );
    for (key, value, says) in [
        ("JCSCIM_INSIGHTS__ENABLED", "sometimes", "insights.enabled"),
        ("JCSCIM_INSIGHTS__POLL_S", "0", "insights.poll_s"),
        ("JCSCIM_INSIGHTS__OVERLAP_S", "30", "insights.overlap_s"),
        ("JCSCIM_INSIGHTS__RETENTION_S", "60", "insights.retention_s"),
        ("JCSCIM_INSIGHTS__URL", "api.jumpcloud.com", "insights.url"),
        ("JCSCIM_REFRESH__INTERVAL_S", "0", "refresh.interval_s"),
    ] {
        let mut vars = base.to_vec();
        vars.push((key, value));
        let e = load_from(None, &env(&vars)).unwrap_err().to_string();
        assert!(e.contains(says), "{key}={value}: {e}");
    }
}

#[test]
fn a_redis_store_reads_its_url_from_a_file_and_never_shows_the_password() {
    let dir = std::env::temp_dir().join(format!("jcscim-store-cfg-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let url_file = dir.join("redis-url");
    std::fs::write(&url_file, "redis://app:s3cret-pass@redis:6379/2\n").unwrap();
    let base = [
        ("JCSCIM_JUMPCLOUD__API_KEY", "k-123"),
        ("JCSCIM_AUTH__TOKENS", "12345678"),
        ("JCSCIM_STORE__KIND", "redis"),
    ];
    let mut vars = env(&base);
    vars.push((
        "JCSCIM_STORE__URL_FILE".into(),
        url_file.to_str().unwrap().into(),
    ));
    vars.push(("JCSCIM_STORE__LEASE_S".into(), "6".into()));
    let loaded = load_from(None, &vars).unwrap();
    let store = &loaded.config.store;
    assert_eq!(store.kind, StoreKind::Redis);
    assert_eq!(store.lease_s, 6);
    assert_eq!(store.key_prefix, "jcscim:");
    assert_eq!(
        store.url.as_ref().unwrap().expose(),
        "redis://app:s3cret-pass@redis:6379/2"
    );
    assert_eq!(store.redacted_url(), "redis://app:***@redis:6379/2");
    assert!(!format!("{:?}", loaded.config).contains("s3cret-pass"));
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    // Redis without a URL: refused, naming the key.
    let err = load_from(None, &env(&base)).unwrap_err().to_string();
    assert!(err.contains("store.url is required"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
