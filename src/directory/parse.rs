//! Search entries into the records a read works with: users, groups (and where a ranged member
//! list goes on) and containers. An entry without a usable id or name, or whose DN does not parse,
//! is a [`BadEntry`] that names it as far as it can: the read counts it and goes on.

use std::sync::Arc;
use std::time::SystemTime;

use ldap3::ResultEntry;

use super::assemble::{Member, RawContainer, RawGroup, RawUser};
use super::dn::{Dn, DnError, DnKey};
use super::entry::{self, Entry};
use super::error::DirectoryError;
use super::preset::Schema;
use super::snapshot::{BadEntry, Group, User};

/// The entry in a search result message; a message that is not one is a bad entry without a name.
pub(super) fn taken_apart(raw: ResultEntry) -> Result<Entry, BadEntry> {
    Entry::from_message(raw).ok_or_else(|| BadEntry {
        dn: None,
        id: None,
        why: "not a valid LDAP entry, or its DN is not UTF-8".to_owned(),
    })
}

/// The entry of a message that must be one (a range continuation, the root DSE): malformed data.
pub(super) fn taken_apart_whole(raw: ResultEntry, server: &str) -> Result<Entry, DirectoryError> {
    taken_apart(raw).map_err(|bad| DirectoryError::MalformedData {
        server: server.to_owned(),
        detail: format!("a search result entry that is {}", bad.why),
    })
}

pub fn parse_container(mut e: Entry, schema: &Schema) -> Result<RawContainer, BadEntry> {
    let [text_id] = e.take_texts([entry::text_id(&schema.id, schema.id_format)]);
    let id = entry::id(&e, &schema.id, schema.id_format, text_id);
    let dn = parse_dn(&e.dn, id.as_deref())?;
    Ok(RawContainer {
        name: dn.name().unwrap_or_default().to_owned(),
        id: id.ok_or_else(|| missing(&e.dn, None, &schema.id))?,
        text: e.dn,
        dn,
    })
}

fn parse_dn(text: &str, id: Option<&str>) -> Result<Dn, BadEntry> {
    Dn::parse(text).map_err(|e| bad_dn(text, id, e))
}

fn bad_dn(text: &str, id: Option<&str>, e: DnError) -> BadEntry {
    BadEntry {
        dn: Some(text.to_owned()),
        id: id.map(str::to_owned),
        why: e.to_string(),
    }
}

fn missing(dn: &str, id: Option<&str>, attr: &str) -> BadEntry {
    BadEntry {
        dn: Some(dn.to_owned()),
        id: id.map(str::to_owned),
        why: format!("no usable {attr}; fix the entry or narrow the filter"),
    }
}

pub fn parse_user(mut e: Entry, schema: &Schema, now: SystemTime) -> Result<RawUser, BadEntry> {
    // What is read in place comes before the text values are moved out.
    let disabled = entry::is_disabled(&e, schema.disabled, now);
    let expires_on = entry::expires_on(&e, schema.disabled).filter(|_| !disabled);
    let sid = schema.sid.as_deref().and_then(|a| entry::sid(&e, a));
    let attributes = schema
        .extra
        .iter()
        .filter_map(|(field, attribute)| Some((field.clone(), e.text(attribute)?.to_owned())))
        .collect();
    let [text_id, name, display_name, email, phone, description, upn] = e.take_texts([
        entry::text_id(&schema.id, schema.id_format),
        &schema.user_name,
        &schema.display_name,
        &schema.email,
        &schema.phone,
        &schema.description,
        schema.upn.as_deref().unwrap_or_default(),
    ]);
    let id = entry::id(&e, &schema.id, schema.id_format, text_id);
    let dn = DnKey::parse(&e.dn).map_err(|err| bad_dn(&e.dn, id.as_deref(), err))?;
    let user = User {
        name: name.ok_or_else(|| missing(&e.dn, id.as_deref(), &schema.user_name))?,
        id: id.ok_or_else(|| missing(&e.dn, None, &schema.id))?,
        display_name,
        email,
        phone,
        description,
        sid,
        upn,
        disabled,
        attributes,
        dn: e.dn,
    };
    Ok(RawUser {
        dn,
        user: Arc::new(user),
        expires_on,
    })
}

/// A group and, for a ranged member list, where the next range starts.
pub fn parse_group(mut e: Entry, schema: &Schema) -> Result<(RawGroup, Option<usize>), BadEntry> {
    let sid = schema.sid.as_deref().and_then(|a| entry::sid(&e, a));
    let [text_id, name, description] = e.take_texts([
        entry::text_id(&schema.id, schema.id_format),
        &schema.group_name,
        &schema.description,
    ]);
    let id = entry::id(&e, &schema.id, schema.id_format, text_id);
    let dn = parse_dn(&e.dn, id.as_deref())?;
    let name = name
        .or_else(|| dn.name().map(str::to_owned))
        .ok_or_else(|| missing(&e.dn, id.as_deref(), &schema.group_name))?;
    let mut members = Vec::new();
    let mut next = None;
    for attr in &schema.member {
        let (values, more) = e.take_members(attr);
        members.extend(
            values
                .into_iter()
                .map(|v| Member::new(v, schema.member_format)),
        );
        next = next.or(more);
    }
    let group = Group {
        id: id.ok_or_else(|| missing(&e.dn, None, &schema.id))?,
        description,
        sid,
        dn: e.dn,
        name,
        ..Default::default()
    };
    Ok((RawGroup { dn, group, members }, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_attribute_can_fill_several_fields() {
        use crate::api::{AttributeOverrides, DirectoryPreset};
        let schema = Schema::new(
            DirectoryPreset::Custom,
            &AttributeOverrides {
                id: Some("uid".into()),
                email: Some("mail".into()),
                upn: Some("MAIL".into()),
                description: Some("cn".into()),
                display_name: Some("cn".into()),
                ..Default::default()
            },
        );
        let e = Entry::new(
            "uid=jdoe,ou=People,dc=example,dc=org",
            &[
                ("uid", &["jdoe"]),
                ("cn", &["John Doe"]),
                ("mail", &["jdoe@x"]),
            ],
        );
        let raw = parse_user(e, &schema, SystemTime::now()).expect("parses");
        let u = &raw.user;
        assert_eq!((u.id.as_str(), u.name.as_str()), ("jdoe", "jdoe"));
        assert_eq!(u.email.as_deref(), Some("jdoe@x"));
        assert_eq!(u.upn.as_deref(), Some("jdoe@x"));
        assert_eq!(u.description.as_deref(), Some("John Doe"));
        assert_eq!(u.display_name.as_deref(), Some("John Doe"));
    }

    #[test]
    fn an_enabled_account_keeps_the_day_it_expires_on() {
        use crate::api::{AttributeOverrides, DirectoryPreset};
        use std::time::{Duration, UNIX_EPOCH};
        let schema = Schema::new(DirectoryPreset::OpenLdap, &AttributeOverrides::default());
        let user = |shadow_expire: &str| {
            let e = Entry::new(
                "uid=jdoe,ou=People,dc=example,dc=org",
                &[
                    ("uid", &["jdoe"]),
                    ("entryUUID", &["u-1"]),
                    ("shadowExpire", &[shadow_expire]),
                ],
            );
            let now = UNIX_EPOCH + Duration::from_secs(20_000 * 86_400);
            let raw = parse_user(e, &schema, now).expect("parses");
            (raw.user.disabled, raw.expires_on)
        };
        assert_eq!(user("20001"), (false, Some(20_001)));
        assert_eq!(user("20000"), (true, None));
        assert_eq!(user("-1"), (false, None));
    }

    #[test]
    fn a_bad_entry_is_named_as_far_as_it_can_be() {
        use crate::api::{AttributeOverrides, DirectoryPreset};
        let schema = Schema::new(DirectoryPreset::OpenLdap, &AttributeOverrides::default());
        let no_uid = Entry::new(
            "cn=nouid,ou=People,dc=example,dc=org",
            &[("entryUUID", &["u-1"]), ("cn", &["nouid"])],
        );
        let bad = parse_user(no_uid, &schema, SystemTime::now()).expect_err("no login name");
        assert_eq!(
            bad.dn.as_deref(),
            Some("cn=nouid,ou=People,dc=example,dc=org")
        );
        assert_eq!(bad.id.as_deref(), Some("u-1"));
        assert!(bad.why.contains("uid"), "{}", bad.why);

        let no_id = Entry::new("cn=Ops,dc=example,dc=org", &[("cn", &["Ops"])]);
        let bad = parse_group(no_id, &schema).expect_err("no id");
        assert_eq!((bad.dn.is_some(), bad.id), (true, None));

        let broken_dn = Entry::new("not a dn", &[("entryUUID", &["u-2"]), ("uid", &["x"])]);
        let bad = parse_user(broken_dn, &schema, SystemTime::now()).expect_err("DN");
        assert_eq!(bad.id.as_deref(), Some("u-2"));
    }
}
