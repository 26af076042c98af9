//! Large member lists continue in shard objects, so no UserGroup comes near the apiserver's object
//! size limit (etcd's 1.5 MiB request limit). The first chunk stays in the group itself.
//!
//! Chunk boundaries depend on the members themselves, not on their positions: a member whose id
//! hashes under a threshold ends its chunk. Adding or removing one member therefore changes the one
//! chunk that holds it (rarely its neighbour), instead of shifting every chunk after it, and a run
//! rewrites one shard object rather than all of them.

use std::sync::Arc;

use crate::api::{GroupUser, UserGroupSpec};

/// Serialized bytes of users per object, well below the limit with room for metadata.
pub const DEFAULT_SHARD_BYTES: usize = 700_000;

/// Splits `users` into chunks of at most `max_bytes` of JSON each (a user larger than that gets a
/// chunk of its own), about a third of that on average. A list that fits in `max_bytes` is one
/// chunk: only a list that must be split is. Always at least one chunk, possibly empty.
pub fn split(users: &[Arc<GroupUser>], max_bytes: usize) -> Vec<&[Arc<GroupUser>]> {
    split_sized(users, max_bytes, json_bytes)
}

/// Bytes a member takes in a member list: its JSON and a comma.
pub fn json_bytes(user: &Arc<GroupUser>) -> usize {
    serde_json::to_vec(user).map_or(256, |v| v.len() + 1)
}

/// [`split`], with each member's [`json_bytes`] from `bytes_of` (which may have them at hand).
pub fn split_sized(
    users: &[Arc<GroupUser>],
    max_bytes: usize,
    bytes_of: impl Fn(&Arc<GroupUser>) -> usize,
) -> Vec<&[Arc<GroupUser>]> {
    let min_bytes = max_bytes / 16;
    let spacing = max_bytes / 4;
    let mut chunks = Vec::new();
    let (mut start, mut size, mut total) = (0, 0, 0);
    for (i, user) in users.iter().enumerate() {
        let bytes = bytes_of(user);
        total += bytes;
        if i > start && size + bytes > max_bytes {
            chunks.push(&users[start..i]);
            start = i;
            size = 0;
        }
        size += bytes;
        // Each member ends a chunk with probability bytes / spacing: chunks average about
        // min_bytes + spacing, and reach max_bytes rarely (about e^-3.75). The minimum is small next
        // to the spacing, so a change shifts at most the boundary right after it.
        if size >= min_bytes && ends_chunk(&user.id, bytes, spacing) && i + 1 < users.len() {
            chunks.push(&users[start..=i]);
            start = i + 1;
            size = 0;
        }
    }
    chunks.push(&users[start..]);
    if total <= max_bytes {
        return vec![users];
    }
    chunks
}

/// The objects a group named `name` is written as: first the group itself with the first chunk of
/// members, then shard N (named `<name>-sN`, its parent the group) with chunk N.
pub fn parts(name: &str, spec: &UserGroupSpec, max_bytes: usize) -> Vec<UserGroupSpec> {
    parts_sized(name, spec, max_bytes, json_bytes)
}

/// [`parts`], with each member's [`json_bytes`] from `bytes_of`.
pub fn parts_sized(
    name: &str,
    spec: &UserGroupSpec,
    max_bytes: usize,
    bytes_of: impl Fn(&Arc<GroupUser>) -> usize,
) -> Vec<UserGroupSpec> {
    let chunks = split_sized(&spec.users, max_bytes, bytes_of);
    let mut out = Vec::with_capacity(chunks.len());
    out.push(UserGroupSpec {
        users: chunks[0].to_vec(),
        ..spec.clone()
    });
    out.extend(chunks[1..].iter().map(|chunk| UserGroupSpec {
        display_name: spec.display_name.clone(),
        parent: Some(name.to_owned()),
        users: chunk.to_vec(),
        ..Default::default()
    }));
    out
}

fn ends_chunk(id: &str, bytes: usize, spacing: usize) -> bool {
    let threshold = (u64::MAX as f64 * bytes as f64 / spacing.max(1) as f64).min(u64::MAX as f64);
    fnv1a(id.as_bytes()) < threshold as u64
}

/// FNV-1a with murmur3's finalizer: stable across processes and releases (unlike the standard
/// library's hasher), and with well-mixed high bits even for ids that differ in a character or two.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    hash ^ (hash >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(n: usize) -> Vec<Arc<GroupUser>> {
        (0..n)
            .map(|i| {
                GroupUser {
                    name: format!("user{i:05}"),
                    dn: format!("CN=user{i:05},DC=x"),
                    id: format!("{i:036}"),
                    ..Default::default()
                }
                .into()
            })
            .collect()
    }

    fn ids(chunks: &[&[Arc<GroupUser>]]) -> Vec<Vec<String>> {
        chunks
            .iter()
            .map(|c| c.iter().map(|u| u.id.clone()).collect())
            .collect()
    }

    #[test]
    fn chunks_respect_the_budget_and_keep_order() {
        let all = users(50_000);
        let chunks = split(&all, DEFAULT_SHARD_BYTES);
        assert!(chunks.len() > 1);
        for chunk in &chunks {
            assert!(serde_json::to_vec(chunk).unwrap().len() <= DEFAULT_SHARD_BYTES + 2);
        }
        let joined: Vec<&Arc<GroupUser>> = chunks.iter().flat_map(|c| c.iter()).collect();
        assert_eq!(joined.len(), all.len());
        assert!(joined.iter().zip(&all).all(|(a, b)| *a == b));
    }

    #[test]
    fn one_member_more_or_less_changes_one_chunk() {
        let all = users(50_000);
        let before = ids(&split(&all, 100_000));
        assert!(before.len() > 10, "{} chunks", before.len());
        for (what, changed) in [
            ("removed", [&all[..20_000], &all[20_001..]].concat()),
            ("added", {
                let mut more = all.clone();
                more.insert(30_000, users(50_001).pop().unwrap());
                more
            }),
        ] {
            let after = ids(&split(&changed, 100_000));
            let new = after.iter().filter(|c| !before.contains(c)).count();
            assert!(
                new <= 2,
                "one member {what}: {new} of {} chunks differ",
                after.len()
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn joining_the_parts_gives_the_group_back(
            ids in proptest::collection::vec("[0-9a-f-]{1,40}", 0..400),
            names in proptest::collection::vec("\\PC{0,60}", 1..20),
            max_bytes in 200usize..4000,
        ) {
            let users: Vec<Arc<GroupUser>> = ids
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    GroupUser {
                        name: names[i % names.len()].clone(),
                        dn: format!("CN={i},DC=x"),
                        id: id.clone(),
                        ..Default::default()
                    }
                    .into()
                })
                .collect();
            let spec = UserGroupSpec {
                display_name: "Big".into(),
                users: users.clone(),
                ..Default::default()
            };
            let parts = parts("corp-big-0a1b2c", &spec, max_bytes);
            let joined: Vec<Arc<GroupUser>> =
                parts.iter().flat_map(|p| p.users.iter().cloned()).collect();
            proptest::prop_assert_eq!(joined, users);
            proptest::prop_assert_eq!(&parts[0].display_name, "Big");
            for (i, part) in parts.iter().enumerate() {
                let bytes: usize = part.users.iter().map(json_bytes).sum();
                proptest::prop_assert!(
                    bytes <= max_bytes || part.users.len() == 1,
                    "part {} holds {} bytes", i, bytes
                );
                if i > 0 {
                    proptest::prop_assert_eq!(part.parent.as_deref(), Some("corp-big-0a1b2c"));
                    proptest::prop_assert!(!part.users.is_empty());
                }
            }
        }
    }

    #[test]
    fn small_and_empty_lists_stay_in_one_object() {
        assert_eq!(split(&users(10), DEFAULT_SHARD_BYTES).len(), 1);
        // A list that fits in one object is one object, however far past the chunks' minimum
        // (a sixteenth of the budget) it goes; one byte more and it is split.
        let list = users(2_000);
        let bytes: usize = list.iter().map(json_bytes).sum();
        assert!(bytes > DEFAULT_SHARD_BYTES / 16 * 4, "{bytes}");
        assert_eq!(split(&list, bytes).len(), 1);
        assert!(split(&list, bytes - 1).len() > 1);
        assert_eq!(
            split(&[], DEFAULT_SHARD_BYTES),
            vec![&[] as &[Arc<GroupUser>]]
        );
    }
}
