use super::*;
use serde_json::json;

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn v1_filter_needs_dollar_and_keeps_colons_in_value() {
    let t = parse_filter("created:$gte:2021-01-01T00:00:00.000Z", Dialect::V1).unwrap();
    assert_eq!(t.field, "created");
    assert_eq!(t.op, Op::Ge);
    assert_eq!(t.value, Operand::Text("2021-01-01T00:00:00.000Z".into()));
    assert!(matches!(
        parse_filter("email:eq:a@b.c", Dialect::V1),
        Err(QueryError::FilterOp { .. })
    ));
    assert!(matches!(
        parse_filter("email", Dialect::V1),
        Err(QueryError::FilterShape(_))
    ));
    assert!(matches!(
        parse_filter(":$eq:x", Dialect::V1),
        Err(QueryError::FilterShape(_))
    ));
}

#[test]
fn v2_filter_has_no_dollar_and_knows_in() {
    assert_eq!(parse_filter("name:ge:b", Dialect::V2).unwrap().op, Op::Ge);
    assert_eq!(parse_filter("name:in:a|b", Dialect::V2).unwrap().op, Op::In);
    assert!(parse_filter("name:$eq:b", Dialect::V2).is_err());
    assert!(parse_filter("name:between:a,b", Dialect::V2).is_err());
}

#[test]
fn list_query_groups_and_or() {
    let q = parse_list(
        &pairs(&[
            ("filter", "department:$eq:Sales"),
            ("filter[0]", "state:$ne:SUSPENDED"),
            ("filter[or][0]", "firstname:$eq:Ann"),
            ("filter[or][1]", "firstname:$eq:Bob"),
            ("limit", "1000"),
            ("skip", "5"),
            ("sort", "-created username"),
            ("fields", "email username"),
        ]),
        Dialect::V1,
    )
    .unwrap();
    assert_eq!(q.limit, MAX_LIMIT);
    assert_eq!(q.skip, 5);
    assert_eq!(
        q.sort,
        vec![
            SortKey {
                field: "created".into(),
                desc: true
            },
            SortKey {
                field: "username".into(),
                desc: false
            }
        ]
    );
    assert_eq!(q.fields, Some(vec!["email".into(), "username".into()]));
    let Cond::And(parts) = &q.cond else {
        panic!("expected AND, got {:?}", q.cond)
    };
    assert_eq!(parts.len(), 3);
    assert!(matches!(&parts[2], Cond::Or(o) if o.len() == 2));

    let rec = json!({"department": "Sales", "state": "ACTIVATED", "firstname": "Bob"});
    assert!(q.cond.matches(&rec));
    let rec = json!({"department": "Sales", "state": "ACTIVATED", "firstname": "Carl"});
    assert!(!q.cond.matches(&rec));
}

#[test]
fn bad_numbers_are_errors_and_zero_limit_is_default() {
    assert!(parse_list(&pairs(&[("limit", "-1")]), Dialect::V2).is_err());
    assert!(parse_list(&pairs(&[("skip", "x")]), Dialect::V2).is_err());
    assert_eq!(
        parse_list(&pairs(&[("limit", "0")]), Dialect::V2)
            .unwrap()
            .limit,
        DEFAULT_LIMIT
    );
}

#[test]
fn values_are_case_sensitive_and_typed() {
    let rec = json!({"name": "Sales", "n": 5, "b": true, "x": null, "tags": ["a", "b"],
                      "phones": [{"type": "work"}, {"type": "mobile"}]});
    let t = |s: &str| Cond::Test(parse_filter(s, Dialect::V2).unwrap());
    assert!(t("name:eq:Sales").matches(&rec));
    assert!(!t("name:eq:sales").matches(&rec));
    assert!(t("n:gt:4").matches(&rec));
    assert!(!t("n:gt:5").matches(&rec));
    assert!(t("n:le:5").matches(&rec));
    assert!(t("b:eq:true").matches(&rec));
    assert!(t("x:eq:null").matches(&rec));
    assert!(t("missing:eq:null").matches(&rec));
    assert!(t("tags:eq:b").matches(&rec));
    assert!(t("phones.type:eq:mobile").matches(&rec));
    assert!(!t("phones.type:ne:mobile").matches(&rec));
    assert!(t("name:in:Ops|Sales").matches(&rec));
    assert!(t("name:lt:T").matches(&rec));
}

#[test]
fn body_filter_shapes() {
    let rec = json!({"department": "Sales", "state": "ACTIVATED"});
    let c = parse_body_filter(&json!([{"department": "Sales"}, {"state": "ACTIVATED"}])).unwrap();
    assert!(c.matches(&rec));
    let c =
        parse_body_filter(&json!({"or": [{"department": "Ops"}, {"state": "ACTIVATED"}]})).unwrap();
    assert!(c.matches(&rec));
    let c = parse_body_filter(&json!([{"department": {"$ne": "Sales"}}])).unwrap();
    assert!(!c.matches(&rec));
    assert!(parse_body_filter(&json!("x")).is_err());
    assert!(parse_body_filter(&json!([{"department": {"$regex": "S"}}])).is_err());
}

#[test]
fn search_filter_is_case_insensitive_substring() {
    let c = parse_search_filter(&json!({"searchTerm": "ANN", "fields": ["email"]})).unwrap();
    assert!(c.matches(&json!({"email": "joanne@example.com"})));
    assert!(!c.matches(&json!({"username": "ann"})));
}

#[test]
fn sort_and_project() {
    let a = json!({"id": "1", "name": "b"});
    let b = json!({"id": "2", "name": "a"});
    let c = json!({"id": "3", "name": "b"});
    let sorted = sort_records(vec![&a, &b, &c], &parse_sort("-name,id", Dialect::V2));
    let ids: Vec<&str> = sorted.iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["1", "3", "2"]);
    let p = project(a.clone(), Some(&["name".to_owned()]), &["id"]);
    assert_eq!(p, a);
    let p = project(a, Some(&["nothing".to_owned()]), &["id"]);
    assert_eq!(p, json!({"id": "1"}));
}
