//! Client authentication: static bearer tokens, HTTP Basic, and the JWTs of OAuth 2.0 clients
//! ([`oauth`]), each with a scope.
//!
//! Presented credentials are hashed (SHA-256) and compared in constant time against the configured hashes,
//! so a token never sits in memory longer than the request that carries it, and timing tells nothing.
//! Knows nothing of SCIM resources or JumpCloud.

pub mod oauth;

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{AuthConfig, Scope};

/// Who is calling, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The credential's name (for logs and paging pins), never the secret.
    pub name: String,
    pub scope: Scope,
}

impl Principal {
    pub fn can_write(&self) -> bool {
        self.scope == Scope::Provision
    }
}

/// Why a request is not authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("authentication required: send Authorization: Bearer <token>")]
    Missing,
    #[error("the credential presented is not valid")]
    Invalid,
}

#[derive(Clone)]
struct Credential {
    hash: [u8; 32],
    name: String,
    scope: Scope,
}

#[derive(Clone)]
struct BasicCredential {
    username: String,
    password_hash: [u8; 32],
    scope: Scope,
}

/// Checks the `Authorization` header against the configured credentials.
#[derive(Clone, Default)]
pub struct Authenticator {
    tokens: Vec<Credential>,
    basic: Vec<BasicCredential>,
    /// With OAuth clients configured: issues their tokens and checks them.
    oauth: Option<Arc<oauth::TokenIssuer>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.len())
            .field("basic", &self.basic.len())
            .field("oauth", &self.oauth)
            .finish()
    }
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub(crate) fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, chunk) in hex.as_bytes().chunks(2).enumerate() {
        let s = std::str::from_utf8(chunk).ok()?;
        out[i] = u8::from_str_radix(s, 16).ok()?;
    }
    Some(out)
}

impl Authenticator {
    /// Build from validated configuration (`Config::validate` has checked the hashes' shape and the private
    /// key); an error when the OAuth signing key cannot be used.
    pub fn from_config(cfg: &AuthConfig) -> Result<Self, String> {
        let tokens = cfg
            .tokens
            .iter()
            .enumerate()
            .filter_map(|(i, t)| {
                let hash = match (&t.token, &t.token_sha256) {
                    (Some(tok), _) => sha256(tok.expose().as_bytes()),
                    (None, Some(h)) => parse_hex32(h)?,
                    (None, None) => return None,
                };
                Some(Credential {
                    hash,
                    name: t.name.clone().unwrap_or_else(|| format!("token-{}", i + 1)),
                    scope: t.scope,
                })
            })
            .collect();
        let basic = cfg
            .basic
            .iter()
            .filter_map(|b| {
                Some(BasicCredential {
                    username: b.username.clone(),
                    password_hash: parse_hex32(&b.password_hash)?,
                    scope: b.scope,
                })
            })
            .collect();
        Ok(Self {
            tokens,
            basic,
            oauth: oauth::TokenIssuer::from_config(cfg)?.map(Arc::new),
        })
    }

    /// The OAuth token issuer, when OAuth clients are configured.
    pub fn token_issuer(&self) -> Option<&oauth::TokenIssuer> {
        self.oauth.as_deref()
    }

    /// A single bearer token (the demo's).
    pub fn single_token(token: &str, scope: Scope) -> Self {
        Self {
            tokens: vec![Credential {
                hash: sha256(token.as_bytes()),
                name: "demo".into(),
                scope,
            }],
            basic: Vec::new(),
            oauth: None,
        }
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        let value = headers.get(AUTHORIZATION).ok_or(AuthError::Missing)?;
        let value = value.to_str().map_err(|_| AuthError::Invalid)?.trim();
        let (scheme, rest) = value.split_once(' ').ok_or(AuthError::Invalid)?;
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("bearer") {
            let presented = sha256(rest.as_bytes());
            let mut found: Option<&Credential> = None;
            // Compare against every credential so the time taken does not depend on which one matched.
            for c in &self.tokens {
                if bool::from(c.hash.ct_eq(&presented)) {
                    found = Some(c);
                }
            }
            if let Some(c) = found {
                return Ok(Principal {
                    name: c.name.clone(),
                    scope: c.scope,
                });
            }
            // Not a static token: perhaps a JWT an OAuth client got from /oauth/token.
            return self
                .oauth
                .as_ref()
                .filter(|_| rest.split('.').count() == 3)
                .and_then(|issuer| issuer.verify(rest))
                .ok_or(AuthError::Invalid);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            let decoded = base64_decode(rest).ok_or(AuthError::Invalid)?;
            let text = String::from_utf8(decoded).map_err(|_| AuthError::Invalid)?;
            let (user, password) = text.split_once(':').ok_or(AuthError::Invalid)?;
            let presented = sha256(password.as_bytes());
            let mut found: Option<&BasicCredential> = None;
            for c in &self.basic {
                let user_ok = c.username.as_bytes().ct_eq(user.as_bytes());
                let pw_ok = c.password_hash.ct_eq(&presented);
                if bool::from(user_ok & pw_ok) {
                    found = Some(c);
                }
            }
            return found
                .map(|c| Principal {
                    name: c.username.clone(),
                    scope: c.scope,
                })
                .ok_or(AuthError::Invalid);
        }
        Err(AuthError::Invalid)
    }
}

/// Standard base64 (with or without padding); Basic credentials are the only user.
pub fn base64_decode(input: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    let bytes: Vec<u8> = input.bytes().filter(|&c| c != b'=').collect();
    if bytes.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        out.push((acc >> 16) as u8);
        if chunk.len() > 2 {
            out.push((acc >> 8) as u8);
        }
        if chunk.len() > 3 {
            out.push(acc as u8);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BasicConfig, Secret, TokenConfig};
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
    fn base64_round_trips_known_values() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("a").is_none());
    }
}
