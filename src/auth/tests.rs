use super::settings::{BasicConfig, TokenConfig};
use super::*;
use crate::secret::Secret;
use axum::http::HeaderValue;

fn headers(v: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, HeaderValue::from_str(v).unwrap());
    h
}

fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn auth() -> Authenticator {
    Authenticator::from_config(&AuthConfig {
        tokens: vec![
            TokenConfig {
                token: Some(Secret::new("provision-token")),
                token_sha256: None,
                name: Some("sailpoint".into()),
                scope: Scope::Provision,
            },
            TokenConfig {
                token: None,
                token_sha256: Some(hex(&sha256(b"reader-token"))),
                name: None,
                scope: Scope::Read,
            },
        ],
        basic: vec![BasicConfig {
            username: "iiq".into(),
            password_hash: hex(&sha256(b"s3cret")),
            scope: Scope::Provision,
        }],
        ..AuthConfig::default()
    })
    .unwrap()
}

#[test]
fn bearer_tokens_and_scopes() {
    let a = auth();
    let p = a.authenticate(&headers("Bearer provision-token")).unwrap();
    assert_eq!((p.name.as_str(), p.can_write()), ("sailpoint", true));
    let p = a.authenticate(&headers("bearer   reader-token")).unwrap();
    assert_eq!((p.name.as_str(), p.can_write()), ("token-2", false));
    assert_eq!(
        a.authenticate(&headers("Bearer nope")),
        Err(AuthError::Invalid)
    );
    assert_eq!(a.authenticate(&HeaderMap::new()), Err(AuthError::Missing));
    assert_eq!(a.authenticate(&headers("Token x")), Err(AuthError::Invalid));
}

#[test]
fn basic_credentials() {
    let a = auth();
    // "iiq:s3cret"
    let p = a.authenticate(&headers("Basic aWlxOnMzY3JldA==")).unwrap();
    assert_eq!(p.name, "iiq");
    // "iiq:wrong"
    assert_eq!(
        a.authenticate(&headers("Basic aWlxOndyb25n")),
        Err(AuthError::Invalid)
    );
    assert_eq!(
        a.authenticate(&headers("Basic !!!")),
        Err(AuthError::Invalid)
    );
}

#[test]
fn argon2_basic_credentials_verify_once_then_from_memory() {
    let phc = hash_password("correct horse battery").unwrap();
    assert!(phc.starts_with("$argon2id$") && is_argon2id(&phc));
    assert!(!is_argon2id("$argon2i$nonsense") && !is_argon2id("abc"));
    let a = Authenticator::from_config(&AuthConfig {
        basic: vec![BasicConfig {
            username: "sailpoint".into(),
            password_hash: phc,
            scope: Scope::Read,
        }],
        ..AuthConfig::default()
    })
    .unwrap();
    let basic = |user: &str, pw: &str| {
        let text = format!("{user}:{pw}");
        let b64 = base64_encode(text.as_bytes());
        headers(&format!("Basic {b64}"))
    };
    let p = a
        .authenticate(&basic("sailpoint", "correct horse battery"))
        .unwrap();
    assert_eq!((p.name.as_str(), p.can_write()), ("sailpoint", false));
    assert!(
        a.current
            .load()
            .verified
            .contains_key(&sha256(b"sailpoint\0correct horse battery"))
    );
    assert_eq!(
        a.authenticate(&basic("sailpoint", "wrong")),
        Err(AuthError::Invalid)
    );
    assert_eq!(
        a.authenticate(&basic("other", "correct horse battery")),
        Err(AuthError::Invalid)
    );
    assert_eq!(
        failure_name(&basic("sailpoint", "x"), None),
        "basic:sailpoint"
    );
    assert_eq!(
        failure_name(&headers("Bearer x"), Some([10, 0, 0, 1].into())),
        "ip:10.0.0.1"
    );
}

fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in data.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= c.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn base64_round_trips_known_values() {
    assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
    assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
    assert_eq!(base64_decode("").unwrap(), b"");
    assert!(base64_decode("a").is_none());
}

#[test]
fn the_auth_section_is_checked_for_what_only_auth_knows() {
    let mut cfg = AuthConfig::default();
    assert_eq!(validate(&cfg), Ok(()));
    let basic = |hash: &str| BasicConfig {
        username: "iiq".into(),
        password_hash: hash.into(),
        scope: Scope::Read,
    };
    cfg.basic = vec![
        basic(&hash_password("correct horse").unwrap()),
        basic(&"ab".repeat(32)),
    ];
    assert_eq!(
        validate(&cfg),
        Ok(()),
        "argon2id and the legacy hex SHA-256 are read"
    );
    cfg.basic.push(basic("plain"));
    let e = validate(&cfg).unwrap_err();
    assert!(
        e.starts_with("auth.basic[2] (iiq)") && e.contains("argon2id PHC"),
        "{e}"
    );
    cfg.basic.clear();
    cfg.jwt.secret = Some(Secret::new("short"));
    assert!(
        validate(&cfg)
            .unwrap_err()
            .contains("at least 32 characters")
    );
    cfg.jwt.secret = Some(Secret::new("an-hmac-key-of-at-least-32-characters"));
    cfg.jwt.private_key_file = Some("/nonexistent/key.pem".into());
    assert!(validate(&cfg).unwrap_err().contains("not both"));
    cfg.jwt.secret = None;
    let e = validate(&cfg).unwrap_err();
    assert!(
        e.contains("/nonexistent/key.pem") && e.contains("cannot be read"),
        "{e}"
    );
    cfg.jwt.private_key_file = None;
    cfg.jwt.ttl_s = 59;
    assert!(validate(&cfg).unwrap_err().contains("ttl_s"));
    cfg.jwt.ttl_s = 3600;
    cfg.jwt.audience.clear();
    assert!(validate(&cfg).unwrap_err().contains("audience"));
}
