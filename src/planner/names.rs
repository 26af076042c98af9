//! Kubernetes names for UserGroups: DNS-1123, at most 63 characters (so a name also fits a label
//! value, as `usersync.io/shard-of` needs): the group's directory name alone, or with a suffix
//! from its directory id where that name is taken. A name is chosen once, at creation: renames in
//! the directory keep the object and its name.

use sha2::{Digest, Sha256};

/// Longest name: the DNS-1123 label limit, so names can be label values too.
pub const MAX_NAME: usize = 63;
const SUFFIX_LEN: usize = 6;
const LONG_SUFFIX_LEN: usize = 12;
/// Digest of a long base name in its shards' names.
const SHARD_DIGEST_LEN: usize = 10;

/// Lower-case ASCII letters, digits and single dashes; Unicode transliterated (`Účtovníctvo` →
/// `uctovnictvo`, `开发` → `kai-fa`); empty when nothing is left.
pub fn slug(text: &str) -> String {
    let ascii = deunicode::deunicode(text).to_ascii_lowercase();
    let mut out = String::with_capacity(ascii.len());
    for c in ascii.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// A short, stable hex digest of `key`.
pub fn digest(key: &str, len: usize) -> String {
    let hash = Sha256::digest(key.as_bytes());
    let hex: String = hash.iter().map(|b| format!("{b:02x}")).collect();
    hex[..len.min(hex.len())].to_owned()
}

/// The group's directory name alone, as a name (`Platform Team` → `platform-team`; `group` when
/// nothing is left of it), cut to [`MAX_NAME`]: what a person guesses. `None` when it would end
/// like a shard's name (`-s<number>`), which only shards may.
pub fn plain_name(group: &str) -> Option<String> {
    let mut name = match slug(group) {
        s if s.is_empty() => "group".to_owned(),
        s => s,
    };
    name.truncate(MAX_NAME);
    let name = name.trim_end_matches('-').to_owned();
    (!looks_like_shard(&name)).then_some(name)
}

/// `<group>-<suffix>` within [`MAX_NAME`], the suffix from `identity` (the directory id): the
/// name of a group whose plain name is taken.
pub fn suffixed_name(group: &str, identity: &str) -> String {
    compose(group, &digest(identity, SUFFIX_LEN))
}

/// The same with a longer suffix, for the rare case that two ids share the short one.
pub fn suffixed_name_long(group: &str, identity: &str) -> String {
    compose(group, &digest(identity, LONG_SUFFIX_LEN))
}

/// Whether a name ends like a shard's (`-s` and digits).
pub fn looks_like_shard(name: &str) -> bool {
    name.rsplit_once("-s")
        .is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether `name` ends in the suffix [`suffixed_name`] or [`suffixed_name_long`] derive from
/// `identity`: true of the suffixed names usersync gives (and gave, after the task's name, before
/// names were plain where free), whatever the group was called then.
pub fn carries_suffix_of(name: &str, identity: &str) -> bool {
    [SUFFIX_LEN, LONG_SUFFIX_LEN].iter().any(|&len| {
        name.strip_suffix(&digest(identity, len))
            .is_some_and(|stem| stem.ends_with('-'))
    })
}

/// Name of shard `index` (1-based) of the UserGroup `base`: `<base>-s<index>`, or, when that would
/// be too long, the base cut short with a digest of the whole base before `-s<index>`, so that the
/// shards of two bases that differ only at the end (in their id suffix) never share a name.
pub fn shard_name(base: &str, index: usize) -> String {
    let tail = format!("-s{index}");
    if base.len() + tail.len() <= MAX_NAME {
        return format!("{base}{tail}");
    }
    let whole = digest(base, SHARD_DIGEST_LEN);
    let keep = MAX_NAME.saturating_sub(tail.len() + whole.len() + 1);
    let stem = base[..keep.min(base.len())].trim_end_matches('-');
    format!("{stem}-{whole}{tail}")
}

fn compose(group: &str, suffix: &str) -> String {
    let mut stem = match slug(group) {
        s if s.is_empty() => "group".to_owned(),
        s => s,
    };
    stem.truncate(MAX_NAME - suffix.len() - 1);
    let stem = stem.trim_end_matches('-');
    format!("{stem}-{suffix}")
}

/// True for a valid DNS-1123 label (what every generated name must be).
pub fn is_dns1123_label(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_dns_friendly_and_transliterated() {
        assert_eq!(slug("Dev Ops"), "dev-ops");
        assert_eq!(slug("dev-ops"), "dev-ops");
        assert_eq!(slug("DEV_OPS"), "dev-ops");
        assert_eq!(slug("Účtovníctvo"), "uctovnictvo");
        assert_eq!(slug("Ventes Été"), "ventes-ete");
        assert_eq!(slug("  --Tricky *)(uid=*-- "), "tricky-uid");
        assert_eq!(slug("***"), "");
        assert!(!slug("开发").is_empty());
    }

    #[test]
    fn colliding_names_stay_apart_through_their_ids() {
        let a = suffixed_name("Dev Ops", "guid-1");
        let b = suffixed_name("dev-ops", "guid-2");
        let c = suffixed_name("DEV_OPS", "guid-3");
        assert!(a.starts_with("dev-ops-"));
        assert!(a != b && b != c && a != c);
        assert_eq!(a, suffixed_name("Dev Ops", "guid-1"), "stable");
    }

    #[test]
    fn every_name_is_a_dns1123_label_even_when_long_or_empty() {
        let long = "A very long group name that goes on and on and on ".repeat(5);
        for group in [long.as_str(), &*"t".repeat(100), "x", "***", "开发"] {
            let name = suffixed_name(group, "id");
            assert!(is_dns1123_label(&name), "{name}");
            let long_name = suffixed_name_long(group, "id");
            assert!(is_dns1123_label(&long_name), "{long_name}");
            for i in [1, 12, 999] {
                assert!(
                    is_dns1123_label(&shard_name(&name, i)),
                    "{}",
                    shard_name(&name, i)
                );
            }
        }
        assert_eq!(suffixed_name("***", "id").split('-').next(), Some("group"));
    }

    #[test]
    fn shards_of_long_bases_that_differ_only_in_their_suffix_keep_apart() {
        let group = "a group whose name is long enough to fill every character of a name";
        let a = suffixed_name(group, "id-1");
        let b = suffixed_name(group, "id-2");
        assert_eq!(a.len(), MAX_NAME);
        assert_ne!(a, b);
        assert_eq!(a[..MAX_NAME - SUFFIX_LEN], b[..MAX_NAME - SUFFIX_LEN]);
        for i in [1, 9, 10, 999] {
            assert_ne!(shard_name(&a, i), shard_name(&b, i));
            assert!(is_dns1123_label(&shard_name(&a, i)));
        }
        assert_eq!(
            shard_name("corp-devs-0a1b2c", 2),
            "corp-devs-0a1b2c-s2",
            "short: as before"
        );
    }

    proptest::proptest! {
        #[test]
        fn generated_names_are_labels_and_shards_never_share_one(
            groups in proptest::collection::vec(".{0,90}", 1..6),
            prefix in "[a-z]{0,70}",
            indexes in proptest::collection::vec(1usize..2000, 1..4),
        ) {
            let mut bases: Vec<String> = groups
                .iter()
                .enumerate()
                .flat_map(|(i, g)| {
                    let id = format!("id-{i}");
                    let plain = plain_name(&format!("{prefix}{g}")).into_iter();
                    plain.chain([suffixed_name(g, &id), suffixed_name(&format!("{prefix}{g}"), &id),
                     suffixed_name_long(&format!("{prefix}{g}"), &id)])
                })
                .collect();
            bases.sort();
            bases.dedup();
            let mut shards = std::collections::BTreeSet::new();
            for base in &bases {
                proptest::prop_assert!(is_dns1123_label(base), "{}", base);
                for &i in &indexes {
                    let shard = shard_name(base, i);
                    proptest::prop_assert!(is_dns1123_label(&shard), "{}", shard);
                    proptest::prop_assert!(!bases.contains(&shard), "{} is a base name", shard);
                    shards.insert((shard, base.clone(), i));
                }
            }
            let names: std::collections::BTreeSet<_> = shards.iter().map(|(s, _, _)| s).collect();
            let mut keys: Vec<_> = shards.iter().map(|(_, b, i)| (b, i)).collect();
            keys.dedup();
            proptest::prop_assert_eq!(names.len(), keys.len(), "two shards share a name");
        }
    }

    proptest::proptest! {
        /// Names of distinct directory objects differ even when their groups are named alike
        /// (once sanitised, or cut short): by the short suffix almost always, and by the long one
        /// the planner falls back to when two short ones meet.
        #[test]
        fn distinct_identities_get_distinct_names(
            group in ".{0,90}",
            other in ".{0,90}",
            ids in proptest::collection::hash_set("[0-9a-f-]{8,36}", 2..8),
        ) {
            let ids: Vec<&String> = ids.iter().collect();
            for (i, a) in ids.iter().enumerate() {
                for b in &ids[i + 1..] {
                    let long = |id: &str, g: &str| suffixed_name_long(g, id);
                    proptest::prop_assert_ne!(long(a, &group), long(b, &other));
                    proptest::prop_assert_ne!(long(a, &group), long(b, &group));
                    proptest::prop_assert!(carries_suffix_of(&long(a, &other), a));
                    proptest::prop_assert!(!carries_suffix_of(&long(a, &group), b));
                }
                let name = suffixed_name(&group, ids[i]);
                proptest::prop_assert!(is_dns1123_label(&name), "{}", name);
                proptest::prop_assert!(carries_suffix_of(&name, ids[i]));
            }
        }
    }

    #[test]
    fn generated_names_carry_their_identitys_suffix() {
        let name = suffixed_name("Sales", "guid-1");
        assert!(carries_suffix_of(&name, "guid-1"));
        assert!(carries_suffix_of(
            &suffixed_name_long("Renamed", "guid-1"),
            "guid-1"
        ));
        assert!(!carries_suffix_of(&name, "guid-2"));
        assert!(!carries_suffix_of("copy-of-sales", "guid-1"));
    }

    #[test]
    fn plain_names_are_the_directory_name_alone_and_never_a_shards() {
        assert_eq!(
            plain_name("Platform Team").as_deref(),
            Some("platform-team")
        );
        assert_eq!(plain_name("***").as_deref(), Some("group"));
        assert_eq!(plain_name(&"x".repeat(80)).map(|n| n.len()), Some(MAX_NAME));
        assert_eq!(
            plain_name("Team S1"),
            None,
            "team-s1 could be a shard of team"
        );
        assert_eq!(plain_name("Team S1b").as_deref(), Some("team-s1b"));
        assert!(looks_like_shard(&shard_name("team", 3)));
        assert!(!looks_like_shard(&suffixed_name("Team S1", "id")));
    }

    #[test]
    fn invalid_labels_are_recognised() {
        for bad in ["", "-a", "a-", "A", "a_b", &"a".repeat(64)] {
            assert!(!is_dns1123_label(bad), "{bad}");
        }
    }
}
