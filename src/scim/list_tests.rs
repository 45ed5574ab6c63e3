use super::*;

fn parsed(bytes: Vec<u8>) -> Value {
    serde_json::from_slice(&bytes).expect("the envelope is JSON")
}

#[test]
fn envelope_uses_integers() {
    let body = parsed(list_response(42, Position::Index(11), &[br#"{"id":"a"}"#]));
    assert_eq!(
        body,
        json!({
            "schemas": [LIST_RESPONSE_URN],
            "totalResults": 42, "itemsPerPage": 1, "startIndex": 11,
            "Resources": [{"id": "a"}]
        })
    );
    let empty = parsed(list_response::<&[u8]>(0, Position::Index(0), &[]));
    assert_eq!(empty["totalResults"], 0);
    assert_eq!(empty["startIndex"], 1);
    assert_eq!(empty["Resources"], json!([]));
}

#[test]
fn cursor_pages_say_where_the_next_and_previous_pages_are() {
    let body = parsed(list_response(
        3,
        Position::Cursors {
            next: Some("w.2"),
            previous: None,
        },
        &[br#"{"id":"a"}"#, br#"{"id":"b"}"#],
    ));
    assert_eq!(body["nextCursor"], "w.2");
    assert!(body.get("previousCursor").is_none());
    assert!(body.get("startIndex").is_none());
    assert_eq!(body["itemsPerPage"], 2);
    assert_eq!(body["Resources"][1]["id"], "b");
    let quoted = parsed(list_response::<&[u8]>(
        0,
        Position::Cursors {
            next: None,
            previous: Some("a\"b"),
        },
        &[],
    ));
    assert_eq!(quoted["previousCursor"], "a\"b");
}

#[test]
fn query_string_and_search_body_agree() {
    let from_query: QueryParams = serde_json::from_value(json!({
        "filter": "userName sw \"b\"", "attributes": "userName,emails.value", "sortBy": "userName",
        "sortOrder": "descending", "startIndex": "2", "count": "5"
    }))
    .unwrap();
    let from_body = QueryParams::from_search_body(
        br#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
             "filter": "userName sw \"b\"", "attributes": ["userName", "emails.value"],
             "sortBy": "userName", "sortOrder": "Descending", "startIndex": 2, "count": 5}"#,
    )
    .unwrap();
    assert_eq!(from_query, from_body);
    let q = Query::parse(&from_body, ResourceKind::User, 1000).unwrap();
    assert!(q.filter.is_some() && q.sort.as_ref().is_some_and(SortSpec::descending));
    assert_eq!(
        q.paging,
        Paging {
            start_index: 2,
            count: Some(5)
        }
    );
    assert!(!q.attributes.is_default());
}

#[test]
fn search_body_leniency_and_errors() {
    let p =
        QueryParams::from_search_body(br#"{"excludedAttributes": "members", "count": 0}"#).unwrap();
    assert_eq!(p.excluded_attributes.as_deref(), Some("members"));
    assert_eq!(p.count.as_deref(), Some("0"));
    assert_eq!(
        QueryParams::from_search_body(b"{}").unwrap(),
        QueryParams::default()
    );
    for bad in [&b"not json"[..], b"[]", br#"{"sortOrder": "up"}"#] {
        let err = QueryParams::from_search_body(bad).unwrap_err();
        assert_eq!(
            err.scim_type,
            Some(scim_v2::models::errors::ScimType::InvalidSyntax)
        );
    }
    // Paging numbers follow the query string's rules: a huge count is capped, a word is refused.
    for (body, count) in [
        (&br#"{"count": 99999999999999999999}"#[..], Some(1000)),
        (br#"{"count": "99999999999999999999"}"#, Some(1000)),
        (br#"{"count": 20, "startIndex": 3}"#, Some(20)),
    ] {
        let p = QueryParams::from_search_body(body).unwrap();
        let q = Query::parse(&p, ResourceKind::User, 1000).unwrap();
        assert_eq!(q.paging.count, count);
    }
    for bad in [
        &br#"{"count": "many"}"#[..],
        br#"{"count": 1.5}"#,
        br#"{"count": [1]}"#,
    ] {
        let p = QueryParams::from_search_body(bad)
            .and_then(|p| Query::parse(&p, ResourceKind::User, 1000));
        assert_eq!(
            p.unwrap_err().scim_type,
            Some(scim_v2::models::errors::ScimType::InvalidValue)
        );
    }
}

#[test]
fn query_errors_surface() {
    let bad_filter = QueryParams {
        filter: Some("userName eq".into()),
        ..Default::default()
    };
    assert_eq!(
        Query::parse(&bad_filter, ResourceKind::User, 10)
            .unwrap_err()
            .status,
        400
    );
    let bad_count = QueryParams {
        count: Some("x".into()),
        ..Default::default()
    };
    assert!(Query::parse(&bad_count, ResourceKind::User, 10).is_err());
    let blank = QueryParams {
        filter: Some(" ".into()),
        ..Default::default()
    };
    let q = Query::parse(&blank, ResourceKind::Group, 10).unwrap();
    assert!(q.filter.is_none() && q.sort.is_none() && q.attributes.is_default());
    assert_eq!(q.paging, Paging::default());
}

#[test]
fn a_list_around_its_envelope_is_the_list_response() {
    let resources: [&[u8]; 3] = [br#"{"id":"a"}"#, br#"{"id":"b"}"#, br#"{"id":"c"}"#];
    for n in 0..=3 {
        let page = &resources[..n];
        let head = list_head(7, page.len(), Position::Index(2));
        let text = list_around(head, page);
        let v: serde_json::Value = serde_json::from_slice(&text).expect("JSON");
        let ids: Vec<&str> = v["Resources"]
            .as_array()
            .expect("Resources")
            .iter()
            .map(|r| r["id"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(ids, ["a", "b", "c"][..n], "{n} resources");
        assert_eq!(v["totalResults"], 7);
        assert_eq!(v["itemsPerPage"], n);
        assert_eq!(v["startIndex"], 2);
    }
}
