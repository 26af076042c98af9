use super::*;

#[test]
fn member_ranges_must_move_forward() {
    assert_eq!(next_range_start("g", 0, Some(1500)), Ok(Some(1500)));
    assert_eq!(next_range_start("g", 1500, None), Ok(None));
    for stuck in [Some(1500), Some(10), Some(usize::MAX)] {
        assert!(next_range_start("g", 1500, stuck).is_err(), "{stuck:?}");
    }
}

#[test]
fn in_chain_filter_escapes_the_chosen_dns() {
    let f = in_chain_filter(&[
        r"CN=Tricky *)(uid\3D*,OU=G,DC=x".to_owned(),
        "CN=A,DC=x".to_owned(),
    ]);
    assert_eq!(
        f,
        r"(|(memberOf:1.2.840.113556.1.4.1941:=CN=Tricky \2a\29\28uid\5c3D\2a,OU=G,DC=x)(memberOf:1.2.840.113556.1.4.1941:=CN=A,DC=x))"
    );
    assert!(ldap3::parse_filter(&f).is_ok());
}

#[test]
fn extra_filters_are_checked_and_anded() {
    assert_eq!(
        and_filter("(objectClass=user)", None).unwrap(),
        "(objectClass=user)"
    );
    assert_eq!(
        and_filter("(objectClass=user)", Some("  ")).unwrap(),
        "(objectClass=user)"
    );
    assert_eq!(
        and_filter("(a=1)", Some("department=IT")).unwrap(),
        "(&(a=1)(department=IT))"
    );
    assert_eq!(
        and_filter("(a=1)", Some("(|(b=2)(c=3))")).unwrap(),
        "(&(a=1)(|(b=2)(c=3)))"
    );
    let err = and_filter("(a=1)", Some("(b=2")).unwrap_err();
    assert_eq!(err.reason(), "InvalidSettings");
}

/// A valid spec with three chosen groups, changed by `changes` (fields of the same names).
fn spec(changes: serde_json::Value) -> DirectorySpec {
    let mut spec = serde_json::json!({
        "preset": "OpenLDAP",
        "baseDN": "dc=example,dc=org",
        "groups": [
            "cn=a,ou=Groups,dc=example,dc=org",
            "cn=b,ou=Groups,dc=example,dc=org",
            "cn=c,ou=Groups,dc=example,dc=org",
        ],
        "excludes": ["ou=Contractors,dc=example,dc=org"],
        "userFilter": "(department=IT)",
        "groupFilter": "description=synced",
    });
    for (field, value) in changes.as_object().expect("an object") {
        spec[field] = value.clone();
    }
    serde_json::from_value(spec).expect("a directory spec")
}

/// The message of the invalid setting `check_spec` finds.
fn invalid(spec: &DirectorySpec) -> String {
    match check_spec(spec) {
        Err(DirectoryError::InvalidSettings(detail)) => detail,
        other => panic!("expected invalid settings, got {other:?}"),
    }
}

const BAD_DN: &str = "cn=b,,dc=example,dc=org";

#[test]
fn an_entry_past_a_value_limit_is_named_by_the_limit() {
    let limits = Limits::of(&spec(serde_json::json!({
        "maxValuesPerAttribute": 3, "maxValueBytes": 1024,
    })));
    let three: &[&str] = &["a", "b", "c"];
    let fits = Entry::new("cn=x", &[("member", three), ("cn", &["x"])]);
    assert_eq!(limits.exceeded_by(&fits), None);
    let four: &[&str] = &["a", "b", "c", "d"];
    let many = Entry::new("cn=x", &[("member", four)]);
    assert_eq!(
        limits.exceeded_by(&many),
        Some(("directory.maxValuesPerAttribute", 3))
    );
    let long = "x".repeat(1025);
    let wide = Entry::new("cn=x", &[("description", &[long.as_str()])]);
    assert_eq!(
        limits.exceeded_by(&wide),
        Some(("directory.maxValueBytes", 1024))
    );
    let defaults = Limits::of(&spec(serde_json::json!({})));
    assert_eq!(
        (
            defaults.entries,
            defaults.values_per_attribute,
            defaults.value_bytes
        ),
        (500_000, 1_000_000, 1 << 20)
    );
}

#[test]
fn a_valid_spec_passes_the_check() {
    check_spec(&spec(serde_json::json!({}))).expect("valid");
    let ad = spec(serde_json::json!({"preset": "ActiveDirectory"}));
    check_spec(&ad).expect("valid, chosen groups filtered by the server");
    let bare = spec(serde_json::json!({
        "groups": [], "excludes": [], "userFilter": null, "groupFilter": null,
    }));
    check_spec(&bare).expect("valid without optional settings");
}

#[test]
fn a_bad_dn_is_named_by_its_field_and_place() {
    let base = invalid(&spec(serde_json::json!({"baseDN": BAD_DN})));
    assert!(base.starts_with("directory.baseDN: invalid DN"), "{base}");
    let groups = serde_json::json!([
        "cn=a,ou=Groups,dc=example,dc=org",
        "cn=b,ou=Groups,dc=example,dc=org",
        BAD_DN,
    ]);
    let group = invalid(&spec(serde_json::json!({"groups": groups})));
    assert!(
        group.starts_with("directory.groups[2]: invalid DN"),
        "{group}"
    );
    let exclude = invalid(&spec(serde_json::json!({"excludes": [BAD_DN]})));
    assert!(
        exclude.starts_with("directory.excludes[0]: invalid DN"),
        "{exclude}"
    );
}

#[test]
fn a_bad_filter_is_named_by_its_field() {
    assert_eq!(
        invalid(&spec(serde_json::json!({"userFilter": "(b=2"}))),
        "directory.userFilter: (b=2 is not a valid LDAP filter"
    );
    assert_eq!(
        invalid(&spec(serde_json::json!({"groupFilter": "b=2)"}))),
        "directory.groupFilter: (b=2)) is not a valid LDAP filter"
    );
}

#[test]
fn a_read_makes_the_same_checks() {
    let bad = spec(serde_json::json!({"userFilter": "(b=2"}));
    let Err(DirectoryError::InvalidSettings(detail)) = Query::new(&bad, Some(1000)) else {
        panic!("the query of an invalid spec");
    };
    assert_eq!(detail, invalid(&bad));
}

proptest::proptest! {
    /// An extra filter from equality tests on escaped values, in any nesting: the result parses,
    /// and it is the preset filter ANDed with the extra one, so it never matches more than the
    /// preset does.
    #[test]
    fn an_extra_filter_narrows_the_preset(
        terms in proptest::collection::vec(("[a-zA-Z][a-zA-Z0-9-]{0,12}", ".{0,16}"), 1..5),
        or in proptest::bool::ANY,
        bare in proptest::bool::ANY,
        junk in ".{0,30}",
    ) {
        // As RFC 4515 allows for any byte; control characters and spaces too, since the setting
        // is trimmed as YAML text (a value may not end in a bare space).
        let escape = |v: &str| v.bytes().map(|b| match b {
            b'*' | b'(' | b')' | b'\\' => format!("\\{b:02x}"),
            b if b.is_ascii_graphic() => (b as char).to_string(),
            b => format!("\\{b:02x}"),
        }).collect::<String>();
        let tests: String = terms.iter().map(|(a, v)| format!("({a}={})", escape(v))).collect();
        let extra = if terms.len() == 1 { tests.trim_start_matches('(').trim_end_matches(')').to_owned() } else {
            format!("({}{tests})", if or { '|' } else { '&' })
        };
        let extra = if bare || terms.len() > 1 { extra } else { format!("({extra})") };
        let preset = "(&(objectClass=person)(!(objectClass=computer)))";
        let built = and_filter(preset, Some(&extra)).expect("a valid extra filter");
        proptest::prop_assert!(ldap3::parse_filter(&built).is_ok(), "{}", built);
        let wrapped = if extra.starts_with('(') { extra.clone() } else { format!("({extra})") };
        proptest::prop_assert_eq!(built, format!("(&{preset}{wrapped})"));
        // Any text: refused, or a filter that parses and still starts with the preset.
        if let Ok(built) = and_filter(preset, Some(&junk)) {
            proptest::prop_assert!(ldap3::parse_filter(&built).is_ok(), "{}", built);
            let narrowed = built == preset || built.starts_with(&format!("(&{preset}"));
            proptest::prop_assert!(narrowed, "{}", built);
        }
    }
}

#[test]
fn an_extra_filter_cannot_close_the_and_early() {
    // Each would widen the search past the preset if it were pasted in as text.
    for extra in [
        "(a=1))(|(objectClass=*)",
        "a=1)(|(objectClass=*)",
        "(a=1)(b=2)",
        "(a=1))",
    ] {
        let err = and_filter("(objectClass=person)", Some(extra)).expect_err(extra);
        assert_eq!(err.reason(), "InvalidSettings", "{extra}");
    }
}

#[test]
fn extra_user_fields_are_asked_for_and_their_names_checked() {
    let with = |fields: serde_json::Value| {
        Query::new(&spec(serde_json::json!({"userAttributes": fields})), None)
    };
    let q = with(serde_json::json!([
        {"field": "department", "attribute": "departmentNumber"},
        {"field": "employeeId", "attribute": "employeeNumber"},
    ]))
    .expect("valid");
    assert!(q.user_attrs.iter().any(|a| a == "departmentNumber"));
    assert!(q.user_attrs.iter().any(|a| a == "employeeNumber"));
    assert_eq!(q.schema.extra.len(), 2);
    for bad in [
        serde_json::json!([{"field": "Department", "attribute": "department"}]),
        serde_json::json!([{"field": "department", "attribute": "depart ment"}]),
        serde_json::json!([{"field": "dep-t", "attribute": "department"}]),
    ] {
        let err = with(bad.clone())
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("directory.userAttributes"), "{bad}: {err}");
    }
}
