//! Client authentication: static bearer tokens, HTTP Basic, and the JWTs of OAuth 2.0 clients
//! ([`oauth`]), each with a scope.
//!
//! Presented credentials are hashed (SHA-256) and compared in constant time against the configured hashes,
//! so a token never sits in memory longer than the request that carries it, and timing tells nothing.
//!
//! Owns what a credential may do ([`Scope`]) and the checks of the `[auth]` configuration that need what
//! this module knows ([`validate`]: the signing key, the token claims, the password-hash scheme), and the
//! `[auth]` section's types ([`settings`]), which `crate::config` parses into and re-exports: `config`
//! depends on `auth`, never the other way. Knows nothing of SCIM resources or JumpCloud.

pub mod oauth;
pub mod settings;
pub mod throttle;

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use settings::AuthConfig;

/// What a credential may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read and write (the default for a credential without a scope).
    #[default]
    Provision,
    /// Reads only; any write answers 403.
    Read,
}

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

/// How a Basic password is stored.
#[derive(Clone)]
enum PasswordHash {
    /// An argon2id PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
    Argon2(String),
    /// A hex SHA-256, from configurations written before argon2 (start-up warns about it).
    Sha256([u8; 32]),
}

/// Whether `phc` is an argon2id PHC string this build can verify with.
pub fn is_argon2id(phc: &str) -> bool {
    argon2::PasswordHash::new(phc).is_ok_and(|h| h.algorithm.as_str() == "argon2id")
}

/// The checks of `[auth]` that need this module's knowledge, run by
/// `Config::validate` in its place among the others: the JWT signing key
/// (an HMAC secret of at least 32 characters or a usable PEM private key, not both), the token lifetime
/// and claims, and Basic password hashes in a scheme this build verifies. The error names the key and the
/// fix, never a secret.
pub fn validate(cfg: &AuthConfig) -> Result<(), String> {
    let jwt = &cfg.jwt;
    if let Some(secret) = &jwt.secret
        && secret.expose().len() < 32
    {
        return Err(
            "auth.jwt.secret must be at least 32 characters (it is an HMAC-SHA-256 key)".into(),
        );
    }
    if jwt.secret.is_some() && jwt.private_key_file.is_some() {
        return Err("set one of auth.jwt.secret and auth.jwt.private_key_file, not both".into());
    }
    if let Some(path) = &jwt.private_key_file {
        oauth::SigningKey::from_pem_file(path)?;
    }
    if !(60..=86_400).contains(&jwt.ttl_s) {
        return Err("auth.jwt.ttl_s must be between 60 and 86400".into());
    }
    if jwt.issuer.is_empty() || jwt.audience.is_empty() {
        return Err("auth.jwt.issuer and auth.jwt.audience must not be empty".into());
    }
    for (i, b) in cfg.basic.iter().enumerate() {
        let h = &b.password_hash;
        let legacy = h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit());
        if !legacy && !is_argon2id(h) {
            return Err(format!(
                "auth.basic[{i}] ({}): password_hash must be an argon2id PHC string \
                 ($argon2id$v=19$m=…,t=…,p=…$salt$hash); make one with `jumpcloud-scim hash-password`",
                b.username
            ));
        }
    }
    Ok(())
}

/// An argon2id PHC string for `password`, with a random salt and the argon2 crate's default cost.
pub fn hash_password(password: &str) -> Result<String, String> {
    use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
    let salt = SaltString::generate(&mut OsRng);
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("the password could not be hashed: {e}"))
}

fn argon2_verifies(phc: &str, password: &str) -> bool {
    use argon2::password_hash::PasswordVerifier;
    argon2::PasswordHash::new(phc).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// The name a failed authentication is counted under ([`throttle`]): the Basic user name, else the
/// client's address (a bearer token names nobody until it is valid).
pub fn failure_name(headers: &HeaderMap, peer: Option<std::net::IpAddr>) -> String {
    let basic_user = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .and_then(|(_, rest)| base64_decode(rest.trim()))
        .and_then(|d| String::from_utf8(d).ok())
        .and_then(|t| t.split_once(':').map(|(u, _)| u.to_owned()));
    match (basic_user, peer) {
        (Some(u), _) => format!("basic:{u}"),
        (None, Some(ip)) => format!("ip:{ip}"),
        (None, None) => "ip:unknown".to_owned(),
    }
}

/// What is left to do after the cheap checks.
enum Step {
    Done(Result<Principal, AuthError>),
    /// A Basic password to verify against an argon2 hash (slow by design).
    Argon2 {
        phc: String,
        password: String,
        principal: Principal,
        memo: [u8; 32],
    },
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
    password_hash: PasswordHash,
    scope: Scope,
}

/// Checks the `Authorization` header against the configured credentials; [`Authenticator::replace`]
/// swaps them for new ones (rotation) without a restart, for every clone at once.
#[derive(Clone)]
pub struct Authenticator {
    current: Arc<arc_swap::ArcSwap<Credentials>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.current.load().fmt(f)
    }
}

impl Authenticator {
    /// Build from validated configuration; an error when the OAuth signing key cannot be used.
    pub fn from_config(cfg: &AuthConfig) -> Result<Self, String> {
        Ok(Self::wrap(Credentials::from_config(cfg)?))
    }

    /// A single bearer token (the demo's).
    pub fn single_token(token: &str, scope: Scope) -> Self {
        Self::wrap(Credentials::single_token(token, scope))
    }

    fn wrap(c: Credentials) -> Self {
        Authenticator {
            current: Arc::new(arc_swap::ArcSwap::from_pointee(c)),
        }
    }

    /// Use these credentials from the next request on: new ones are accepted and removed ones refused at
    /// once. On an error the current credentials stay.
    pub fn replace(&self, cfg: &AuthConfig) -> Result<(), String> {
        self.current.store(Arc::new(Credentials::from_config(cfg)?));
        Ok(())
    }

    /// The OAuth token issuer, when OAuth clients are configured.
    pub fn token_issuer(&self) -> Option<Arc<oauth::TokenIssuer>> {
        self.current.load().oauth.clone()
    }

    /// Authenticate a request, verifying argon2 hashes on the calling thread (tests, tools).
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        self.current.load().authenticate(headers)
    }

    /// Authenticate a request, verifying an argon2 hash on a blocking thread so the async workers keep
    /// answering.
    pub async fn authenticate_async(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        match self.check(headers) {
            Checked::Done(r) => r,
            Checked::Pending(p) => p.finish().await,
        }
    }

    /// Check a request's credential as far as can be done at once: every kind but a Basic password
    /// under an argon2 hash not verified recently, which is left [`Checked::Pending`].
    pub fn check(&self, headers: &HeaderMap) -> Checked {
        let current = self.current.load();
        match current.check(headers) {
            Step::Done(r) => Checked::Done(r),
            Step::Argon2 {
                phc,
                password,
                principal,
                memo,
            } => Checked::Pending(PendingCheck {
                credentials: arc_swap::Guard::into_inner(current),
                phc,
                password,
                principal,
                memo,
            }),
        }
    }
}

/// What [`Authenticator::check`] found.
pub enum Checked {
    Done(Result<Principal, AuthError>),
    /// A password still to verify against its argon2 hash (slow by design): [`PendingCheck::finish`].
    Pending(PendingCheck),
}

/// A Basic password to verify against an argon2 hash, with the credentials it was found in.
pub struct PendingCheck {
    credentials: Arc<Credentials>,
    phc: String,
    password: String,
    principal: Principal,
    memo: [u8; 32],
}

impl PendingCheck {
    /// Verify on a blocking thread, so the async workers keep answering.
    pub async fn finish(self) -> Result<Principal, AuthError> {
        tokio::task::spawn_blocking(move || {
            self.credentials
                .finish_argon2(&self.phc, &self.password, self.principal, self.memo)
        })
        .await
        .unwrap_or(Err(AuthError::Invalid))
    }
}

/// One generation of configured credentials.
struct Credentials {
    tokens: Vec<Credential>,
    basic: Vec<BasicCredential>,
    /// With OAuth clients configured: issues their tokens and checks them.
    oauth: Option<Arc<oauth::TokenIssuer>>,
    /// Basic credentials verified recently (SHA-256 of user name and password → the credential's index),
    /// so that a client sending Basic on every request pays argon2's cost once in a while, not each time.
    verified: moka::sync::Cache<[u8; 32], usize>,
}

/// How long a verified Basic credential is remembered.
const VERIFIED_TTL: std::time::Duration = std::time::Duration::from_secs(600);

fn verified_cache() -> moka::sync::Cache<[u8; 32], usize> {
    moka::sync::Cache::builder()
        .max_capacity(1024)
        .time_to_live(VERIFIED_TTL)
        .build()
}

impl std::fmt::Debug for Credentials {
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

impl Credentials {
    /// Build from validated configuration (`Config::validate` has checked the hashes' shape and the private
    /// key); an error when the OAuth signing key cannot be used.
    fn from_config(cfg: &AuthConfig) -> Result<Self, String> {
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
                let password_hash = if b.password_hash.starts_with('$') {
                    PasswordHash::Argon2(b.password_hash.clone())
                } else {
                    PasswordHash::Sha256(parse_hex32(&b.password_hash)?)
                };
                Some(BasicCredential {
                    username: b.username.clone(),
                    password_hash,
                    scope: b.scope,
                })
            })
            .collect();
        Ok(Self {
            tokens,
            basic,
            oauth: oauth::TokenIssuer::from_config(cfg)?.map(Arc::new),
            verified: verified_cache(),
        })
    }

    fn single_token(token: &str, scope: Scope) -> Self {
        Self {
            tokens: vec![Credential {
                hash: sha256(token.as_bytes()),
                name: "demo".into(),
                scope,
            }],
            basic: Vec::new(),
            oauth: None,
            verified: verified_cache(),
        }
    }

    fn authenticate(&self, headers: &HeaderMap) -> Result<Principal, AuthError> {
        match self.check(headers) {
            Step::Done(r) => r,
            Step::Argon2 {
                phc,
                password,
                principal,
                memo,
            } => self.finish_argon2(&phc, &password, principal, memo),
        }
    }

    fn finish_argon2(
        &self,
        phc: &str,
        password: &str,
        principal: Principal,
        memo: [u8; 32],
    ) -> Result<Principal, AuthError> {
        if argon2_verifies(phc, password) {
            if let Some(i) = self.basic.iter().position(|c| c.username == principal.name) {
                self.verified.insert(memo, i);
            }
            Ok(principal)
        } else {
            Err(AuthError::Invalid)
        }
    }

    fn check(&self, headers: &HeaderMap) -> Step {
        Step::Done(match self.check_cheap(headers) {
            Ok(Some(p)) => Ok(p),
            Ok(None) => return self.basic_step(headers),
            Err(e) => Err(e),
        })
    }

    /// The Basic credential a header names: a remembered verification, a SHA-256 one, or an argon2 one
    /// still to verify.
    fn basic_step(&self, headers: &HeaderMap) -> Step {
        let Some((user, password)) = basic_parts(headers) else {
            return Step::Done(Err(AuthError::Invalid));
        };
        let memo = sha256(format!("{user}\u{0}{password}").as_bytes());
        if let Some(i) = self.verified.get(&memo)
            && let Some(c) = self.basic.get(i)
            && c.username == user
        {
            return Step::Done(Ok(Principal {
                name: c.username.clone(),
                scope: c.scope,
            }));
        }
        let presented = sha256(password.as_bytes());
        let mut found: Option<&BasicCredential> = None;
        for c in &self.basic {
            if !bool::from(c.username.as_bytes().ct_eq(user.as_bytes())) {
                continue;
            }
            match &c.password_hash {
                PasswordHash::Sha256(h) => {
                    if bool::from(h.ct_eq(&presented)) {
                        found = Some(c);
                    }
                }
                PasswordHash::Argon2(phc) => {
                    return Step::Argon2 {
                        phc: phc.clone(),
                        password,
                        principal: Principal {
                            name: c.username.clone(),
                            scope: c.scope,
                        },
                        memo,
                    };
                }
            }
        }
        Step::Done(
            found
                .map(|c| Principal {
                    name: c.username.clone(),
                    scope: c.scope,
                })
                .ok_or(AuthError::Invalid),
        )
    }

    /// Bearer tokens and JWTs: `Ok(None)` when the header is Basic (for [`Self::basic_step`]).
    fn check_cheap(&self, headers: &HeaderMap) -> Result<Option<Principal>, AuthError> {
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
                return Ok(Some(Principal {
                    name: c.name.clone(),
                    scope: c.scope,
                }));
            }
            // Not a static token: perhaps a JWT an OAuth client got from /oauth/token.
            return self
                .oauth
                .as_ref()
                .filter(|_| rest.split('.').count() == 3)
                .and_then(|issuer| issuer.verify(rest))
                .map(Some)
                .ok_or(AuthError::Invalid);
        }
        if scheme.eq_ignore_ascii_case("basic") {
            return Ok(None);
        }
        Err(AuthError::Invalid)
    }
}

/// The user name and password of a Basic `Authorization` header.
fn basic_parts(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?.trim();
    let (scheme, rest) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64_decode(rest.trim())?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
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
mod tests;
