//! Loading: figment's providers in order (built-in defaults, the TOML file, `JCSCIM_*` through figment's own
//! `Env` provider with `__` for nesting), then the secret files, then one typed extraction.
//!
//! Every secret may come from a file. A secret key's sibling `<key>_file` names it: in TOML
//! (`api_key_file = "/run/secrets/jc"`, also inside `[[auth.tokens]]`, `[[auth.basic]]` and `[[auth.clients]]`
//! tables) or in the environment (`JCSCIM_JUMPCLOUD__API_KEY_FILE`, which the `Env` provider turns into the
//! same `jumpcloud.api_key_file` key). The file's contents, without a trailing newline, become the secret;
//! the file names are kept for rotation. Keys the configuration does not know are found at every depth
//! (`serde_ignored`) and warned about, naming where they came from; unknown keys inside a credential table
//! are errors instead ([`super`]'s `deny_unknown_fields`).

use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Value};
use figment::{Figment, Metadata};
use serde::Deserialize;

use super::{Config, ConfigError, Loaded};

/// Secret keys by path; `[]` stands for every element of a list of tables.
pub const SECRET_KEYS: &[&str] = &[
    "jumpcloud.api_key",
    "auth.tokens",
    "auth.tokens[].token",
    "auth.tokens[].token_sha256",
    "auth.basic[].password_hash",
    "auth.clients[].client_secret",
    "auth.clients[].client_secret_sha256",
    "auth.jwt.secret",
    "store.url",
];

/// The environment layer: `JCSCIM_A__B_C` is `a.b_c`. `JCSCIM_CONFIG` names the file and is not a key.
fn env() -> Env {
    Env::prefixed("JCSCIM_").split("__").ignore(&["config"])
}

/// The layered, typed configuration (not yet validated) and what loading found.
#[allow(
    clippy::disallowed_methods,
    reason = "config is the one reader of the environment"
)]
pub fn layers(file: Option<&Path>) -> Result<Loaded, ConfigError> {
    let file = file.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("JCSCIM_CONFIG")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    });
    let mut figment = Figment::from(Serialized::defaults(Config::default()));
    if let Some(path) = &file {
        // Read here, so that a missing or unreadable file is an error naming it rather than an empty layer.
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        text.parse::<toml::Table>()
            .map_err(|e| ConfigError::Invalid(format!("{}: {e}", path.display())))?;
        figment = figment.merge(Toml::file_exact(path));
    }
    figment = figment.merge(env());
    let mut value: Value = figment.extract().map_err(friendly)?;
    let mut secret_files = Vec::new();
    read_secret_files(&mut value, "", &mut secret_files)?;

    let mut warnings = Vec::new();
    let _ = serde_ignored::deserialize(&value, |path| {
        let key = dotted(&path.to_string());
        warnings.push(format!(
            "unknown key {key} ({}) is ignored",
            source_of(&figment, &key)
        ));
    })
    .map(|_: Config| ());
    let config = Config::deserialize(&value).map_err(friendly)?;
    for (i, b) in config.auth.basic.iter().enumerate() {
        if !b.password_hash.starts_with('$') {
            warnings.push(format!(
                "auth.basic[{i}] ({}): password_hash is a bare SHA-256; store an argon2id PHC string instead \
                 (make one with `jumpcloud-scim hash-password`)",
                b.username
            ));
        }
    }
    Ok(Loaded {
        config,
        warnings,
        secret_files,
    })
}

/// `serde_ignored`'s path (`auth.tokens.0.scop`) as the configuration spells it (`auth.tokens[0].scop`).
fn dotted(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.') {
        if part.chars().all(|c| c.is_ascii_digit()) && !part.is_empty() {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

/// Where a key came from, for a warning: the environment variable, or the file.
fn source_of(figment: &Figment, key: &str) -> String {
    let plain = key.split('[').next().unwrap_or(key);
    match figment
        .find_metadata(plain)
        .map(|m: &Metadata| m.name.to_string())
    {
        Some(name) if name.contains("environment") => {
            format!(
                "environment variable JCSCIM_{}",
                plain.replace('.', "__").to_uppercase()
            )
        }
        Some(name) => name,
        None => "configuration".to_owned(),
    }
}

/// Does `path` (with list indices as `[]`) name a secret?
fn is_secret(path: &str) -> bool {
    SECRET_KEYS.contains(&path)
}

/// Replace every `<secret>_file` key by the secret its file holds.
fn read_secret_files(
    value: &mut Value,
    path: &str,
    files: &mut Vec<PathBuf>,
) -> Result<(), ConfigError> {
    match value {
        Value::Dict(_, dict) => read_in_dict(dict, path, files),
        Value::Array(_, items) => {
            for item in items.iter_mut() {
                read_secret_files(item, &format!("{path}[]"), files)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

fn read_in_dict(dict: &mut Dict, path: &str, files: &mut Vec<PathBuf>) -> Result<(), ConfigError> {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    let file_keys: Vec<String> = dict
        .keys()
        .filter(|k| {
            k.strip_suffix("_file")
                .is_some_and(|base| is_secret(&join(base)))
        })
        .cloned()
        .collect();
    for key in file_keys {
        let base = key.trim_end_matches("_file").to_owned();
        let Some(Value::String(tag, name)) = dict.remove(&key) else {
            return Err(ConfigError::Invalid(format!(
                "{}: must be the path of a file holding {}",
                join(&key),
                join(&base)
            )));
        };
        let file = PathBuf::from(&name);
        let secret = std::fs::read_to_string(&file).map_err(|source| ConfigError::Read {
            path: file.clone(),
            source,
        })?;
        let secret = secret.trim_end_matches(['\r', '\n']).to_owned();
        if secret.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "{} names {}, which is empty; it must hold {}",
                join(&key),
                file.display(),
                join(&base)
            )));
        }
        files.push(file);
        dict.insert(base, Value::String(tag, secret));
    }
    for (k, v) in dict.iter_mut() {
        read_secret_files(v, &join(k), files)?;
    }
    Ok(())
}

/// A figment error in words that name the key and the fix: an unknown key inside a credential table stops
/// start-up (a misspelt `scope` must not silently grant `provision`).
pub(super) fn friendly(e: figment::Error) -> ConfigError {
    use figment::error::Kind;
    for err in e.clone() {
        let mut path = err.path.clone();
        if let Kind::UnknownField(found, _) = &err.kind
            && path.last() == Some(found)
        {
            path.pop();
        }
        let at = path
            .iter()
            .map(|p| {
                if p.chars().all(|c| c.is_ascii_digit()) {
                    format!("[{p}]")
                } else {
                    format!(".{p}")
                }
            })
            .collect::<String>();
        let at = at.trim_start_matches('.').to_owned();
        match &err.kind {
            Kind::UnknownField(found, expected) => {
                return ConfigError::Invalid(format!(
                    "{at}: unknown key {found:?}; this table takes {}: fix its spelling or remove it",
                    expected.join(", ")
                ));
            }
            Kind::InvalidValue(_, _) | Kind::InvalidType(_, _) | Kind::UnknownVariant(_, _) => {
                return ConfigError::Invalid(format!("{at}: {}", err.kind));
            }
            Kind::Message(m) => {
                return ConfigError::Invalid(if at.is_empty() {
                    m.clone()
                } else {
                    format!("{at}: {m}")
                });
            }
            _ => {}
        }
    }
    ConfigError::Parse(Box::new(e))
}
