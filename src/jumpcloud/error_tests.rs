use super::*;

fn now() -> jiff::Timestamp {
    "2024-01-10T10:34:45Z".parse().unwrap()
}

#[test]
fn statuses_classify() {
    let table = [
        (200, StatusClass::Success),
        (201, StatusClass::Success),
        (204, StatusClass::Success),
        (302, StatusClass::Unexpected),
        (400, StatusClass::Rejected),
        (401, StatusClass::Unauthorized),
        (403, StatusClass::Unauthorized),
        (404, StatusClass::NotFound),
        (408, StatusClass::Transient),
        (409, StatusClass::Conflict),
        (422, StatusClass::Rejected),
        (429, StatusClass::Transient),
        (500, StatusClass::Transient),
        (501, StatusClass::Rejected),
        (502, StatusClass::Transient),
        (503, StatusClass::Transient),
        (504, StatusClass::Transient),
        (505, StatusClass::Rejected),
    ];
    for (status, class) in table {
        assert_eq!(classify_status(status), class, "HTTP {status}");
    }
}

#[test]
fn responses_become_variants() {
    let e = from_response(503, Some("7"), b"<html>bad gateway</html>", now(), "");
    assert!(e.is_transient());
    assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(e.status(), Some(503));
    assert!(matches!(e, JcError::Transient { sent: true, .. }));

    let e = from_response(404, None, br#"{"message":"Not Found"}"#, now(), "");
    assert!(matches!(&e, JcError::NotFound { message } if message == "Not Found"));
    assert_eq!(e.status(), Some(404));

    let e = from_response(409, None, br#"{"message":"Already Exists"}"#, now(), "");
    assert!(matches!(&e, JcError::Conflict { message } if message == "Already Exists"));

    let e = from_response(401, None, b"", now(), "");
    assert!(matches!(e, JcError::Unauthorized { status: 401 }));
    assert!(!e.is_transient());

    // Retry-After only matters when the error is worth retrying.
    let e = from_response(400, Some("5"), br#"{"error":"bad filter"}"#, now(), "");
    assert!(
        matches!(&e, JcError::Rejected { status: 400, message, .. } if message == "bad filter")
    );
    assert_eq!(e.retry_after(), None);

    let e = from_response(301, None, b"", now(), "");
    assert!(matches!(e, JcError::Protocol { .. }));
}

#[test]
fn error_details_give_field_violations() {
    let body = br#"{"code":400,"message":"Password validation fail","status":"INVALID_ARGUMENT",
        "details":[{"@type":"type.googleapis.com/google.rpc.BadRequest",
          "fieldViolationsList":[{"field":"password","description":"specialCharacter"},
                                 {"field":"password","description":"passwordHistory"}]}]}"#;
    let JcError::Rejected {
        status,
        message,
        field_violations,
    } = from_response(400, None, body, now(), "")
    else {
        panic!("expected Rejected");
    };
    assert_eq!(status, 400);
    assert_eq!(message, "Password validation fail");
    assert_eq!(
        field_violations,
        vec![
            ("password".to_owned(), "specialCharacter".to_owned()),
            ("password".to_owned(), "passwordHistory".to_owned())
        ]
    );
}

#[test]
fn bodies_are_trimmed_capped_and_scrubbed() {
    let parsed = ErrorBody::parse(b"  \n upstream \t  said   no \n", "");
    assert_eq!(parsed.message, "upstream said no");

    let long = "x".repeat(5000);
    let parsed = ErrorBody::parse(long.as_bytes(), "");
    assert_eq!(parsed.message.chars().count(), MAX_MESSAGE_CHARS + 1);

    let parsed = ErrorBody::parse(br#"{"message":"bad key sk-123456"}"#, "sk-123456");
    assert_eq!(parsed.message, "bad key [redacted]");

    // An empty `message` falls through to `error`, then the raw body.
    let parsed = ErrorBody::parse(br#"{"message":"  ","error":{"message":"nested"}}"#, "");
    assert_eq!(parsed.message, "nested");
    let parsed = ErrorBody::parse(br#"{"code":400}"#, "");
    assert_eq!(parsed.message, r#"{"code":400}"#);
}

#[test]
fn retry_after_parses_both_forms() {
    assert_eq!(
        parse_retry_after("120", now()),
        Some(Duration::from_secs(120))
    );
    assert_eq!(parse_retry_after(" 0 ", now()), Some(Duration::ZERO));
    assert_eq!(
        parse_retry_after("Wed, 10 Jan 2024 10:35:15 GMT", now()),
        Some(Duration::from_secs(30))
    );
    // A date already past means "now", not an error.
    assert_eq!(
        parse_retry_after("Wed, 10 Jan 2024 10:00:00 GMT", now()),
        Some(Duration::ZERO)
    );
    for junk in ["", "-5", "1.5", "soon", "99999999999999999999999"] {
        assert_eq!(parse_retry_after(junk, now()), None, "{junk:?}");
    }
}

#[tokio::test]
async fn a_listener_that_never_answers_is_a_transient_timeout() {
    // The kernel completes the handshake from the backlog; nobody ever reads or answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(200))
        .build()
        .unwrap();
    let err = client
        .get(format!("http://{addr}/api/systemusers"))
        .send()
        .await
        .unwrap_err();
    let e = from_transport(err, "");
    let e_fail_fast = e.is_fail_fast();
    assert!(e.is_transient(), "{e:?}");
    let JcError::Transient {
        status,
        sent,
        message,
        ..
    } = e
    else {
        unreachable!()
    };
    assert_eq!(status, None);
    assert!(
        !e_fail_fast,
        "a transport failure is not a refusal of our own"
    );
    assert!(sent, "the request was written, so it may have landed");
    assert!(message.starts_with("timed out"), "{message}");
    assert!(!message.contains("systemusers"), "{message}");
    drop(listener);
}

#[tokio::test]
async fn a_refused_connection_is_transient_and_not_sent() {
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = reqwest::Client::new()
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap_err();
    let e = from_transport(err, "");
    assert!(
        matches!(
            e,
            JcError::Transient {
                status: None,
                sent: false,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(!e.is_fail_fast());
}

#[test]
fn a_breaker_refusal_is_transient_unsent_and_rounds_up() {
    let e = JcError::breaker_open(Duration::from_millis(14_200));
    assert!(e.is_transient() && e.is_fail_fast(), "{e:?}");
    assert_eq!(e.retry_after(), Some(Duration::from_secs(15)));
    assert_eq!(e.status(), None);
    assert!(e.to_string().contains("circuit breaker is open"), "{e}");
    let e = JcError::breaker_open(Duration::ZERO);
    assert_eq!(e.retry_after(), Some(Duration::from_secs(1)), "never zero");
    // Answers and transport failures never look like one.
    let answered = from_response(503, Some("7"), b"", now(), "");
    assert!(!answered.is_fail_fast());
}
