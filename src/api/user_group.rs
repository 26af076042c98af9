use std::collections::BTreeMap;

use std::sync::Arc;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A group synchronized from the directory (or the task's target group, which has no `source`).
#[derive(
    CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema,
)]
#[kube(
    group = "usersync.io",
    version = "v1alpha1",
    kind = "UserGroup",
    namespaced,
    shortname = "ug",
    status = "UserGroupStatus",
    printcolumn = r#"{"name":"Display Name","type":"string","jsonPath":".spec.displayName"}"#,
    printcolumn = r#"{"name":"Parent","type":"string","jsonPath":".spec.parent"}"#,
    printcolumn = r#"{"name":"Shard Of","type":"string","jsonPath":".metadata.labels.usersync\\.io/shard-of"}"#,
    printcolumn = r#"{"name":"Users","type":"integer","jsonPath":".status.userCount"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct UserGroupSpec {
    /// The directory's name of the group, unchanged (Unicode kept).
    pub display_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// metadata.name of the parent UserGroup; absent on a task's target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 253))]
    pub parent: Option<String>,
    /// Where the group comes from in the directory; absent on a task's target group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<DirectorySource>,
    /// Members. A group too large for one object continues in shard objects labelled
    /// `usersync.io/shard-of: <name>`.
    // Shared records: the groups a user belongs to, the directory snapshot and the entries kept
    // between runs hold one copy of each user.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<Arc<GroupUser>>,
}

impl UserGroupSpec {
    /// The value of the spec-digest annotation: `sha256:<hex>` of the spec's JSON without its
    /// members followed by each member's [`GroupUser::digest`], in order.
    pub fn digest(&self) -> String {
        self.digest_with(|user| user.digest())
    }

    /// [`Self::digest`], with members' digests from `member` (which may have them at hand).
    pub fn digest_with(&self, mut member: impl FnMut(&Arc<GroupUser>) -> [u8; 32]) -> String {
        use sha2::Digest;
        let head = UserGroupSpec {
            display_name: self.display_name.clone(),
            description: self.description.clone(),
            parent: self.parent.clone(),
            source: self.source.clone(),
            users: Vec::new(),
        };
        let mut hasher = HashWriter(sha2::Sha256::new(), 0);
        // Cannot fail: the hasher takes every byte, and every key of a spec is a string.
        let _ = serde_json::to_writer(&mut hasher, &head);
        for user in &self.users {
            hasher.0.update(member(user));
        }
        let sum = hasher.0.finalize();
        let mut out = String::with_capacity(7 + 2 * sum.len());
        out.push_str("sha256:");
        for byte in sum {
            out.push(char::from(HEX[usize::from(byte >> 4)]));
            out.push(char::from(HEX[usize::from(byte & 0xf)]));
        }
        out
    }
}

impl GroupUser {
    /// SHA-256 of the member's JSON: its part of a spec digest.
    pub fn digest(&self) -> [u8; 32] {
        self.digest_and_len().0
    }

    /// [`Self::digest`] and the length of the JSON it hashes (the member's size in a list), from
    /// one serialization.
    pub fn digest_and_len(&self) -> ([u8; 32], usize) {
        use sha2::Digest;
        let mut hasher = HashWriter(sha2::Sha256::new(), 0);
        let _ = serde_json::to_writer(&mut hasher, self);
        (hasher.0.finalize().into(), hasher.1)
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Feeds serialized bytes into a hash instead of a buffer, counting them.
struct HashWriter(sha2::Sha256, usize);

impl std::io::Write for HashWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        sha2::Digest::update(&mut self.0, bytes);
        self.1 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The identity of a directory object. `id` is the stable identity (objectGUID, entryUUID,
/// nsUniqueId, ipaUniqueID); `dn` changes when the object is renamed or moved.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySource {
    pub dn: String,
    pub id: String,
    /// objectSid as `S-1-5-21-…` (Active Directory only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// A member of a UserGroup, as the directory describes the user.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupUser {
    /// Login name: sAMAccountName on Active Directory, uid on LDAP.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub dn: String,
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upn: Option<String>,
    #[serde(default)]
    pub disabled: bool,
    /// The task's `directory.userAttributes`: field name to the directory's value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserGroupStatus {
    /// Members of this group, shards included.
    #[serde(default)]
    pub user_count: i64,
}
