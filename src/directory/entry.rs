//! Reading attribute values out of search entries: case-insensitive names, binary ids, and
//! the disabled flag of each kind of directory.

use std::time::{SystemTime, UNIX_EPOCH};

use ldap3::ResultEntry;

use super::id_format::{guid_to_string, sid_to_string};
use super::preset::{DisabledRule, IdFormat};

/// A search result entry taken apart: its DN and each attribute's values, moved out of the
/// protocol message as they are (no copies, no hashing), so that the fields a record keeps can be
/// moved out again.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    pub dn: String,
    attrs: Vec<(String, Vec<Vec<u8>>)>,
}

impl Entry {
    /// The most values any one attribute has, and the longest value, in bytes.
    pub fn widest(&self) -> (usize, usize) {
        self.attrs
            .iter()
            .fold((0, 0), |(count, bytes), (_, values)| {
                let longest = values.iter().map(Vec::len).max().unwrap_or(0);
                (count.max(values.len()), bytes.max(longest))
            })
    }

    /// `None` when the message is not a well-formed SearchResultEntry (RFC 4511 4.5.2) with a
    /// UTF-8 DN and attribute names.
    pub fn from_message(raw: ResultEntry) -> Option<Entry> {
        let mut parts = raw.0.match_id(4)?.expect_constructed()?.into_iter();
        let dn = String::from_utf8(parts.next()?.expect_primitive()?).ok()?;
        let attrs = parts
            .next()?
            .expect_constructed()?
            .into_iter()
            .map(|attr| {
                let mut attr = attr.expect_constructed()?.into_iter();
                let name = String::from_utf8(attr.next()?.expect_primitive()?).ok()?;
                let values = attr
                    .next()?
                    .expect_constructed()?
                    .into_iter()
                    .map(|v| v.expect_primitive())
                    .collect::<Option<Vec<_>>>()?;
                Some((name, values))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Entry { dn, attrs })
    }

    #[cfg(test)]
    pub fn new(dn: &str, attrs: &[(&str, &[&str])]) -> Entry {
        Entry {
            dn: dn.to_owned(),
            attrs: attrs
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        v.iter().map(|s| s.as_bytes().to_vec()).collect(),
                    )
                })
                .collect(),
        }
    }

    #[cfg(test)]
    pub fn with_binary(mut self, name: &str, value: &[u8]) -> Entry {
        self.attrs.push((name.to_owned(), vec![value.to_vec()]));
        self
    }

    fn named<'e, 'n>(&'e self, name: &'n str) -> impl Iterator<Item = &'e Vec<u8>> + use<'e, 'n> {
        self.attrs
            .iter()
            .filter(move |(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.iter())
    }

    /// Values of `name` (any letter case), text or binary, as bytes.
    pub fn values(&self, name: &str) -> Vec<&[u8]> {
        self.named(name).map(Vec::as_slice).collect()
    }

    /// The first text value of `name`, trimmed; `None` when absent, empty or not UTF-8.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.named(name)
            .find_map(|v| std::str::from_utf8(v).ok())
            .map(str::trim)
            .filter(|s| !s.is_empty())
    }

    /// [`Entry::text`], moved out of the entry when it needs no trimming.
    fn take_text(&mut self, name: &str) -> Option<String> {
        let values = self
            .attrs
            .iter_mut()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.iter_mut());
        let mut text = None;
        for value in values {
            match String::from_utf8(std::mem::take(value)) {
                Ok(t) => {
                    text = Some(t);
                    break;
                }
                // Not text: left as it was.
                Err(e) => *value = e.into_bytes(),
            }
        }
        let text = text?;
        let trimmed = text.trim();
        match trimmed.len() {
            0 => None,
            n if n == text.len() => Some(text),
            _ => Some(trimmed.to_owned()),
        }
    }

    /// The first text value of each of `names`, trimmed: moved out of the entry, or copied when a
    /// later name asks for the same attribute (a mapping may use one attribute for two fields).
    pub fn take_texts<const N: usize>(&mut self, names: [&str; N]) -> [Option<String>; N] {
        std::array::from_fn(|i| {
            let name = names[i];
            if names[i + 1..].iter().any(|n| n.eq_ignore_ascii_case(name)) {
                self.text(name).map(str::to_owned)
            } else {
                self.take_text(name)
            }
        })
    }

    /// Member values of `name`, including Active Directory's ranged form `member;range=0-1499`,
    /// moved out of the entry. Returns the values and, when the server sent only a range, the
    /// next range's start (`usize::MAX` when its end cannot be continued from). A value that is not UTF-8 is kept (lossily) so that it shows as
    /// unresolved instead of vanishing.
    pub fn take_members(&mut self, name: &str) -> (Vec<String>, Option<usize>) {
        let mut out = Vec::new();
        let mut next = None;
        for (key, vals) in &mut self.attrs {
            let Some(rest) = key
                .get(..name.len())
                .filter(|head| head.eq_ignore_ascii_case(name))
                .map(|_| &key[name.len()..])
            else {
                continue;
            };
            let range = if rest.is_empty() {
                None
            } else if let Some(range) = rest
                .get(..7)
                .filter(|r| r.eq_ignore_ascii_case(";range="))
                .map(|_| &rest[7..])
            {
                Some(range)
            } else {
                continue;
            };
            out.extend(std::mem::take(vals).into_iter().map(|v| {
                String::from_utf8(v)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
            }));
            if let Some((_, end)) = range.and_then(|r| r.split_once('-'))
                && end != "*"
            {
                // An end that is no number, or the largest one, cannot be continued from:
                // `usize::MAX` says so, and the reader refuses it.
                next = Some(
                    end.parse::<usize>()
                        .ok()
                        .and_then(|e| e.checked_add(1))
                        .unwrap_or(usize::MAX),
                );
            }
        }
        (out, next)
    }
}

/// The stable id: the text value taken with the entry's others (`text`), or the formatted GUID;
/// `None` when the entry lacks it or it is malformed.
pub fn id(entry: &Entry, name: &str, format: IdFormat, text: Option<String>) -> Option<String> {
    match format {
        IdFormat::Text => text,
        IdFormat::BinaryGuid => entry.named(name).next().and_then(|b| guid_to_string(b)),
    }
}

/// The id attribute when the id is text, to be taken with the entry's other text values.
pub fn text_id(name: &str, format: IdFormat) -> &str {
    match format {
        IdFormat::Text => name,
        IdFormat::BinaryGuid => "",
    }
}

pub fn sid(entry: &Entry, name: &str) -> Option<String> {
    entry.named(name).next().and_then(|b| sid_to_string(b))
}

pub fn is_disabled(entry: &Entry, rule: DisabledRule, now: SystemTime) -> bool {
    match rule {
        DisabledRule::Never => false,
        DisabledRule::UserAccountControl => entry
            .text("userAccountControl")
            .and_then(|v| v.parse::<i64>().ok())
            .is_some_and(|uac| uac & 2 != 0),
        DisabledRule::NsAccountLock => entry
            .text("nsAccountLock")
            .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        DisabledRule::LockedOrExpired => {
            let locked = entry.text("pwdAccountLockedTime").is_some();
            let expired = expires_on(entry, rule).is_some_and(|day| day <= day_of(now));
            locked || expired
        }
    }
}

/// The day (since 1970) the entry's account expires on under `rule`, if it has one: shadowExpire
/// counts days since 1970; -1 (or absent) means never.
pub fn expires_on(entry: &Entry, rule: DisabledRule) -> Option<i64> {
    match rule {
        DisabledRule::LockedOrExpired => entry
            .text("shadowExpire")
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|day| *day >= 0),
        _ => None,
    }
}

/// Days since 1970 at `now`.
pub fn day_of(now: SystemTime) -> i64 {
    now.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(attrs: &[(&str, &[&str])]) -> Entry {
        Entry::new("cn=x", attrs)
    }

    #[test]
    fn ranged_members_report_where_to_continue() {
        let (values, next) = entry(&[("member;range=0-1499", &["a", "b"])]).take_members("member");
        assert_eq!(values, ["a", "b"]);
        assert_eq!(next, Some(1500));
        let (_, last) = entry(&[("member;Range=1500-*", &["c"])]).take_members("member");
        assert_eq!(last, None);
        let (plain, none) = entry(&[("Member", &["x"])]).take_members("member");
        assert_eq!((plain, none), (vec!["x".to_owned()], None));
        let (other, _) =
            entry(&[("memberOf", &["y"]), ("member;binary", &["z"])]).take_members("member");
        assert!(other.is_empty());
        for end in ["18446744073709551615", "99999999999999999999999", "x"] {
            let attr = format!("member;range=0-{end}");
            let (_, next) = entry(&[(attr.as_str(), &["a"])]).take_members("member");
            assert_eq!(next, Some(usize::MAX), "{end}");
        }
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
        assert_eq!(e.text("samaccountname"), Some("jdoe"));
        let mut e = e;
        assert_eq!(e.take_text("SAMACCOUNTNAME").as_deref(), Some("jdoe"));
    }

    fn message(dn: &[u8], attrs: &[(&[u8], &[&[u8]])]) -> ResultEntry {
        use ldap3::asn1::{PL, StructureTag, TagClass};
        let octets = |b: &[u8]| StructureTag {
            class: TagClass::Universal,
            id: 4,
            payload: PL::P(b.to_vec()),
        };
        let constructed = |class, id, inner| StructureTag {
            class,
            id,
            payload: PL::C(inner),
        };
        let attrs = attrs
            .iter()
            .map(|(name, values)| {
                let values = values.iter().map(|v| octets(v)).collect();
                constructed(
                    TagClass::Universal,
                    16,
                    vec![octets(name), constructed(TagClass::Universal, 17, values)],
                )
            })
            .collect();
        ResultEntry::new(constructed(
            TagClass::Application,
            4,
            vec![octets(dn), constructed(TagClass::Universal, 16, attrs)],
        ))
    }

    #[test]
    fn messages_are_taken_apart_without_losing_values() {
        let guid = [0xff_u8, 0xfe, 0, 1];
        let e = Entry::from_message(message(
            "cn=Zoë,dc=x".as_bytes(),
            &[(b"cn", &[b" Zo\xc3\xab "]), (b"objectGUID", &[&guid])],
        ))
        .expect("well formed");
        assert_eq!(e.dn, "cn=Zoë,dc=x");
        assert_eq!(e.text("CN"), Some("Zoë"));
        assert_eq!(e.values("objectguid"), [&guid[..]]);
        // Binary values are not text.
        assert_eq!(e.text("objectGUID"), None);
    }

    #[test]
    fn malformed_messages_are_refused() {
        assert!(Entry::from_message(message(&[0xff, 0x41], &[])).is_none());
        assert!(Entry::from_message(message(b"cn=x", &[(&[0xc3], &[b"v"])])).is_none());
        let mut referral = message(b"cn=x", &[]);
        referral.0.id = 19;
        assert!(Entry::from_message(referral).is_none());
    }

    #[test]
    fn members_that_are_not_utf8_stay_visible() {
        let mut e = entry(&[("member", &["cn=a"])]).with_binary("member", &[0x63, 0xff]);
        let (values, _) = e.take_members("member");
        assert_eq!(values, ["cn=a", "c\u{fffd}"]);
    }

    #[test]
    fn an_attribute_mapped_to_two_fields_fills_both() {
        let mut e = entry(&[("uid", &["jdoe"]), ("mail", &["j@x"])]);
        let [id, name, mail, missing] = e.take_texts(["UID", "uid", "mail", ""]);
        assert_eq!(id.as_deref(), Some("jdoe"));
        assert_eq!(name.as_deref(), Some("jdoe"));
        assert_eq!(mail.as_deref(), Some("j@x"));
        assert_eq!(missing, None);
    }
}
