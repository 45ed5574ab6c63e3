use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, HeaderValue};

use super::*;
use crate::auth::settings::{ClientConfig, JwtConfig};
use crate::auth::{AuthError, Authenticator};
use crate::secret::Secret;

const KEY: &str = "an-hmac-key-of-at-least-32-characters!";

fn hex(b: &[u8; 32]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn config(audience: &str) -> AuthConfig {
    AuthConfig {
        clients: vec![
            ClientConfig {
                client_id: "sailpoint".into(),
                client_secret: Some(Secret::new("sailpoint-client-secret")),
                client_secret_sha256: None,
                scope: Scope::Provision,
            },
            ClientConfig {
                client_id: "auditor".into(),
                client_secret: None,
                client_secret_sha256: Some(hex(&sha256(b"auditor-client-secret"))),
                scope: Scope::Read,
            },
        ],
        jwt: JwtConfig {
            audience: audience.into(),
            secret: Some(Secret::new(KEY)),
            ..JwtConfig::default()
        },
        ..AuthConfig::default()
    }
}

fn issuer() -> TokenIssuer {
    TokenIssuer::from_config(&config("jumpcloud-scim"))
        .unwrap()
        .expect("clients are configured")
}

fn request(id: &str, secret: &str, scope: Option<&str>) -> TokenRequest {
    TokenRequest {
        grant_type: Some(CLIENT_CREDENTIALS.into()),
        client_id: Some(id.into()),
        client_secret: Some(secret.into()),
        scope: scope.map(Into::into),
        basic: false,
    }
}

fn claims(sub: &str, scope: &str, exp: u64) -> Claims {
    Claims {
        iss: "jumpcloud-scim".into(),
        aud: "jumpcloud-scim".into(),
        sub: sub.into(),
        iat: now_s(),
        exp,
        scope: scope.into(),
    }
}

fn sign(issuer: &TokenIssuer, c: &Claims) -> String {
    jsonwebtoken::encode(&Header::new(issuer.key.algorithm), c, &issuer.key.encoding).unwrap()
}

#[test]
fn no_clients_no_issuer() {
    assert!(
        TokenIssuer::from_config(&AuthConfig::default())
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_client_gets_a_token_that_authenticates_as_it() {
    let i = issuer();
    let t = i
        .issue(&request("sailpoint", "sailpoint-client-secret", None))
        .unwrap();
    assert_eq!(
        (t.token_type, t.expires_in, t.scope),
        ("Bearer", 3600, "provision")
    );
    let p = i.verify(&t.access_token).expect("our own token verifies");
    assert_eq!(p.name, "oauth:sailpoint");
    assert!(p.can_write());
    // A client configured by its secret's hash.
    let t = i
        .issue(&request("auditor", "auditor-client-secret", None))
        .unwrap();
    assert_eq!(t.scope, "read");
    assert!(!i.verify(&t.access_token).unwrap().can_write());
}

#[test]
fn bad_client_credentials_are_invalid_client() {
    let i = issuer();
    for req in [
        request("sailpoint", "wrong-secret", None),
        request("nobody", "sailpoint-client-secret", None),
        request("auditor", "sailpoint-client-secret", None),
        TokenRequest {
            client_secret: None,
            ..request("sailpoint", "x", None)
        },
    ] {
        let e = i.issue(&req).unwrap_err();
        assert_eq!((e.code(), e.status()), ("invalid_client", 401), "{e}");
    }
}

#[test]
fn grant_type_is_required_and_only_client_credentials() {
    let i = issuer();
    let missing = TokenRequest {
        grant_type: None,
        ..request("sailpoint", "sailpoint-client-secret", None)
    };
    let e = i.issue(&missing).unwrap_err();
    assert_eq!((e.code(), e.status()), ("invalid_request", 400));
    assert!(e.description().contains("grant_type=client_credentials"));
    let password = TokenRequest {
        grant_type: Some("password".into()),
        ..request("sailpoint", "sailpoint-client-secret", None)
    };
    let e = i.issue(&password).unwrap_err();
    assert_eq!((e.code(), e.status()), ("unsupported_grant_type", 400));
}

#[test]
fn scope_is_the_clients_or_read_when_asked() {
    let i = issuer();
    let secret = "sailpoint-client-secret";
    let scope = |s: Option<&str>| i.issue(&request("sailpoint", secret, s)).map(|t| t.scope);
    assert_eq!(scope(None), Ok("provision"));
    assert_eq!(scope(Some("read")), Ok("read"));
    assert_eq!(scope(Some("provision read")), Ok("provision"));
    // Tokens this service does not define are ignored; the answer says what was granted.
    assert_eq!(scope(Some("scim openid")), Ok("provision"));
    let e = i
        .issue(&request(
            "auditor",
            "auditor-client-secret",
            Some("provision"),
        ))
        .unwrap_err();
    assert_eq!((e.code(), e.status()), ("invalid_scope", 400));
    // A read token from a provisioning client cannot write.
    let t = i
        .issue(&request("sailpoint", secret, Some("read")))
        .unwrap();
    assert!(!i.verify(&t.access_token).unwrap().can_write());
}

#[test]
fn only_our_live_tokens_for_configured_clients_verify() {
    let i = issuer();
    let good = sign(&i, &claims("sailpoint", "provision", now_s() + 600));
    assert!(i.verify(&good).is_some());
    // Expired (beyond the leeway).
    assert!(
        i.verify(&sign(&i, &claims("sailpoint", "provision", now_s() - 60)))
            .is_none()
    );
    // Tampered: a changed payload breaks the signature.
    let mut parts: Vec<String> = good.split('.').map(String::from).collect();
    let other = sign(&i, &claims("auditor", "provision", now_s() + 600));
    parts[1] = other.split('.').nth(1).unwrap().into();
    assert!(i.verify(&parts.join(".")).is_none());
    // Signed with another key (a restart without auth.jwt.secret).
    let mut keyless = config("jumpcloud-scim");
    keyless.jwt.secret = None;
    let stranger = TokenIssuer::from_config(&keyless).unwrap().unwrap();
    assert!(
        i.verify(&sign(
            &stranger,
            &claims("sailpoint", "provision", now_s() + 600)
        ))
        .is_none()
    );
    // For another audience, with the same key.
    let elsewhere = TokenIssuer::from_config(&config("another-service"))
        .unwrap()
        .unwrap();
    let t = elsewhere
        .issue(&request("sailpoint", "sailpoint-client-secret", None))
        .unwrap();
    assert!(elsewhere.verify(&t.access_token).is_some());
    assert!(i.verify(&t.access_token).is_none());
    // For a client no longer configured, with the same key.
    let mut fewer = config("jumpcloud-scim");
    fewer.clients.retain(|c| c.client_id != "sailpoint");
    let after_removal = TokenIssuer::from_config(&fewer).unwrap().unwrap();
    assert!(after_removal.verify(&good).is_none());
    // A read-only client's token never writes, whatever its claims say.
    let forged = sign(&i, &claims("auditor", "provision", now_s() + 600));
    assert!(!i.verify(&forged).unwrap().can_write());
    assert!(i.verify("not.a.token").is_none());
}

#[test]
fn the_authenticator_takes_oauth_tokens_as_bearer_tokens() {
    let mut cfg = config("jumpcloud-scim");
    cfg.tokens = vec![crate::auth::settings::TokenConfig {
        token: Some(Secret::new("static-token-1")),
        token_sha256: None,
        name: Some("static".into()),
        scope: Scope::Read,
    }];
    let a = Authenticator::from_config(&cfg).unwrap();
    let issued = a
        .token_issuer()
        .unwrap()
        .issue(&request("sailpoint", "sailpoint-client-secret", None))
        .unwrap();
    let bearer = |t: &str| {
        let mut h = HeaderMap::new();
        h.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {t}")).unwrap(),
        );
        a.authenticate(&h)
    };
    assert_eq!(
        bearer(&issued.access_token).unwrap().name,
        "oauth:sailpoint"
    );
    assert_eq!(bearer("static-token-1").unwrap().name, "static");
    assert_eq!(bearer("a.b.c"), Err(AuthError::Invalid));
    assert_eq!(bearer("static-token-2"), Err(AuthError::Invalid));
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

#[test]
fn private_keys_sign_with_their_algorithm_and_are_checked_by_their_public_half() {
    for (file, alg) in [
        ("jwt-es256.pem", Algorithm::ES256),
        ("jwt-es384.pem", Algorithm::ES384),
        ("jwt-rs256.pem", Algorithm::RS256),
    ] {
        let mut cfg = config("jumpcloud-scim");
        cfg.jwt.secret = None;
        cfg.jwt.private_key_file = Some(fixture(file));
        let i = TokenIssuer::from_config(&cfg).unwrap().unwrap();
        assert_eq!(i.key.algorithm(), alg, "{file}");
        let t = i
            .issue(&request("sailpoint", "sailpoint-client-secret", None))
            .unwrap();
        let header = jsonwebtoken::decode_header(&t.access_token).unwrap();
        assert_eq!(header.alg, alg, "{file}");
        assert_eq!(i.verify(&t.access_token).unwrap().name, "oauth:sailpoint");
        // The HMAC issuer does not take it, nor the other way round.
        assert!(issuer().verify(&t.access_token).is_none(), "{file}");
        let hs = issuer()
            .issue(&request("sailpoint", "sailpoint-client-secret", None))
            .unwrap();
        assert!(i.verify(&hs.access_token).is_none(), "{file}");
    }
}

#[test]
fn a_key_file_that_cannot_sign_is_refused_by_name() {
    for file in ["jwt-es256-public.pem", "missing.pem"] {
        let e = SigningKey::from_pem_file(&fixture(file)).err().unwrap();
        assert!(
            e.contains(file) && e.contains("auth.jwt.private_key_file"),
            "{e}"
        );
        assert!(
            !e.contains("BEGIN"),
            "the key's text stays out of the message"
        );
    }
    let mut cfg = config("jumpcloud-scim");
    cfg.jwt.secret = None;
    cfg.jwt.private_key_file = Some(fixture("jwt-es256-public.pem"));
    assert!(TokenIssuer::from_config(&cfg).is_err());
}
