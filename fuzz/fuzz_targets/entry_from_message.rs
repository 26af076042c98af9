//! Any bytes a server sends as a search result entry: decoded as BER, taken apart into an entry,
//! then turned into a user, a group and a container under two presets. Nothing panics; whatever is
//! not an entry is refused.
#![no_main]

use std::time::SystemTime;

use ldap3::ResultEntry;
use libfuzzer_sys::fuzz_target;
use usersync::api::{AttributeOverrides, DirectoryPreset};
use usersync::directory::entry::Entry;
use usersync::directory::parse::{parse_container, parse_group, parse_user};
use usersync::directory::preset::Schema;

fuzz_target!(|data: &[u8]| {
    let Ok((_, tag)) = ldap3::asn1::parse_tag(data) else {
        return;
    };
    let Some(entry) = Entry::from_message(ResultEntry::new(tag)) else {
        return;
    };
    let (values, bytes) = entry.widest();
    assert!(values <= data.len() && bytes <= data.len());
    for preset in [DirectoryPreset::ActiveDirectory, DirectoryPreset::OpenLdap] {
        let schema = Schema::new(preset, &AttributeOverrides::default());
        let _ = parse_user(entry.clone(), &schema, SystemTime::UNIX_EPOCH);
        // Where a ranged member list goes on is not checked here: `usize::MAX` stands for an end
        // that cannot be continued from, which the reader refuses.
        if let Ok((group, _next)) = parse_group(entry.clone(), &schema) {
            assert!(group.members.len() <= data.len());
        }
        let _ = parse_container(entry.clone(), &schema);
    }
});
