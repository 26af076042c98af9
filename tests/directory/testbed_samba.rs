//! The Samba AD domain controller is real: LDAPS with our CA, DOMAIN\user and UPN binds, the
//! "transport encryption required" refusal of a clear-text bind, and the fixture fully loaded.

use ldap3::{
    Scope, SearchEntry,
    adapters::{Adapter, EntriesOnly, PagedResults},
};
use usersync_testbed::env;
use usersync_testbed::fixture::{FixtureSpec, generate, names};

use crate::support::ldap::ldap_connect;

const STRONG_AUTH_REQUIRED: u32 = 8;
const INVALID_CREDENTIALS: u32 = 49;

async fn bind_over_ldaps(user: &str, password: &str) -> ldap3::LdapResult {
    let samba = env::samba();
    let mut ldap = ldap_connect(&samba.ldaps_url, &samba.ca_file, false).await;
    let result = ldap
        .simple_bind(user, password)
        .await
        .expect("bind request completes");
    let _ = ldap.unbind().await;
    result
}

#[tokio::test]
async fn ldaps_bind_accepts_domain_user_in_any_case_and_upn() {
    let samba = env::samba();
    let domain = &samba.domain;
    let realm = samba.realm.to_lowercase();
    for user in [
        format!("{domain}\\Administrator"),
        format!("{}\\administrator", domain.to_lowercase()),
        format!("{}\\ADMINISTRATOR", domain.to_uppercase()),
        format!("Administrator@{realm}"),
    ] {
        let result = bind_over_ldaps(&user, &samba.admin_password).await;
        assert_eq!(result.rc, 0, "bind as {user}: {result:?}");
    }
    let wrong = bind_over_ldaps(&format!("{domain}\\Administrator"), "not-the-password").await;
    assert_eq!(
        wrong.rc, INVALID_CREDENTIALS,
        "a wrong password is refused: {wrong:?}"
    );
}

#[tokio::test]
async fn plain_simple_bind_without_tls_is_refused() {
    let samba = env::samba();
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&samba.url)
        .await
        .expect("plain LDAP port answers");
    ldap3::drive!(conn);
    let result = ldap
        .simple_bind(
            &format!("{}\\Administrator", samba.domain),
            &samba.admin_password,
        )
        .await
        .expect("bind request completes");
    assert_eq!(
        result.rc, STRONG_AUTH_REQUIRED,
        "Samba requires transport encryption: {result:?}"
    );
    assert!(
        result.text.contains("Transport encryption required"),
        "{}",
        result.text
    );
}

#[tokio::test]
async fn starttls_bind_succeeds() {
    let samba = env::samba();
    let mut ldap = ldap_connect(&samba.url, &samba.ca_file, true).await;
    let result = ldap
        .simple_bind(
            &format!("{}\\Administrator", samba.domain),
            &samba.admin_password,
        )
        .await
        .expect("bind request completes");
    assert_eq!(result.rc, 0, "{result:?}");
}

#[tokio::test]
async fn standard_fixture_is_loaded_whole() {
    let samba = env::samba();
    let fixture = generate(FixtureSpec::STANDARD);
    let mut ldap = ldap_connect(&samba.ldaps_url, &samba.ca_file, false).await;
    ldap.simple_bind(
        &format!("{}\\Administrator", samba.domain),
        &samba.admin_password,
    )
    .await
    .and_then(|r| r.success())
    .expect("admin bind");
    let adapters: Vec<Box<dyn Adapter<_, _>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(500)),
    ];
    let mut search = ldap
        .streaming_search_with(
            adapters,
            &samba.base_dn,
            Scope::Subtree,
            "(&(objectCategory=person)(objectClass=user)(sAMAccountName=user*))",
            vec!["sAMAccountName", "displayName", "userAccountControl"],
        )
        .await
        .expect("paged search starts");
    let (mut users, mut disabled, mut unicode) = (0, 0, 0);
    while let Some(entry) = search.next().await.expect("search continues") {
        let entry = SearchEntry::construct(entry);
        users += 1;
        let uac: u32 = entry.attrs["userAccountControl"][0]
            .parse()
            .expect("userAccountControl is a number");
        disabled += usize::from(uac & 2 != 0);
        unicode += usize::from(!entry.attrs["displayName"][0].is_ascii());
    }
    search.finish().await.success().expect("search ends well");
    assert_eq!(users, fixture.users.len());
    assert_eq!(
        disabled,
        fixture.users.iter().filter(|u| u.disabled).count()
    );
    assert!(unicode > 0, "Unicode display names survive the load");

    let (entries, _) = ldap
        .search(
            &samba.base_dn,
            Scope::Subtree,
            &format!(
                "(&(objectClass=group)(cn={}))",
                ldap3::ldap_escape(names::ALL_STAFF)
            ),
            vec!["member"],
        )
        .await
        .and_then(|r| r.success())
        .expect("group search");
    let big = SearchEntry::construct(entries.into_iter().next().expect("All Staff exists"));
    let expected = fixture
        .groups
        .iter()
        .find(|g| g.name == names::ALL_STAFF)
        .map_or(0, |g| g.members.len());
    assert!(
        expected > 3000,
        "the standard fixture has a 3000+ member group"
    );
    assert_eq!(
        big.attrs.get("member").map_or(0, Vec::len),
        expected,
        "every membership was loaded"
    );
}
