//! Any text as a DN: parsed or refused, never a panic; what parses prints back to a DN that parses
//! to the same key, and its parent is within it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use usersync::directory::dn::Dn;

fuzz_target!(|text: &str| {
    let Ok(dn) = Dn::parse(text) else {
        return;
    };
    let printed = dn.to_string();
    let again = Dn::parse(&printed).expect("a printed DN parses");
    assert_eq!(again.key(), dn.key(), "{text:?} printed as {printed:?}");
    assert!(dn.is_within(&dn));
    if let Some(parent) = dn.parent() {
        assert!(dn.is_within(&parent));
        assert_eq!(parent.len() + 1, dn.len());
    }
});
