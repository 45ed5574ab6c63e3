//! OAuth 2.0 client credentials (RFC 6749 §4.4): a configured client trades its id and secret at
//! `POST /oauth/token` for a short-lived JWT (RFC 7519; HS256, or ES256 / ES384 / RS256 with a private key),
//! which is then a bearer token like any other.
//!
//! Owns the grant's rules (client authentication, scope, the token's claims) and the token's checks: the
//! signature, issuer, audience and expiry, and that the client named in `sub` is still configured, so
//! removing a client revokes its tokens at the next start even when the signing key stays. Client secrets
//! are held as SHA-256 hashes and compared in constant time. Knows nothing of HTTP framing, SCIM or
//! JumpCloud: `http` turns a request into a [`TokenRequest`] and an [`OAuthError`] into an answer.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use super::settings::AuthConfig;
use super::{Principal, Scope, parse_hex32, sha256};

/// The grant this endpoint serves.
pub const CLIENT_CREDENTIALS: &str = "client_credentials";

/// A token request, as the client sent it (the client's credentials from HTTP Basic or the form).
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub grant_type: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// Space-separated scope tokens.
    pub scope: Option<String>,
    /// The client authenticated with HTTP Basic (so a failure answers with a Basic challenge).
    pub basic: bool,
}

/// What the token endpoint answers on success (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssuedToken {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub scope: &'static str,
}

/// Why a token request is refused, as RFC 6749 §5.2 names it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    #[error("server_error: {0}")]
    Server(String),
}

impl OAuthError {
    /// The `error` code of the answer's body.
    pub fn code(&self) -> &'static str {
        match self {
            OAuthError::InvalidRequest(_) => "invalid_request",
            OAuthError::InvalidClient(_) => "invalid_client",
            OAuthError::UnsupportedGrantType(_) => "unsupported_grant_type",
            OAuthError::InvalidScope(_) => "invalid_scope",
            OAuthError::Server(_) => "server_error",
        }
    }

    /// The `error_description`: what the client can change. Never a secret.
    pub fn description(&self) -> &str {
        match self {
            OAuthError::InvalidRequest(d)
            | OAuthError::InvalidClient(d)
            | OAuthError::UnsupportedGrantType(d)
            | OAuthError::InvalidScope(d)
            | OAuthError::Server(d) => d,
        }
    }

    /// 401 for a client that failed to authenticate, 500 for our own failure, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            OAuthError::InvalidClient(_) => 401,
            OAuthError::Server(_) => 500,
            _ => 400,
        }
    }
}

/// The claims of an issued token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    /// The client id.
    sub: String,
    iat: u64,
    exp: u64,
    /// `provision` or `read`.
    scope: String,
}

#[derive(Clone)]
struct Client {
    id: String,
    secret_hash: [u8; 32],
    scope: Scope,
}

/// The key tokens are signed and checked with.
#[derive(Clone)]
pub struct SigningKey {
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl SigningKey {
    /// HS256 with a shared secret.
    pub fn hmac(secret: &[u8]) -> SigningKey {
        SigningKey {
            algorithm: Algorithm::HS256,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
        }
    }

    /// A PEM private key: EC P-256 (ES256) or P-384 (ES384) in PKCS#8, or RSA (RS256, PKCS#1 or PKCS#8).
    /// The checking key is its public half. The error names the file and never holds the key.
    pub fn from_pem_file(path: &std::path::Path) -> Result<SigningKey, String> {
        let pem = std::fs::read(path).map_err(|e| {
            format!(
                "auth.jwt.private_key_file {} cannot be read: {e}",
                path.display()
            )
        })?;
        let candidates = [
            (Algorithm::ES256, EncodingKey::from_ec_pem(&pem)),
            (Algorithm::ES384, EncodingKey::from_ec_pem(&pem)),
            (Algorithm::RS256, EncodingKey::from_rsa_pem(&pem)),
        ];
        for (algorithm, encoding) in candidates {
            let Ok(encoding) = encoding else {
                continue;
            };
            // The public half, by way of the key's JWK; a key of another curve fails here.
            let Ok(jwk) = jsonwebtoken::jwk::Jwk::from_encoding_key(&encoding, algorithm) else {
                continue;
            };
            let Ok(decoding) = DecodingKey::from_jwk(&jwk) else {
                continue;
            };
            let key = SigningKey {
                algorithm,
                encoding,
                decoding,
            };
            // Prove the pair works before the service relies on it.
            let probe = Claims {
                iss: "probe".into(),
                aud: "probe".into(),
                sub: "probe".into(),
                iat: 0,
                exp: u64::MAX / 2,
                scope: "read".into(),
            };
            let mut validation = Validation::new(algorithm);
            validation.set_audience(&["probe"]);
            if jsonwebtoken::encode(&Header::new(algorithm), &probe, &key.encoding)
                .ok()
                .and_then(|t| jsonwebtoken::decode::<Claims>(&t, &key.decoding, &validation).ok())
                .is_some()
            {
                return Ok(key);
            }
        }
        Err(format!(
            "auth.jwt.private_key_file {} is not a PEM private key this service signs with (EC P-256 or \
             P-384 in PKCS#8, or RSA)",
            path.display()
        ))
    }

    /// The JWS `alg` tokens carry.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }
}

/// Issues and checks the JWTs of OAuth clients.
#[derive(Clone)]
pub struct TokenIssuer {
    clients: Vec<Client>,
    key: SigningKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_s: u64,
}

impl std::fmt::Debug for TokenIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenIssuer")
            .field("clients", &self.clients.len())
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("ttl_s", &self.ttl_s)
            .finish()
    }
}

fn scope_name(scope: Scope) -> &'static str {
    match scope {
        Scope::Provision => "provision",
        Scope::Read => "read",
    }
}

fn now_s() -> u64 {
    jiff::Timestamp::now().as_second().max(0) as u64
}

impl TokenIssuer {
    /// From validated configuration; `Ok(None)` when no OAuth client is configured, an error when the
    /// private key file cannot be used. Without `auth.jwt.secret` or a private key the key is random, so
    /// tokens stop working when the process ends (the caller warns about it).
    pub fn from_config(cfg: &AuthConfig) -> Result<Option<TokenIssuer>, String> {
        if cfg.clients.is_empty() {
            return Ok(None);
        }
        let clients = cfg
            .clients
            .iter()
            .filter_map(|c| {
                let secret_hash = match (&c.client_secret, &c.client_secret_sha256) {
                    (Some(s), _) => sha256(s.expose().as_bytes()),
                    (None, Some(h)) => parse_hex32(h)?,
                    (None, None) => return None,
                };
                Some(Client {
                    id: c.client_id.clone(),
                    secret_hash,
                    scope: c.scope,
                })
            })
            .collect();
        let key = match (&cfg.jwt.secret, &cfg.jwt.private_key_file) {
            (_, Some(path)) => SigningKey::from_pem_file(path)?,
            (Some(s), None) => SigningKey::hmac(s.expose().as_bytes()),
            (None, None) => {
                let mut k = vec![0u8; 32];
                StdRng::from_os_rng().fill_bytes(&mut k);
                SigningKey::hmac(&k)
            }
        };
        let mut validation = Validation::new(key.algorithm);
        validation.set_issuer(&[&cfg.jwt.issuer]);
        validation.set_audience(&[&cfg.jwt.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        Ok(Some(TokenIssuer {
            clients,
            key,
            validation,
            issuer: cfg.jwt.issuer.clone(),
            audience: cfg.jwt.audience.clone(),
            ttl_s: cfg.jwt.ttl_s,
        }))
    }

    /// The configured client with this id and secret; every client is compared, so the time taken does not
    /// tell which id exists.
    fn client(&self, id: &str, secret: &str) -> Option<&Client> {
        let presented = sha256(secret.as_bytes());
        let mut found = None;
        for c in &self.clients {
            let id_ok = c.id.as_bytes().ct_eq(id.as_bytes());
            let secret_ok = c.secret_hash.ct_eq(&presented);
            if bool::from(id_ok & secret_ok) {
                found = Some(c);
            }
        }
        found
    }

    /// Answer a token request: a client-credentials grant by a configured client gets a token with the
    /// client's scope, or `read` when it asks for only that.
    pub fn issue(&self, req: &TokenRequest) -> Result<IssuedToken, OAuthError> {
        let grant = req.grant_type.as_deref().ok_or_else(|| {
            OAuthError::InvalidRequest(
                "grant_type is missing: send grant_type=client_credentials".into(),
            )
        })?;
        let (Some(id), Some(secret)) = (req.client_id.as_deref(), req.client_secret.as_deref())
        else {
            return Err(OAuthError::InvalidClient(
                "client authentication is missing: send the client id and secret with HTTP Basic, or as \
                 client_id and client_secret in the form"
                    .into(),
            ));
        };
        let client = self.client(id, secret).ok_or_else(|| {
            OAuthError::InvalidClient("the client id or secret is not valid".into())
        })?;
        if grant != CLIENT_CREDENTIALS {
            return Err(OAuthError::UnsupportedGrantType(format!(
                "only grant_type=client_credentials is supported, not {grant:?}"
            )));
        }
        let scope = granted_scope(client.scope, req.scope.as_deref())?;
        let iat = now_s();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: client.id.clone(),
            iat,
            exp: iat + self.ttl_s,
            scope: scope_name(scope).into(),
        };
        let header = Header::new(self.key.algorithm);
        let access_token = jsonwebtoken::encode(&header, &claims, &self.key.encoding)
            .map_err(|e| OAuthError::Server(format!("the token could not be signed: {e}")))?;
        Ok(IssuedToken {
            access_token,
            token_type: "Bearer",
            expires_in: self.ttl_s,
            scope: scope_name(scope),
        })
    }

    /// The principal a bearer JWT of ours stands for; `None` when it is not one (bad signature, issuer or
    /// audience, expired, or its client is no longer configured).
    pub fn verify(&self, token: &str) -> Option<Principal> {
        let data =
            jsonwebtoken::decode::<Claims>(token, &self.key.decoding, &self.validation).ok()?;
        let claims = data.claims;
        let client = self.clients.iter().find(|c| c.id == claims.sub)?;
        let scope = match claims.scope.as_str() {
            "provision" => Scope::Provision,
            "read" => Scope::Read,
            _ => return None,
        };
        // A token never carries more than its client may do now.
        let scope = if client.scope == Scope::Read {
            Scope::Read
        } else {
            scope
        };
        Some(Principal {
            name: format!("oauth:{}", client.id),
            scope,
        })
    }
}

/// The scope a token gets: the client's, or `read` when the client asks for only that. Scope tokens this
/// service does not define are ignored (RFC 6749 §3.3 lets a server grant less than asked, and the answer's
/// `scope` says what was granted); asking for `provision` with a read-only client is refused.
fn granted_scope(client: Scope, requested: Option<&str>) -> Result<Scope, OAuthError> {
    let asked: Vec<&str> = requested
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    let provision = asked.contains(&"provision");
    let read = asked.contains(&"read");
    match (client, provision, read) {
        (Scope::Read, true, _) => Err(OAuthError::InvalidScope(
            "this client may only read: ask for scope read, or for no scope".into(),
        )),
        (_, false, true) => Ok(Scope::Read),
        (scope, _, _) => Ok(scope),
    }
}

#[cfg(test)]
#[path = "oauth_tests.rs"]
mod tests;
