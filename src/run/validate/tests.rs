use super::*;

/// A valid task; each case's top-level fields replace the base's.
fn spec(extra: &str) -> UserSynchronizationSpec {
    let base = "targetGroup: all\n\
         server: {urls: ['ldaps://dc1.corp.example.com'], credentialsSecretRef: {name: bind}}\n\
         directory: {baseDN: 'DC=corp,DC=example,DC=com'}\n";
    let mut spec: serde_json::Value = serde_norway::from_str(base).expect("base");
    let extra: serde_json::Value = serde_norway::from_str(extra).expect("extra");
    if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
        spec.extend(extra.clone());
    }
    serde_json::from_value(spec).unwrap_or_else(|e| panic!("{extra}: {e}"))
}

/// 2026-01-01T00:10:00Z
const NOW: UnixSeconds = 1_767_226_200;

#[test]
fn good_specs_give_checked_settings() {
    let checked = validate(&spec(""), NOW).expect("valid");
    assert_eq!(checked.schedule, Schedule::Triggers);
    assert_eq!(checked.full_sync_every, Duration::from_secs(24 * 3600));
    assert_eq!(checked.max_deletions, MaxDeletions::percent(10).at_least(5));
    assert_eq!(checked.run_timeout, Duration::from_secs(30 * 60));
    let short = validate(&spec("runTimeout: 90s"), NOW).expect("90s");
    assert_eq!(short.run_timeout, Duration::from_secs(90));

    let cases = [
        ("interval: 15m", Schedule::Every(Duration::from_secs(900))),
        ("interval: 1.5h", Schedule::Every(Duration::from_secs(5400))),
        (
            "interval: 8784h",
            Schedule::Every(Duration::from_secs(8784 * 3600)),
        ),
    ];
    for (extra, schedule) in cases {
        assert_eq!(
            validate(&spec(extra), NOW).expect(extra).schedule,
            schedule,
            "{extra}"
        );
    }
    for extra in [
        "schedule: '0 */6 * * *'",
        "schedule: '@daily'",
        "schedule: '0 6 * * 1-5'\ntimeZone: Europe/Bratislava",
        "schedule: '0 0 29 2 *'",
        "maxDeletions: 0",
        "maxDeletions: '100%'",
        "maxDeletions: '25'",
        "incremental: {fullSyncInterval: 90m}",
        "server: {urls: ['ldap://a', 'ldap://b:3389'], tls: {mode: StartTLS}}",
        "server: {urls: ['ldap://a'], tls: {mode: None, allowInsecure: true}}",
        "server: {urls: ['ldaps://a'], auth: NTLM, credentialsSecretRef: {name: s}}",
        "directory: {baseDN: 'OU=Ops\\, Europe,DC=x', groups: ['CN=Dev Ops,OU=Ops\\, Europe,DC=x']}",
        "directory: {baseDN: 'dc=x', userFilter: '(department=IT)', groupFilter: '(!(cn=tmp*))'}",
    ] {
        assert!(validate(&spec(extra), NOW).is_ok(), "{extra}");
    }
}

/// Each case is refused with a message that starts with the field it names and says `words`.
fn assert_refused(cases: &[(&str, &str, &str)]) {
    for (extra, field, words) in cases {
        let err = validate(&spec(extra), NOW).expect_err(extra);
        assert_eq!(err.field, *field, "{extra}: {err}");
        assert!(err.message.contains(words), "{extra}: {err}");
        assert!(
            err.to_string().starts_with(&format!("spec.{field}: ")),
            "{err}"
        );
    }
}

#[test]
fn bad_schedules_and_policies_name_the_field() {
    assert_refused(&[
        // The value that passes the CRD's pattern and used to panic in Duration::from_secs_f64.
        (
            "interval: '99999999999999999999h'",
            "interval",
            "longer than the maximum",
        ),
        ("interval: 8785h", "interval", "longer than the maximum"),
        ("interval: 500ms", "interval", "shorter than the minimum"),
        ("interval: 0.2s", "interval", "shorter than the minimum"),
        ("interval: 10x", "interval", "not a duration"),
        (
            "incremental: {fullSyncInterval: '99999999999999999999h'}",
            "incremental.fullSyncInterval",
            "longer than the maximum",
        ),
        (
            "incremental: {fullSyncInterval: 100ms}",
            "incremental.fullSyncInterval",
            "shorter",
        ),
        (
            "interval: 15m\nschedule: '@daily'",
            "interval",
            "mutually exclusive",
        ),
        ("timeZone: Europe/Bratislava", "timeZone", "schedule only"),
        (
            "schedule: '61 * * * *'",
            "schedule",
            "not a cron expression",
        ),
        ("schedule: '0 0 31 2 *'", "schedule", "never fires"),
        ("schedule: '0 0 30 2 *'", "schedule", "never fires"),
        (
            "schedule: '0 * * * *'\ntimeZone: Mars/Olympus",
            "timeZone",
            "not an IANA time zone",
        ),
        ("maxDeletions: -1", "maxDeletions", "non-negative"),
        ("maxDeletions: '101%'", "maxDeletions", "percentage"),
        ("maxDeletions: lots", "maxDeletions", "percentage"),
        ("targetGroup: ' '", "targetGroup", "is not a UserGroup name"),
        (
            "targetGroup: Corp AD",
            "targetGroup",
            "names the root UserGroup exactly",
        ),
        ("targetGroup: staff-s2", "targetGroup", "shard"),
        (
            "groupNames: [{group: 'CN=a,DC=x', name: All}]",
            "groupNames[0].name",
            "is not a UserGroup name",
        ),
        (
            "groupNames: [{group: 'CN=a,DC=x', name: all}]",
            "groupNames[0].name",
            "chosen twice (or is the targetGroup)",
        ),
        (
            "groupNames: [{group: 'CN=a,DC=x', name: a}, {group: 'cn=A,DC=x', name: b}]",
            "groupNames[1].group",
            "named twice",
        ),
        ("runTimeout: 25h", "runTimeout", "at most 24h"),
        (
            "runTimeout: 200ms",
            "runTimeout",
            "shorter than the minimum",
        ),
        ("runTimeout: soon", "runTimeout", "not a duration"),
    ]);
}

#[test]
fn bad_servers_and_directories_name_the_field() {
    assert_refused(&[
        ("server: {urls: []}", "server.urls", "at least one"),
        (
            "server: {urls: ['ldaps://a', 'ldap://b']}",
            "server.urls[1]",
            "ldaps://",
        ),
        (
            "server: {urls: ['ldaps://']}",
            "server.urls[0]",
            "names no host",
        ),
        (
            "server: {urls: ['ldap://a'], tls: {mode: None}}",
            "server.tls.allowInsecure",
            "clear text",
        ),
        (
            "server: {urls: ['ldaps://a'], tls: {caSecretRef: {name: a}, caConfigMapRef: {name: b}}}",
            "server.tls",
            "mutually exclusive",
        ),
        (
            "server: {urls: ['ldaps://a'], auth: NTLM}",
            "server.auth",
            "credentialsSecretRef",
        ),
        (
            "server: {urls: ['ldaps://a'], timeoutSeconds: 0}",
            "server.timeoutSeconds",
            "between",
        ),
        (
            "directory: {baseDN: 'DC=x', pageSize: 0}",
            "directory.pageSize",
            "between",
        ),
    ]);
}

#[test]
fn a_preset_must_fit_the_server_type() {
    let spec = |server_type: &str, preset: Option<&str>| -> UserSynchronizationSpec {
        let mut value = serde_json::json!({
            "targetGroup": "all",
            "server": {"type": server_type, "urls": ["ldaps://dc"]},
            "directory": {"baseDN": "dc=example"},
        });
        if let Some(preset) = preset {
            value["directory"]["preset"] = preset.into();
        }
        serde_json::from_value(value).expect("spec")
    };
    let fits = |server_type, preset| validate(&spec(server_type, preset), 0).is_ok();
    assert!(fits("LDAP", None) && fits("ActiveDirectory", None));
    assert!(fits("LDAP", Some("OpenLDAP")) && fits("LDAP", Some("FreeIPA")));
    assert!(fits("LDAP", Some("Custom")) && fits("ActiveDirectory", Some("Custom")));
    assert!(fits("ActiveDirectory", Some("ActiveDirectory")));
    for (server_type, preset) in [("LDAP", "ActiveDirectory"), ("ActiveDirectory", "OpenLDAP")] {
        let refused = validate(&spec(server_type, Some(preset)), 0).expect_err("refused");
        assert_eq!(refused.field, "directory.preset", "{refused}");
    }
    assert_eq!(
        crate::api::ServerType::Ldap.default_preset(),
        crate::api::DirectoryPreset::OpenLdap
    );
}
