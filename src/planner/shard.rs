//! Large member lists continue in shard objects, so no UserGroup comes near the apiserver's object
//! size limit (etcd's 1.5 MiB request limit). The first chunk stays in the group itself.

use crate::api::GroupUser;

/// Serialized bytes of users per object, well below the limit with room for metadata.
pub const DEFAULT_SHARD_BYTES: usize = 700_000;

/// Splits `users` into chunks of at most `max_bytes` of JSON each (a user larger than that gets a
/// chunk of its own). Always at least one chunk, possibly empty.
pub fn split(users: &[GroupUser], max_bytes: usize) -> Vec<&[GroupUser]> {
    let mut chunks = Vec::new();
    let (mut start, mut size) = (0, 0);
    for (i, user) in users.iter().enumerate() {
        let bytes = serde_json::to_vec(user).map_or(256, |v| v.len() + 1);
        if i > start && size + bytes > max_bytes {
            chunks.push(&users[start..i]);
            start = i;
            size = 0;
        }
        size += bytes;
    }
    chunks.push(&users[start..]);
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(n: usize) -> Vec<GroupUser> {
        (0..n)
            .map(|i| GroupUser {
                name: format!("user{i:05}"),
                dn: format!("CN=user{i:05},DC=x"),
                id: format!("{i:036}"),
                ..Default::default()
            })
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
        let joined: Vec<&GroupUser> = chunks.iter().flat_map(|c| c.iter()).collect();
        assert_eq!(joined.len(), all.len());
        assert!(joined.iter().zip(&all).all(|(a, b)| *a == b));
    }

    #[test]
    fn small_and_empty_lists_stay_in_one_object() {
        assert_eq!(split(&users(10), DEFAULT_SHARD_BYTES).len(), 1);
        assert_eq!(split(&[], DEFAULT_SHARD_BYTES), vec![&[] as &[GroupUser]]);
    }
}
