//! Search entries into the records a read works with: users, groups (and where a ranged member
//! list goes on) and containers. An entry without a usable id or name is malformed data that names
//! the entry.

use std::sync::Arc;
use std::time::SystemTime;

use ldap3::ResultEntry;

use super::assemble::{Member, RawContainer, RawGroup, RawUser};
use super::dn::Dn;
use super::entry::{self, Entry};
use super::error::DirectoryError;
use super::preset::Schema;
use super::snapshot::{Group, User};

/// The entry in a search result message; a message that is not one is malformed data.
pub(super) fn taken_apart(raw: ResultEntry, server: &str) -> Result<Entry, DirectoryError> {
    Entry::from_message(raw).ok_or_else(|| DirectoryError::MalformedData {
        server: server.to_owned(),
        detail: "a search result entry that is not valid LDAP (or whose DN is not UTF-8)"
            .to_owned(),
    })
}

pub(super) fn parse_container(
    mut e: Entry,
    schema: &Schema,
    server: &str,
) -> Result<RawContainer, DirectoryError> {
    let dn = parse_dn(&e.dn, server)?;
    let [text_id] = e.take_texts([entry::text_id(&schema.id, schema.id_format)]);
    Ok(RawContainer {
        name: dn.name().unwrap_or_default().to_owned(),
        id: entry::id(&e, &schema.id, schema.id_format, text_id)
            .ok_or_else(|| missing(server, &e.dn, &schema.id))?,
        text: e.dn,
        dn,
    })
}

fn parse_dn(text: &str, server: &str) -> Result<Dn, DirectoryError> {
    Dn::parse(text).map_err(|e| DirectoryError::MalformedData {
        server: server.to_owned(),
        detail: e.to_string(),
    })
}

fn missing(server: &str, dn: &str, attr: &str) -> DirectoryError {
    DirectoryError::MalformedData {
        server: server.to_owned(),
        detail: format!("{dn} has no usable {attr}; fix the entry or narrow the filter"),
    }
}

pub(super) fn parse_user(
    mut e: Entry,
    schema: &Schema,
    now: SystemTime,
    server: &str,
) -> Result<RawUser, DirectoryError> {
    let dn = parse_dn(&e.dn, server)?;
    // What is read in place comes before the text values are moved out.
    let disabled = entry::is_disabled(&e, schema.disabled, now);
    let expires_on = entry::expires_on(&e, schema.disabled).filter(|_| !disabled);
    let sid = schema.sid.as_deref().and_then(|a| entry::sid(&e, a));
    let [text_id, name, display_name, email, phone, description, upn] = e.take_texts([
        entry::text_id(&schema.id, schema.id_format),
        &schema.user_name,
        &schema.display_name,
        &schema.email,
        &schema.phone,
        &schema.description,
        schema.upn.as_deref().unwrap_or_default(),
    ]);
    let user = User {
        id: entry::id(&e, &schema.id, schema.id_format, text_id)
            .ok_or_else(|| missing(server, &e.dn, &schema.id))?,
        name: name.ok_or_else(|| missing(server, &e.dn, &schema.user_name))?,
        display_name,
        email,
        phone,
        description,
        sid,
        upn,
        disabled,
        dn: e.dn,
    };
    Ok(RawUser {
        dn,
        user: Arc::new(user),
        expires_on,
    })
}

/// A group and, for a ranged member list, where the next range starts.
pub(super) fn parse_group(
    mut e: Entry,
    schema: &Schema,
    server: &str,
) -> Result<(RawGroup, Option<usize>), DirectoryError> {
    let dn = parse_dn(&e.dn, server)?;
    let sid = schema.sid.as_deref().and_then(|a| entry::sid(&e, a));
    let [text_id, name, description] = e.take_texts([
        entry::text_id(&schema.id, schema.id_format),
        &schema.group_name,
        &schema.description,
    ]);
    let name = name
        .or_else(|| dn.name().map(str::to_owned))
        .ok_or_else(|| missing(server, &e.dn, &schema.group_name))?;
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
        id: entry::id(&e, &schema.id, schema.id_format, text_id)
            .ok_or_else(|| missing(server, &e.dn, &schema.id))?,
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
        let raw = parse_user(e, &schema, SystemTime::now(), "ldap://x").expect("parses");
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
            let raw = parse_user(e, &schema, now, "ldap://x").expect("parses");
            (raw.user.disabled, raw.expires_on)
        };
        assert_eq!(user("20001"), (false, Some(20_001)));
        assert_eq!(user("20000"), (true, None));
        assert_eq!(user("-1"), (false, None));
    }
}
