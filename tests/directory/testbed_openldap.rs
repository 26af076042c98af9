//! The OpenLDAP slapd is real: LDAPS and StartTLS with our CA, paged results, syncrepl (RFC 4533)
//! refreshOnly with a cookie, the memberof overlay, and the fixture fully loaded.

use ldap3::controls::{
    Control, MakeCritical, PagedResults, RefreshMode, SyncDone, SyncRequest, SyncState,
};
use ldap3::{Ldap, Mod, Scope, SearchEntry};
use std::collections::HashSet;
use usersync_testbed::env;
use usersync_testbed::fixture::{FixtureSpec, generate};

use crate::support::ldap::ldap_connect;

/// Where the fixture lives; other tests add entries of their own elsewhere under the base DN.
fn fixture_base(slapd: &env::Slapd) -> String {
    format!("ou=Corp,{}", slapd.base_dn)
}

async fn admin(starttls: bool) -> Ldap {
    let slapd = env::slapd();
    let url = if starttls {
        &slapd.url
    } else {
        &slapd.ldaps_url
    };
    let mut ldap = ldap_connect(url, &slapd.ca_file, starttls).await;
    ldap.simple_bind(&slapd.admin_dn, &slapd.admin_password)
        .await
        .and_then(|r| r.success())
        .expect("admin bind");
    ldap
}

fn response_control<'a>(
    ctrls: &'a [Control],
    oid: &str,
) -> Option<&'a ldap3::controls::RawControl> {
    ctrls.iter().find(|c| c.1.ctype == oid).map(|c| &c.1)
}

const PAGED_RESULTS_OID: &str = "1.2.840.113556.1.4.319";
const SYNC_STATE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.2";
const SYNC_DONE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.3";

async fn count(ldap: &mut Ldap, base: &str, filter: &str) -> usize {
    let mut search = ldap
        .streaming_search_with(
            ldap3::adapters::PagedResults::new(1000),
            base,
            Scope::Subtree,
            filter,
            vec!["1.1"],
        )
        .await
        .expect("search starts");
    let mut n = 0;
    while search.next().await.expect("search continues").is_some() {
        n += 1;
    }
    search.finish().await.success().expect("search ends well");
    n
}

#[tokio::test]
async fn paged_search_returns_every_user_over_several_pages() {
    let slapd = env::slapd();
    let expected = generate(FixtureSpec::STANDARD).users.len();
    let mut ldap = admin(false).await;
    let (mut cookie, mut pages, mut seen) = (Vec::new(), 0, HashSet::new());
    loop {
        let page = PagedResults {
            size: 500,
            cookie: cookie.clone(),
        };
        let (entries, result) = ldap
            .with_controls(page.critical())
            .search(
                &fixture_base(&slapd),
                Scope::Subtree,
                "(objectClass=inetOrgPerson)",
                vec!["uid"],
            )
            .await
            .and_then(|r| r.success())
            .expect("paged search page");
        pages += 1;
        assert!(entries.len() <= 500, "a page never exceeds the page size");
        for entry in entries {
            seen.insert(SearchEntry::construct(entry).dn);
        }
        let control = response_control(&result.ctrls, PAGED_RESULTS_OID)
            .expect("server returns the paged control");
        cookie = control.parse::<PagedResults>().cookie;
        if cookie.is_empty() {
            break;
        }
    }
    assert_eq!(seen.len(), expected, "every user exactly once");
    assert!(pages >= expected / 500, "results came in pages ({pages})");
}

#[tokio::test]
async fn syncrepl_refresh_only_returns_a_cookie_and_then_only_changes() {
    let slapd = env::slapd();
    let mut ldap = admin(true).await;
    let marker = format!(
        "synctest-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos()
    );
    let filter = "(&(objectClass=organizationalUnit)(ou=synctest-*))";
    let sync = |cookie: Option<Vec<u8>>| {
        SyncRequest {
            mode: RefreshMode::RefreshOnly,
            cookie,
            reload_hint: false,
        }
        .critical()
    };

    let (entries, result) = ldap
        .with_controls(sync(None))
        .search(&slapd.base_dn, Scope::Subtree, filter, vec!["ou"])
        .await
        .and_then(|r| r.success())
        .expect("initial refresh");
    let done: SyncDone = response_control(&result.ctrls, SYNC_DONE_OID)
        .expect("SyncDone control")
        .parse();
    let cookie = done.cookie.expect("the initial refresh returns a cookie");
    assert!(
        String::from_utf8_lossy(&cookie).contains("csn="),
        "a syncprov cookie carries a CSN"
    );
    let initial = entries.len();

    let dn = format!("ou={marker},{}", slapd.base_dn);
    ldap.add(
        &dn,
        vec![
            ("objectClass", HashSet::from(["organizationalUnit"])),
            ("ou", HashSet::from([marker.as_str()])),
        ],
    )
    .await
    .and_then(|r| r.success())
    .expect("add a new entry");

    let (changed, result) = ldap
        .with_controls(sync(Some(cookie)))
        .search(&slapd.base_dn, Scope::Subtree, filter, vec!["ou"])
        .await
        .and_then(|r| r.success())
        .expect("refresh with the cookie");
    let names: Vec<String> = changed
        .iter()
        .map(|e| SearchEntry::construct(e.clone()).dn)
        .collect();
    assert_eq!(
        names,
        vec![dn.clone()],
        "with a cookie only the change comes back (before: {initial} entries)"
    );
    let state: SyncState = response_control(&changed[0].1, SYNC_STATE_OID)
        .expect("SyncState control")
        .parse();
    assert!(
        matches!(state.state, ldap3::controls::EntryState::Add),
        "{:?}",
        state.state
    );
    assert!(response_control(&result.ctrls, SYNC_DONE_OID).is_some());
    ldap.delete(&dn)
        .await
        .and_then(|r| r.success())
        .expect("clean up");
}

#[tokio::test]
async fn memberof_overlay_maintains_member_of_on_live_changes() {
    let slapd = env::slapd();
    let mut ldap = admin(false).await;
    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let user = format!("uid=memberof-{suffix},{}", slapd.base_dn);
    let group = format!("cn=memberof-{suffix},{}", slapd.base_dn);
    let uid = format!("memberof-{suffix}");
    ldap.add(
        &user,
        vec![
            ("objectClass", HashSet::from(["inetOrgPerson"])),
            ("uid", HashSet::from([uid.as_str()])),
            ("cn", HashSet::from(["Member Of"])),
            ("sn", HashSet::from(["Of"])),
        ],
    )
    .await
    .and_then(|r| r.success())
    .expect("add user");
    ldap.add(
        &group,
        vec![
            ("objectClass", HashSet::from(["groupOfNames"])),
            ("member", HashSet::from([user.as_str()])),
        ],
    )
    .await
    .and_then(|r| r.success())
    .expect("add group");
    let member_of = |entries: Vec<ldap3::ResultEntry>| -> Vec<String> {
        entries
            .into_iter()
            .flat_map(|e| {
                SearchEntry::construct(e)
                    .attrs
                    .remove("memberOf")
                    .unwrap_or_default()
            })
            .collect()
    };
    let (entries, _) = ldap
        .search(&user, Scope::Base, "(objectClass=*)", vec!["memberOf"])
        .await
        .and_then(|r| r.success())
        .expect("read user");
    assert_eq!(member_of(entries), vec![group.clone()]);

    ldap.modify(
        &group,
        vec![
            Mod::Delete("member", HashSet::from([user.as_str()])),
            Mod::Add("member", HashSet::from([""])),
        ],
    )
    .await
    .and_then(|r| r.success())
    .expect("remove member");
    let (entries, _) = ldap
        .search(&user, Scope::Base, "(objectClass=*)", vec!["memberOf"])
        .await
        .and_then(|r| r.success())
        .expect("read user");
    assert!(member_of(entries).is_empty(), "memberOf follows the group");
    for dn in [&group, &user] {
        ldap.delete(dn)
            .await
            .and_then(|r| r.success())
            .expect("clean up");
    }
}

#[tokio::test]
async fn standard_fixture_is_loaded_whole() {
    let slapd = env::slapd();
    let fixture = generate(FixtureSpec::STANDARD);
    let mut ldap = admin(false).await;
    let base = fixture_base(&slapd);
    assert_eq!(
        count(&mut ldap, &base, "(objectClass=inetOrgPerson)").await,
        fixture.users.len()
    );
    assert_eq!(
        count(
            &mut ldap,
            &base,
            "(&(objectClass=posixAccount)(shadowExpire=1))"
        )
        .await,
        fixture.users.iter().filter(|u| u.disabled).count()
    );
    assert_eq!(
        count(&mut ldap, &base, "(objectClass=groupOfNames)").await,
        fixture.groups.len()
    );
    assert_eq!(
        count(&mut ldap, &base, "(objectClass=posixGroup)").await,
        fixture.groups.len()
    );
}
