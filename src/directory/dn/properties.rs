//! Properties of DN parsing over generated names: any value, escaped as RFC 4514 says, parses; the
//! printed form parses back to the same name; letter case of types and ASCII values does not
//! matter; a name lies within each of its ancestors, and "within" is transitive.

use proptest::prelude::*;

use super::{Dn, DnKey, escape_value, key_of};

/// One RDN: one to three attribute-value pairs.
fn rdn() -> impl Strategy<Value = Vec<(String, String)>> {
    let attr = "[a-zA-Z][a-zA-Z0-9-]{0,8}";
    let value = prop_oneof![
        "[a-zA-Z0-9 ]{1,12}",
        r#"[ #,+"\\<>;=a-zA-Z0-9]{1,10}"#,
        "\\PC{1,8}",
    ];
    prop::collection::vec((attr, value), 1..3)
}

/// A DN's text, leaf first.
fn dn_text() -> impl Strategy<Value = String> {
    prop::collection::vec(rdn(), 1..6).prop_map(|rdns| {
        rdns.iter()
            .map(|avas| {
                avas.iter()
                    .map(|(attr, value)| format!("{attr}={}", escape_value(value)))
                    .collect::<Vec<_>>()
                    .join("+")
            })
            .collect::<Vec<_>>()
            .join(",")
    })
}

proptest! {
    #[test]
    fn printed_names_parse_back_to_the_same_name(text in dn_text()) {
        let dn = Dn::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let printed = dn.to_string();
        let again = Dn::parse(&printed).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(again.key(), dn.key());
        prop_assert_eq!(again.to_string(), printed);
        let key = key_of(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(key.as_str(), dn.key());
    }

    #[test]
    fn ascii_letter_case_does_not_matter(text in dn_text()) {
        let dn = Dn::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let shouted = Dn::parse(&text.to_ascii_uppercase())
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(shouted.key(), dn.key());
        prop_assert!(shouted == dn);
    }

    #[test]
    fn a_name_lies_within_its_ancestors_and_within_is_transitive(
        text in dn_text(),
        other in dn_text(),
    ) {
        let dn = Dn::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let other = Dn::parse(&other).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut chain = vec![dn.clone()];
        while let Some(parent) = chain.last().and_then(Dn::parent) {
            chain.push(parent);
        }
        prop_assert_eq!(chain.len(), dn.len());
        for (i, lower) in chain.iter().enumerate() {
            prop_assert!(lower.is_within(lower));
            for upper in &chain[i..] {
                prop_assert!(lower.is_within(upper));
                prop_assert!(upper == lower || !upper.is_within(lower));
            }
        }
        for a in &chain {
            for b in &chain {
                if a.is_within(b) && b.is_within(&other) {
                    prop_assert!(a.is_within(&other));
                }
            }
        }
    }

    /// A key alone answers "within" as the parsed DN does, for every ancestor and for every text
    /// after a comma of the key, escaped or not (a value that ends like an ancestor's key is not
    /// within it).
    #[test]
    fn a_key_lies_within_what_its_dn_lies_within(text in dn_text(), other in dn_text()) {
        let dn = Dn::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let key = DnKey::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(key.key(), dn.key());
        let mut candidates = vec![Dn::parse("").expect("the root DSE")];
        candidates.extend(Dn::parse(&other).ok());
        let mut parent = dn.parent();
        while let Some(p) = parent {
            parent = p.parent();
            candidates.push(p);
        }
        let commas = dn.key().match_indices(',').map(|(i, _)| i + 1);
        candidates.extend(commas.filter_map(|i| Dn::parse(&dn.key()[i..]).ok()));
        for ancestor in &candidates {
            prop_assert_eq!(key.is_within(ancestor), dn.is_within(ancestor), "{}", ancestor.key());
        }
    }
}
