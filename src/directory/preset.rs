//! Presets: the object classes, filters and attribute names of each kind of directory, and how the
//! task's `directory.attributes` override them field by field.

use crate::api::{AttributeOverrides, DirectoryPreset};

/// How a directory stores the stable id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdFormat {
    /// A 16-byte binary GUID (Active Directory objectGUID).
    BinaryGuid,
    /// A text value used as it is (entryUUID, nsUniqueId, ipaUniqueID).
    Text,
}

/// How group members are named.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberFormat {
    /// Member values are DNs of users or groups (member, uniqueMember).
    Dn,
    /// Member values are user names (RFC2307 memberUid); groups cannot nest.
    UserName,
}

/// How a directory marks a user as disabled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DisabledRule {
    /// userAccountControl bit 2 (ACCOUNTDISABLE).
    UserAccountControl,
    /// nsAccountLock: TRUE (389-DS, FreeIPA).
    NsAccountLock,
    /// ppolicy's pwdAccountLockedTime present, or shadowExpire (days since 1970) in the past.
    LockedOrExpired,
    /// The directory has no such notion.
    Never,
}

/// The resolved attribute names for one task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Schema {
    /// The task's extra user fields: (field name, attribute).
    pub extra: Vec<(String, String)>,
    pub user_filter: String,
    pub group_filter: String,
    pub user_name: String,
    pub display_name: String,
    pub email: String,
    pub phone: String,
    pub description: String,
    pub id: String,
    pub id_format: IdFormat,
    pub sid: Option<String>,
    pub upn: Option<String>,
    pub group_name: String,
    /// Member attributes, read in this order (groupOfNames has member, groupOfUniqueNames uniqueMember).
    pub member: Vec<String>,
    pub member_format: MemberFormat,
    pub disabled: DisabledRule,
    /// Active Directory: ranged retrieval of large multi-valued attributes and the in-chain rule.
    pub active_directory: bool,
}

impl Schema {
    pub fn new(preset: DirectoryPreset, overrides: &AttributeOverrides) -> Schema {
        let mut schema = match preset {
            DirectoryPreset::ActiveDirectory => active_directory(),
            DirectoryPreset::OpenLdap | DirectoryPreset::Custom => openldap(),
            DirectoryPreset::Rfc2307 => rfc2307(),
            DirectoryPreset::FreeIpa => freeipa(),
        };
        schema.apply(overrides);
        schema
    }

    fn apply(&mut self, o: &AttributeOverrides) {
        let set = |field: &mut String, value: &Option<String>| {
            if let Some(v) = value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
                *field = v.to_owned();
            }
        };
        if let Some(class) = o
            .user_object_class
            .as_deref()
            .filter(|c| !c.trim().is_empty())
        {
            self.user_filter = format!("(objectClass={})", ldap3::ldap_escape(class.trim()));
        }
        if let Some(class) = o
            .group_object_class
            .as_deref()
            .filter(|c| !c.trim().is_empty())
        {
            self.group_filter = format!("(objectClass={})", ldap3::ldap_escape(class.trim()));
        }
        set(&mut self.user_name, &o.user_name);
        set(&mut self.display_name, &o.display_name);
        set(&mut self.email, &o.email);
        set(&mut self.phone, &o.phone);
        set(&mut self.description, &o.description);
        set(&mut self.group_name, &o.group_name);
        if let Some(id) = o.id.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            self.id_format = if id.eq_ignore_ascii_case("objectGUID") {
                IdFormat::BinaryGuid
            } else {
                IdFormat::Text
            };
            self.id = id.to_owned();
        }
        if let Some(sid) = o.sid.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            self.sid = Some(sid.to_owned());
        }
        if let Some(upn) = o.upn.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            self.upn = Some(upn.to_owned());
        }
        if let Some(member) = o.member.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            self.member_format = if member.eq_ignore_ascii_case("memberUid") {
                MemberFormat::UserName
            } else {
                MemberFormat::Dn
            };
            self.member = vec![member.to_owned()];
        }
    }

    /// Attributes to request for users.
    pub fn user_attributes(&self) -> Vec<&str> {
        let mut attrs = vec![
            self.user_name.as_str(),
            &self.display_name,
            &self.email,
            &self.phone,
            &self.description,
            &self.id,
        ];
        attrs.extend(self.sid.as_deref());
        attrs.extend(self.upn.as_deref());
        attrs.extend(self.extra.iter().map(|(_, attr)| attr.as_str()));
        match self.disabled {
            DisabledRule::UserAccountControl => attrs.push("userAccountControl"),
            DisabledRule::NsAccountLock => attrs.push("nsAccountLock"),
            DisabledRule::LockedOrExpired => attrs.extend(["pwdAccountLockedTime", "shadowExpire"]),
            DisabledRule::Never => {}
        }
        attrs
    }

    /// Attributes to request for groups.
    pub fn group_attributes(&self) -> Vec<&str> {
        let mut attrs = vec![self.group_name.as_str(), &self.description, &self.id];
        attrs.extend(self.sid.as_deref());
        attrs.extend(self.member.iter().map(String::as_str));
        attrs
    }
}

fn active_directory() -> Schema {
    Schema {
        extra: Vec::new(),
        // objectCategory=person leaves out computers, which are objectClass=user too.
        user_filter: "(&(objectCategory=person)(objectClass=user))".into(),
        group_filter: "(objectClass=group)".into(),
        user_name: "sAMAccountName".into(),
        display_name: "displayName".into(),
        email: "mail".into(),
        phone: "telephoneNumber".into(),
        description: "description".into(),
        id: "objectGUID".into(),
        id_format: IdFormat::BinaryGuid,
        sid: Some("objectSid".into()),
        upn: Some("userPrincipalName".into()),
        group_name: "cn".into(),
        member: vec!["member".into()],
        member_format: MemberFormat::Dn,
        disabled: DisabledRule::UserAccountControl,
        active_directory: true,
    }
}

fn openldap() -> Schema {
    Schema {
        extra: Vec::new(),
        user_filter: "(objectClass=inetOrgPerson)".into(),
        group_filter: "(|(objectClass=groupOfNames)(objectClass=groupOfUniqueNames))".into(),
        user_name: "uid".into(),
        display_name: "displayName".into(),
        email: "mail".into(),
        phone: "telephoneNumber".into(),
        description: "description".into(),
        id: "entryUUID".into(),
        id_format: IdFormat::Text,
        sid: None,
        upn: None,
        group_name: "cn".into(),
        member: vec!["member".into(), "uniqueMember".into()],
        member_format: MemberFormat::Dn,
        disabled: DisabledRule::LockedOrExpired,
        active_directory: false,
    }
}

fn rfc2307() -> Schema {
    Schema {
        user_filter: "(objectClass=posixAccount)".into(),
        group_filter: "(objectClass=posixGroup)".into(),
        member: vec!["memberUid".into()],
        member_format: MemberFormat::UserName,
        ..openldap()
    }
}

/// FreeIPA and plain 389-DS. The id is nsUniqueId, which 389-DS (FreeIPA's server) gives every entry,
/// OUs and containers included, and keeps across renames; ipaUniqueID exists only on FreeIPA's own
/// users and groups. nsUniqueId and nsAccountLock are operational, returned only when asked for by
/// name: the read names every attribute it wants.
fn freeipa() -> Schema {
    Schema {
        user_filter: "(objectClass=inetOrgPerson)".into(),
        group_filter: "(objectClass=groupOfNames)".into(),
        id: "nsUniqueId".into(),
        disabled: DisabledRule::NsAccountLock,
        ..openldap()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_directory_reads_guid_sid_and_account_control() {
        let s = Schema::new(
            DirectoryPreset::ActiveDirectory,
            &AttributeOverrides::default(),
        );
        assert_eq!(s.id, "objectGUID");
        assert_eq!(s.id_format, IdFormat::BinaryGuid);
        assert!(s.user_attributes().contains(&"userAccountControl"));
        assert!(s.user_filter.contains("objectCategory=person"));
    }

    #[test]
    fn overrides_replace_field_by_field() {
        let overrides = AttributeOverrides {
            user_name: Some("mailNickname".into()),
            id: Some("nsUniqueId".into()),
            member: Some("memberUid".into()),
            user_object_class: Some("person)(uid=*".into()),
            display_name: Some("  ".into()),
            ..Default::default()
        };
        let s = Schema::new(DirectoryPreset::Custom, &overrides);
        assert_eq!(s.user_name, "mailNickname");
        assert_eq!(s.id, "nsUniqueId");
        assert_eq!(s.id_format, IdFormat::Text);
        assert_eq!(s.member_format, MemberFormat::UserName);
        assert_eq!(
            s.display_name, "displayName",
            "a blank override keeps the preset"
        );
        assert_eq!(
            s.user_filter, r"(objectClass=person\29\28uid=\2a)",
            "an object class cannot inject a filter"
        );
        assert_eq!(s.email, "mail");
    }

    #[test]
    fn freeipa_asks_for_ns_unique_id_and_account_lock_by_name() {
        let s = Schema::new(DirectoryPreset::FreeIpa, &AttributeOverrides::default());
        assert_eq!(s.id, "nsUniqueId");
        assert_eq!(s.id_format, IdFormat::Text);
        assert_eq!(s.disabled, DisabledRule::NsAccountLock);
        let users = s.user_attributes();
        assert!(users.contains(&"nsUniqueId") && users.contains(&"nsAccountLock"));
        assert!(s.group_attributes().contains(&"nsUniqueId"));
        assert_eq!(s.group_filter, "(objectClass=groupOfNames)");
    }

    #[test]
    fn rfc2307_names_members_by_uid() {
        let s = Schema::new(DirectoryPreset::Rfc2307, &AttributeOverrides::default());
        assert_eq!(s.member, ["memberUid"]);
        assert_eq!(s.group_filter, "(objectClass=posixGroup)");
        assert_eq!(s.id, "entryUUID");
    }
}
