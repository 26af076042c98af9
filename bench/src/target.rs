//! A directory under measurement: where it is, how to bind, and what the fixture put in it.

use std::io::Write;
use std::process::{Command, Stdio};

use usersync::api::DirectoryPreset;
use usersync::directory::preset::Schema;
use usersync_testbed::fixture::{Fixture, names};
use usersync_testbed::ldif::{ActiveDirectory, Layout, OpenLdap};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    OpenLdap,
    Samba,
}

pub struct Target {
    pub kind: Kind,
    pub url: String,
    pub ca_file: String,
    pub bind: String,
    pub password: String,
    pub fixture: Fixture,
    /// Ask Active Directory for members in ranges of this size.
    pub member_range: Option<usize>,
}

impl Target {
    pub fn label(&self) -> String {
        let server = match self.kind {
            Kind::OpenLdap => "OpenLDAP",
            Kind::Samba => "Samba AD",
        };
        format!(
            "{server}, {} users / {} groups",
            self.fixture.users.len(),
            self.fixture.groups.len()
        )
    }

    fn layout(&self) -> &'static dyn Layout {
        match self.kind {
            Kind::OpenLdap => &OpenLdap,
            Kind::Samba => &ActiveDirectory,
        }
    }

    pub fn preset(&self) -> DirectoryPreset {
        match self.kind {
            Kind::OpenLdap => DirectoryPreset::OpenLdap,
            Kind::Samba => DirectoryPreset::ActiveDirectory,
        }
    }

    pub fn preset_name(&self) -> &'static str {
        match self.kind {
            Kind::OpenLdap => "OpenLDAP",
            Kind::Samba => "ActiveDirectory",
        }
    }

    /// Everything the fixture generator made lives under OU=Corp.
    pub fn base_dn(&self) -> String {
        match self.kind {
            Kind::OpenLdap => format!("ou=Corp,{}", self.layout().base_dn()),
            Kind::Samba => format!("OU=Corp,{}", self.layout().base_dn()),
        }
    }

    pub fn user_dn(&self, index: usize) -> String {
        self.layout()
            .user_dn(&self.fixture, &self.fixture.users[index])
    }

    pub fn big_group_dn(&self) -> String {
        let group = self
            .fixture
            .groups
            .iter()
            .find(|g| g.name == names::ALL_STAFF)
            .expect("the fixture has its big group");
        self.layout().group_dn(&self.fixture, group)
    }

    /// The search a bare dump makes to fetch what usersync reads: the preset's users, groups and
    /// containers with the same attributes.
    pub fn dump_query(&self) -> (String, Vec<String>) {
        let schema = Schema::new(self.preset(), &Default::default());
        let filter = format!(
            "(|{}{}(objectClass=organizationalUnit)(objectClass=container))",
            schema.user_filter, schema.group_filter
        );
        let mut attrs: Vec<String> = schema
            .user_attributes()
            .into_iter()
            .chain(schema.group_attributes())
            .map(str::to_owned)
            .collect();
        attrs.sort();
        attrs.dedup();
        (filter, attrs)
    }

    /// The task this target is synchronized with.
    pub fn task(&self, name: &str) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": "usersync.io/v1alpha1",
            "kind": "UserSynchronization",
            "metadata": {"name": name},
            "spec": {
                "targetGroup": "all-users",
                "maxDeletions": "100%",
                // Runs when the benchmark asks; push is measured on its own (`push.rs`).
                "push": {"mode": "Disabled"},
                "server": {
                    "type": match self.kind {
                        Kind::OpenLdap => "LDAP",
                        Kind::Samba => "ActiveDirectory",
                    },
                    "urls": [self.url],
                    "credentialsSecretRef": {"name": "bind"},
                    "tls": {"caSecretRef": {"name": "ca"}},
                },
                "directory": {
                    "preset": self.preset_name(),
                    "baseDN": self.base_dn(),
                    "pageSize": 1000,
                    // The default bound (500,000 entries) is below the scale run's directory.
                    "maxEntries": (2 * self.fixture.users.len()).max(500_000),
                },
            },
        })
    }

    /// Applies LDIF changes with ldapmodify, as an administrator would.
    pub fn modify(&self, ldif: &str) -> Result<(), String> {
        let mut child = Command::new("ldapmodify")
            .args([
                "-x",
                "-H",
                &self.url,
                "-D",
                &self.bind,
                "-w",
                &self.password,
            ])
            .env("LDAPTLS_CACERT", &self.ca_file)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .map_err(|e| format!("ldapmodify: {e}"))?;
        child
            .stdin
            .take()
            .ok_or("ldapmodify stdin")?
            .write_all(ldif.as_bytes())
            .map_err(|e| format!("ldapmodify: {e}"))?;
        let status = child.wait().map_err(|e| format!("ldapmodify: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("ldapmodify failed ({status})"))
        }
    }

    /// LDIF renaming the display names of users `from..to` (with `tag` in the new names).
    pub fn rename_users_ldif(&self, from: usize, to: usize, tag: &str) -> String {
        let mut ldif = String::new();
        for i in from..to {
            ldif.push_str(&format!(
                "dn: {}\nchangetype: modify\nreplace: displayName\ndisplayName: User {i} {tag}\n\n",
                self.user_dn(i)
            ));
        }
        ldif
    }
}
