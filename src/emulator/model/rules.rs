//! Naming and password rules of the emulated organisation: the username rule, the email shape and the
//! password policy.
//!
//! Pure predicates over one value; uniqueness and the other rules that span users belong to `store`.

use crate::emulator::error::Violation;

/// Shortest password the emulated policy accepts.
pub const MIN_PASSWORD_LEN: usize = 8;

/// Why `username` breaks JumpCloud's naming rule (starts with a letter; letters, digits, `.`, `_`, `-`).
pub fn username_problem(username: &str) -> Option<&'static str> {
    let first = username.chars().next()?;
    if username.contains('@') {
        return Some("may not contain '@'");
    }
    if username.chars().any(char::is_whitespace) {
        return Some("may not contain spaces");
    }
    if !first.is_ascii_alphabetic() {
        return Some("must start with a letter");
    }
    if !username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Some("may contain only letters, digits, '.', '_' and '-'");
    }
    None
}

/// Whether `email` has the `local@domain` shape.
pub fn email_ok(email: &str) -> bool {
    let mut parts = email.split('@');
    matches!(
        (parts.next(), parts.next(), parts.next()),
        (Some(local), Some(domain), None) if !local.is_empty() && !domain.is_empty()
    ) && !email.chars().any(char::is_whitespace)
}

/// The emulated password policy: at least 8 characters, containing a letter and a digit. Returns the names of
/// the rules `password` breaks.
pub fn password_violations(password: &str) -> Vec<Violation> {
    let mut rules = Vec::new();
    if password.chars().count() < MIN_PASSWORD_LEN {
        rules.push("minimumLength");
    }
    if !password.chars().any(char::is_alphabetic) {
        rules.push("alphabeticCharacter");
    }
    if !password.chars().any(|c| c.is_ascii_digit()) {
        rules.push("numericCharacter");
    }
    rules
        .into_iter()
        .map(|r| Violation {
            field: "password".into(),
            description: r.into(),
        })
        .collect()
}
