//! LDIF for the fixture: Active Directory objects for Samba, inetOrgPerson/groupOfNames plus
//! posixAccount/posixGroup for OpenLDAP and, with the marks 389-DS uses, for 389 Directory Server.

use std::io::{self, Write};

use base64::Engine;

use crate::fixture::{Fixture, Group, Member, User};

pub const AD_BASE_DN: &str = "DC=corp,DC=example,DC=com";
pub const AD_REALM: &str = "corp.example.com";
pub const OPENLDAP_BASE_DN: &str = "dc=example,dc=org";
/// Where the RFC2307 posixGroup twins of the groups live, under the OpenLDAP base DN.
pub const POSIX_GROUPS_OU: &str = "PosixGroups";

/// Group memberships are added in batches of this many values per modify, well below any server limit.
const MEMBER_BATCH: usize = 1000;

/// Escapes one RDN value (RFC 4514).
pub fn escape_rdn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, '\\' | ',' | '+' | '"' | '<' | '>' | ';' | '=')
            || (i == 0 && (c == ' ' || c == '#'))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Writes `name: value`, or `name:: base64` where LDIF does not allow the value as it is (RFC 2849).
fn attr(out: &mut impl Write, name: &str, value: &str) -> io::Result<()> {
    let safe_start = value
        .chars()
        .next()
        .is_none_or(|c| !matches!(c, ' ' | ':' | '<'));
    let safe = safe_start
        && !value.ends_with(' ')
        && value
            .bytes()
            .all(|b| b.is_ascii() && b != 0 && b != b'\n' && b != b'\r');
    if safe {
        writeln!(out, "{name}: {value}")
    } else {
        writeln!(
            out,
            "{name}:: {}",
            base64::engine::general_purpose::STANDARD.encode(value)
        )
    }
}

/// A group's sAMAccountName: the name without the characters AD refuses there.
pub fn sam_account_name(group: &Group) -> String {
    group
        .name
        .chars()
        .map(|c| {
            if "\"/\\[]:;|=,+*?<>@".contains(c) {
                '_'
            } else {
                c
            }
        })
        .collect()
}

/// The directory's layout: where each OU, user and group of the fixture lives.
pub trait Layout {
    fn base_dn(&self) -> &str;
    fn ou_dn(&self, fixture: &Fixture, ou: usize) -> String;
    fn user_dn(&self, fixture: &Fixture, user: &User) -> String;
    fn group_dn(&self, fixture: &Fixture, group: &Group) -> String;
    fn member_dn(&self, fixture: &Fixture, member: Member) -> String {
        match member {
            Member::User(i) => self.user_dn(fixture, &fixture.users[i]),
            Member::Group(i) => self.group_dn(fixture, &fixture.groups[i]),
        }
    }
}

fn ou_path_dn(fixture: &Fixture, ou: usize, key: &str, base: &str) -> String {
    let mut dn = String::new();
    for name in fixture.ous[ou].path.iter().rev() {
        dn.push_str(&format!("{key}={},", escape_rdn_value(name)));
    }
    dn + base
}

pub struct ActiveDirectory;

impl Layout for ActiveDirectory {
    fn base_dn(&self) -> &str {
        AD_BASE_DN
    }
    fn ou_dn(&self, fixture: &Fixture, ou: usize) -> String {
        ou_path_dn(fixture, ou, "OU", AD_BASE_DN)
    }
    fn user_dn(&self, fixture: &Fixture, user: &User) -> String {
        format!(
            "CN={},{}",
            escape_rdn_value(&user.common_name()),
            self.ou_dn(fixture, user.ou)
        )
    }
    fn group_dn(&self, fixture: &Fixture, group: &Group) -> String {
        format!(
            "CN={},{}",
            escape_rdn_value(&group.name),
            self.ou_dn(fixture, group.ou)
        )
    }
}

pub struct OpenLdap;

impl Layout for OpenLdap {
    fn base_dn(&self) -> &str {
        OPENLDAP_BASE_DN
    }
    fn ou_dn(&self, fixture: &Fixture, ou: usize) -> String {
        ou_path_dn(fixture, ou, "ou", OPENLDAP_BASE_DN)
    }
    fn user_dn(&self, fixture: &Fixture, user: &User) -> String {
        format!(
            "uid={},{}",
            escape_rdn_value(&user.login),
            self.ou_dn(fixture, user.ou)
        )
    }
    fn group_dn(&self, fixture: &Fixture, group: &Group) -> String {
        format!(
            "cn={},{}",
            escape_rdn_value(&group.name),
            self.ou_dn(fixture, group.ou)
        )
    }
}

impl OpenLdap {
    pub fn posix_groups_dn(&self) -> String {
        format!("ou={POSIX_GROUPS_OU},ou=Corp,{OPENLDAP_BASE_DN}")
    }
    pub fn posix_group_dn(&self, group: &Group) -> String {
        format!(
            "cn={},{}",
            escape_rdn_value(&group.name),
            self.posix_groups_dn()
        )
    }
}

/// Active Directory LDIF with explicit changetypes: OUs, users and groups are added first, then the
/// memberships as modifies (AD refuses a member that does not exist yet, and cycles need both ends).
/// For `ldbmodify` or `ldapmodify`.
pub fn write_active_directory(fixture: &Fixture, out: &mut impl Write) -> io::Result<()> {
    let layout = ActiveDirectory;
    for ou in 0..fixture.ous.len() {
        attr(out, "dn", &layout.ou_dn(fixture, ou))?;
        writeln!(out, "changetype: add\nobjectClass: organizationalUnit")?;
        attr(
            out,
            "ou",
            fixture.ous[ou].path.last().map_or("", String::as_str),
        )?;
        writeln!(out)?;
    }
    for user in &fixture.users {
        attr(out, "dn", &layout.user_dn(fixture, user))?;
        writeln!(out, "changetype: add\nobjectClass: user")?;
        attr(out, "cn", &user.common_name())?;
        writeln!(
            out,
            "sAMAccountName: {}\nuserPrincipalName: {}@{AD_REALM}",
            user.login, user.login
        )?;
        write_person(out, user)?;
        // 0x20 (no password required) + 0x200 (normal account), + 0x2 when disabled.
        writeln!(
            out,
            "userAccountControl: {}",
            if user.disabled { 546 } else { 544 }
        )?;
        writeln!(out, "uidNumber: {}\ngidNumber: 20000", user.uid_number)?;
        writeln!(
            out,
            "unixHomeDirectory: /home/{}\nloginShell: /bin/bash\n",
            user.login
        )?;
    }
    for group in &fixture.groups {
        attr(out, "dn", &layout.group_dn(fixture, group))?;
        writeln!(out, "changetype: add\nobjectClass: group")?;
        attr(out, "cn", &group.name)?;
        attr(out, "sAMAccountName", &sam_account_name(group))?;
        attr(out, "description", &group.description)?;
        writeln!(out, "gidNumber: {}\n", group.gid_number)?;
    }
    for group in &fixture.groups {
        let dn = layout.group_dn(fixture, group);
        for batch in group.members.chunks(MEMBER_BATCH) {
            attr(out, "dn", &dn)?;
            writeln!(out, "changetype: modify\nadd: member")?;
            for &member in batch {
                attr(out, "member", &layout.member_dn(fixture, member))?;
            }
            writeln!(out, "-")?;
            let uids: Vec<&str> = batch
                .iter()
                .filter_map(|m| match m {
                    Member::User(i) => Some(fixture.users[*i].login.as_str()),
                    Member::Group(_) => None,
                })
                .collect();
            if !uids.is_empty() {
                writeln!(out, "add: memberUid")?;
                for uid in uids {
                    writeln!(out, "memberUid: {uid}")?;
                }
                writeln!(out, "-")?;
            }
            writeln!(out)?;
        }
    }
    Ok(())
}

fn write_person(out: &mut impl Write, user: &User) -> io::Result<()> {
    attr(out, "givenName", &user.given_name)?;
    attr(out, "sn", &user.surname)?;
    attr(out, "displayName", &user.display_name)?;
    attr(out, "mail", &user.email)?;
    attr(out, "telephoneNumber", &user.phone)?;
    attr(out, "description", &user.description)
}

/// What differs between the servers that take the inetOrgPerson/groupOfNames layout.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    /// With `member_of`, users carry the memberOf values the memberof overlay would have added.
    OpenLdap { member_of: bool },
    /// 389-DS: its memberOf plugin fills memberOf into the nsMemberOf class, which users and groups
    /// carry from the start; disabled users also have `nsAccountLock: true`.
    Ds389,
}

/// OpenLDAP content records (no changetype), for `slapadd` or `ldapadd`, below the base entry.
/// Groups are groupOfNames; each also has a posixGroup twin under ou=PosixGroups for RFC2307.
/// Disabled users carry `shadowExpire: 1` (expired since 1970). With `member_of`, users get the
/// memberOf values the memberof overlay would have added: `slapadd` bypasses overlays.
pub fn write_openldap(fixture: &Fixture, member_of: bool, out: &mut impl Write) -> io::Result<()> {
    write_ldap(fixture, Flavor::OpenLdap { member_of }, out)
}

/// 389 Directory Server content records for `ldapadd`, below the base entry: the OpenLDAP layout and
/// base DN, with `objectClass: nsMemberOf` on users and groups for the memberOf plugin to write into,
/// and `nsAccountLock: true` (as well as `shadowExpire: 1`) on disabled users. groupOfNames needs no
/// member on 389-DS, so the empty group has none.
pub fn write_389ds(fixture: &Fixture, out: &mut impl Write) -> io::Result<()> {
    write_ldap(fixture, Flavor::Ds389, out)
}

fn write_ldap(fixture: &Fixture, flavor: Flavor, out: &mut impl Write) -> io::Result<()> {
    let layout = OpenLdap;
    let member_of = flavor == Flavor::OpenLdap { member_of: true };
    let ds389 = flavor == Flavor::Ds389;
    for ou in 0..fixture.ous.len() {
        attr(out, "dn", &layout.ou_dn(fixture, ou))?;
        writeln!(out, "objectClass: organizationalUnit")?;
        attr(
            out,
            "ou",
            fixture.ous[ou].path.last().map_or("", String::as_str),
        )?;
        writeln!(out)?;
    }
    attr(out, "dn", &layout.posix_groups_dn())?;
    writeln!(
        out,
        "objectClass: organizationalUnit\nou: {POSIX_GROUPS_OU}\n"
    )?;
    let mut groups_of_user: Vec<Vec<usize>> =
        vec![Vec::new(); if member_of { fixture.users.len() } else { 0 }];
    if member_of {
        for (g, group) in fixture.groups.iter().enumerate() {
            for m in &group.members {
                if let Member::User(u) = m {
                    groups_of_user[*u].push(g);
                }
            }
        }
    }
    for (i, user) in fixture.users.iter().enumerate() {
        attr(out, "dn", &layout.user_dn(fixture, user))?;
        writeln!(
            out,
            "objectClass: inetOrgPerson\nobjectClass: posixAccount\nobjectClass: shadowAccount"
        )?;
        if ds389 {
            writeln!(out, "objectClass: nsMemberOf")?;
        }
        writeln!(out, "uid: {}", user.login)?;
        attr(out, "cn", &user.common_name())?;
        write_person(out, user)?;
        writeln!(
            out,
            "uidNumber: {}\ngidNumber: 20000\nhomeDirectory: /home/{}",
            user.uid_number, user.login
        )?;
        writeln!(out, "loginShell: /bin/bash")?;
        if user.disabled {
            writeln!(out, "shadowExpire: 1")?;
            if ds389 {
                writeln!(out, "nsAccountLock: true")?;
            }
        }
        for &g in groups_of_user.get(i).into_iter().flatten() {
            attr(
                out,
                "memberOf",
                &layout.group_dn(fixture, &fixture.groups[g]),
            )?;
        }
        writeln!(out)?;
    }
    for group in &fixture.groups {
        attr(out, "dn", &layout.group_dn(fixture, group))?;
        writeln!(out, "objectClass: groupOfNames")?;
        if ds389 {
            writeln!(out, "objectClass: nsMemberOf")?;
        }
        attr(out, "cn", &group.name)?;
        attr(out, "description", &group.description)?;
        if group.members.is_empty() && !ds389 {
            // OpenLDAP's groupOfNames requires a member; the empty DN is the usual placeholder.
            writeln!(out, "member:")?;
        }
        for &member in &group.members {
            attr(out, "member", &layout.member_dn(fixture, member))?;
        }
        writeln!(out)?;
        attr(out, "dn", &layout.posix_group_dn(group))?;
        writeln!(out, "objectClass: posixGroup")?;
        attr(out, "cn", &group.name)?;
        attr(out, "description", &group.description)?;
        writeln!(out, "gidNumber: {}", group.gid_number)?;
        for m in &group.members {
            if let Member::User(u) = m {
                writeln!(out, "memberUid: {}", fixture.users[*u].login)?;
            }
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::{FixtureSpec, generate};

    #[test]
    fn rdn_values_are_escaped() {
        assert_eq!(
            escape_rdn_value("Research, Development + Test"),
            r"Research\, Development \+ Test"
        );
        assert_eq!(escape_rdn_value("Tricky *)(uid=*"), r"Tricky *)(uid\=*");
        assert_eq!(escape_rdn_value(" #lead"), r"\ #lead");
        assert_eq!(escape_rdn_value("trail "), r"trail\ ");
    }

    #[test]
    fn non_ascii_values_are_base64() {
        let mut out = Vec::new();
        attr(&mut out, "cn", "Účtovníctvo").unwrap();
        attr(&mut out, "cn", "plain").unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "cn:: w5rEjXRvdm7DrWN0dm8=\ncn: plain\n"
        );
    }

    #[test]
    fn ldif_is_deterministic_and_complete() {
        let fixture = generate(FixtureSpec::SMALL);
        let render = |f: &dyn Fn(&mut Vec<u8>)| {
            let mut out = Vec::new();
            f(&mut out);
            String::from_utf8(out).unwrap()
        };
        let ad = render(&|o| write_active_directory(&fixture, o).unwrap());
        assert_eq!(
            ad,
            render(&|o| write_active_directory(&fixture, o).unwrap())
        );
        assert_eq!(
            ad.matches("objectClass: user\n").count(),
            fixture.users.len()
        );
        assert_eq!(
            ad.matches("objectClass: group\n").count(),
            fixture.groups.len()
        );
        let ldap = render(&|o| write_openldap(&fixture, true, o).unwrap());
        assert_eq!(
            ldap.matches("objectClass: inetOrgPerson\n").count(),
            fixture.users.len()
        );
        assert_eq!(
            ldap.matches("objectClass: posixGroup\n").count(),
            fixture.groups.len()
        );
        assert!(!ldap.contains("nsAccountLock") && !ldap.contains("nsMemberOf"));

        let ds = render(&|o| write_389ds(&fixture, o).unwrap());
        let disabled = fixture.users.iter().filter(|u| u.disabled).count();
        assert!(disabled > 0);
        assert_eq!(ds.matches("nsAccountLock: true\n").count(), disabled);
        assert_eq!(ds.matches("shadowExpire: 1\n").count(), disabled);
        assert_eq!(
            ds.matches("objectClass: nsMemberOf\n").count(),
            fixture.users.len() + fixture.groups.len()
        );
        assert!(!ds.contains("memberOf:") && !ds.contains("member:\n"));
    }
}
