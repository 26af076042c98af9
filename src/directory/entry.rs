//! Reading attribute values out of search entries: case-insensitive names, binary identities, and
//! the disabled flag of each kind of directory.

use std::time::{SystemTime, UNIX_EPOCH};

use ldap3::SearchEntry;

use super::identity::{guid_to_string, sid_to_string};
use super::preset::{DisabledRule, IdFormat};

/// Values of `name` (any letter case), text or binary, as bytes.
pub fn values<'e>(entry: &'e SearchEntry, name: &str) -> Vec<&'e [u8]> {
    let text = entry
        .attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.iter().map(|s| s.as_bytes()));
    let bin = entry
        .bin_attrs
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case(name))
        .flat_map(|(_, v)| v.iter().map(Vec::as_slice));
    text.chain(bin).collect()
}

/// The first text value of `name`, trimmed; `None` when absent or empty.
pub fn text(entry: &SearchEntry, name: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
}

/// The stable id, formatted; `None` when the entry lacks it or it is malformed.
pub fn id(entry: &SearchEntry, name: &str, format: IdFormat) -> Option<String> {
    match format {
        IdFormat::Text => text(entry, name),
        IdFormat::BinaryGuid => values(entry, name).first().and_then(|b| guid_to_string(b)),
    }
}

pub fn sid(entry: &SearchEntry, name: &str) -> Option<String> {
    values(entry, name).first().and_then(|b| sid_to_string(b))
}

pub fn is_disabled(entry: &SearchEntry, rule: DisabledRule, now: SystemTime) -> bool {
    match rule {
        DisabledRule::Never => false,
        DisabledRule::UserAccountControl => text(entry, "userAccountControl")
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|uac| uac & 2 != 0),
        DisabledRule::NsAccountLock => {
            text(entry, "nsAccountLock").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        }
        DisabledRule::LockedOrExpired => {
            let locked = text(entry, "pwdAccountLockedTime").is_some();
            let today = now
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() / 86_400) as i64;
            // shadowExpire counts days since 1970; -1 (or absent) means never.
            let expired = text(entry, "shadowExpire")
                .and_then(|v| v.parse::<i64>().ok())
                .is_some_and(|d| d >= 0 && d <= today);
            locked || expired
        }
    }
}

/// Member values of `name`, including Active Directory's ranged form `member;range=0-1499`.
/// Returns the values and, when the server sent only a range, the next range's start.
pub fn member_values(entry: &SearchEntry, name: &str) -> (Vec<String>, Option<usize>) {
    let mut out = Vec::new();
    let mut next = None;
    let prefix = format!("{};range=", name.to_ascii_lowercase());
    for (key, vals) in &entry.attrs {
        let lower = key.to_ascii_lowercase();
        if lower == name.to_ascii_lowercase() {
            out.extend(vals.iter().cloned());
        } else if let Some(range) = lower.strip_prefix(&prefix) {
            out.extend(vals.iter().cloned());
            if let Some((_, end)) = range.split_once('-')
                && end != "*"
            {
                next = end.parse::<usize>().ok().map(|e| e + 1);
            }
        }
    }
    (out, next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn entry(attrs: &[(&str, &[&str])]) -> SearchEntry {
        SearchEntry {
            dn: "cn=x".into(),
            attrs: attrs
                .iter()
                .map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect()))
                .collect(),
            bin_attrs: HashMap::new(),
        }
    }

    #[test]
    fn ranged_members_report_where_to_continue() {
        let (values, next) =
            member_values(&entry(&[("member;range=0-1499", &["a", "b"])]), "member");
        assert_eq!(values, ["a", "b"]);
        assert_eq!(next, Some(1500));
        let (_, last) = member_values(&entry(&[("member;range=1500-*", &["c"])]), "member");
        assert_eq!(last, None);
        let (plain, none) = member_values(&entry(&[("Member", &["x"])]), "member");
        assert_eq!((plain, none), (vec!["x".to_owned()], None));
    }

    #[test]
    fn disabled_rules() {
        let now = SystemTime::now();
        assert!(is_disabled(
            &entry(&[("userAccountControl", &["514"])]),
            DisabledRule::UserAccountControl,
            now
        ));
        assert!(!is_disabled(
            &entry(&[("userAccountControl", &["512"])]),
            DisabledRule::UserAccountControl,
            now
        ));
        assert!(is_disabled(
            &entry(&[("nsAccountLock", &["TRUE"])]),
            DisabledRule::NsAccountLock,
            now
        ));
        assert!(is_disabled(
            &entry(&[("shadowExpire", &["1"])]),
            DisabledRule::LockedOrExpired,
            now
        ));
        assert!(!is_disabled(
            &entry(&[("shadowExpire", &["-1"])]),
            DisabledRule::LockedOrExpired,
            now
        ));
        assert!(!is_disabled(
            &entry(&[("shadowExpire", &["999999"])]),
            DisabledRule::LockedOrExpired,
            now
        ));
        assert!(is_disabled(
            &entry(&[("pwdAccountLockedTime", &["000001010000Z"])]),
            DisabledRule::LockedOrExpired,
            now
        ));
    }

    #[test]
    fn attribute_names_match_in_any_case() {
        let e = entry(&[("sAMAccountName", &[" jdoe "])]);
        assert_eq!(text(&e, "samaccountname").as_deref(), Some("jdoe"));
    }
}
