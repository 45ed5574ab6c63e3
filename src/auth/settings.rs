//! The `[auth]` section of the configuration: static bearer tokens, Basic credentials, OAuth clients and
//! how their JWTs are signed, as the configuration file and the environment give them.
//!
//! `crate::config` parses into these types and re-exports them; the checks that need to know signing keys
//! and password hashes are [`super::validate`]'s. Knows nothing of the rest of the configuration.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use super::Scope;
use crate::secret::Secret;

/// One static bearer token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// Hex SHA-256 of the token, so the file need not hold the token itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub scope: Scope,
}

/// An HTTP Basic credential: `password_hash` is an argon2id PHC string (`jumpcloud-scim hash-password` makes
/// one); a hex SHA-256 is still read, with a warning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicConfig {
    pub username: String,
    pub password_hash: String,
    #[serde(default)]
    pub scope: Scope,
}

/// An OAuth 2.0 client allowed the client-credentials grant (`client_secret_sha256` is a hex SHA-256 of
/// the secret, so the file need not hold the secret itself).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    pub client_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<Secret>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_sha256: Option<String>,
    #[serde(default)]
    pub scope: Scope,
}

/// How the JWTs issued to OAuth clients are signed: HS256 with `secret`, or ES256 / ES384 / RS256 with the
/// PEM private key in `private_key_file`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwtConfig {
    #[serde(default = "default_jwt_party")]
    pub issuer: String,
    #[serde(default = "default_jwt_party")]
    pub audience: String,
    #[serde(default = "default_jwt_ttl")]
    pub ttl_s: u64,
    /// The HMAC key; without it or a private key, a random key per start (tokens die with the process).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<Secret>,
    /// A PEM private key (EC P-256 or P-384 in PKCS#8, or RSA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_key_file: Option<PathBuf>,
}

fn default_jwt_party() -> String {
    "jumpcloud-scim".into()
}

fn default_jwt_ttl() -> u64 {
    3600
}

impl Default for JwtConfig {
    fn default() -> Self {
        Self {
            issuer: default_jwt_party(),
            audience: default_jwt_party(),
            ttl_s: default_jwt_ttl(),
            secret: None,
            private_key_file: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct AuthConfig {
    /// `[[auth.tokens]]` tables, or (from `JCSCIM_AUTH__TOKENS`) a comma-separated `TOKEN` / `TOKEN:read` list.
    #[serde(default, deserialize_with = "de_tokens")]
    pub tokens: Vec<TokenConfig>,
    #[serde(default)]
    pub basic: Vec<BasicConfig>,
    /// `[[auth.clients]]`: OAuth 2.0 clients of `POST /oauth/token`.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    #[serde(default)]
    pub jwt: JwtConfig,
}

/// `auth.tokens` is a list of tables in TOML and a comma-separated string in the environment.
fn de_tokens<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<TokenConfig>, D::Error> {
    // A visitor rather than an untagged enum, so that a table's own error (an unknown key) comes through.
    struct Tokens;
    impl<'de> serde::de::Visitor<'de> for Tokens {
        type Value = Vec<TokenConfig>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("[[auth.tokens]] tables, or a comma-separated TOKEN / TOKEN:read list")
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
            parse_token_list(v).map_err(E::custom)
        }
        // A single token of digits, as the environment layer reads it.
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Self::Value, E> {
            parse_token_list(&v.to_string()).map_err(E::custom)
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Self::Value, E> {
            parse_token_list(&v.to_string()).map_err(E::custom)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(
            self,
            mut seq: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(t) = seq.next_element::<TokenConfig>()? {
                out.push(t);
            }
            Ok(out)
        }
    }
    d.deserialize_any(Tokens)
}

/// `TOKEN,TOKEN:read,TOKEN:provision` → token configs. A `:` in an item must be followed by a scope.
pub fn parse_token_list(text: &str) -> Result<Vec<TokenConfig>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .enumerate()
        .map(|(i, item)| {
            let (token, scope) = match item.rsplit_once(':') {
                Some((t, "read")) => (t, Scope::Read),
                Some((t, "provision")) => (t, Scope::Provision),
                Some((_, other)) => {
                    // Named only when it looks like a scope word: text after ':' might be part of a secret.
                    let named = if other.len() <= 16 && other.chars().all(|c| c.is_ascii_alphabetic()) {
                        format!("the scope {other:?}, which is not one")
                    } else {
                        "text after ':' that is not a scope".to_owned()
                    };
                    return Err(format!(
                        "JCSCIM_AUTH__TOKENS: token {} has {named}; write TOKEN:read or TOKEN:provision \
                         (lower case), or TOKEN alone to provision",
                        i + 1
                    ));
                }
                None => (item, Scope::Provision),
            };
            Ok(TokenConfig {
                token: Some(Secret::new(token)),
                token_sha256: None,
                name: None,
                scope,
            })
        })
        .collect()
}
