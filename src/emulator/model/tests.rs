//! Tests of the model's pure formats and rules: ids, timestamps, the username rule, the password policy and
//! the email shape.

use super::*;

#[test]
fn ids_are_24_hex_and_sort_by_time() {
    let mut g = IdGen::new(0xabcdef, 1);
    let a = g.next(1_600_000_000);
    let b = g.next(1_600_000_001);
    assert!(is_object_id(&a) && is_object_id(&b));
    assert!(a < b);
    assert_ne!(g.next(1), g.next(1));
}

#[test]
fn timestamps_have_millis_and_z() {
    let ts = jiff::Timestamp::from_millisecond(1_613_132_461_123).unwrap();
    assert_eq!(iso_millis(ts), "2021-02-12T12:21:01.123Z");
}

#[test]
fn username_rule() {
    assert_eq!(username_problem("jane.doe-2_x"), None);
    assert!(username_problem("jane@x").is_some());
    assert!(username_problem("jane doe").is_some());
    assert!(username_problem("1jane").is_some());
    assert!(username_problem("jané").is_some());
    assert!(username_problem("_jane").is_some());
}

#[test]
fn password_rule() {
    assert!(password_violations("abcdefg1").is_empty());
    let v: Vec<String> = password_violations("abc")
        .into_iter()
        .map(|v| v.description)
        .collect();
    assert_eq!(v, ["minimumLength", "numericCharacter"]);
    assert_eq!(password_violations("12345678").len(), 1);
}

#[test]
fn email_shape() {
    assert!(email_ok("a@b"));
    assert!(!email_ok("ab"));
    assert!(!email_ok("a@b@c"));
    assert!(!email_ok("a b@c"));
    assert!(!email_ok("@c"));
}
