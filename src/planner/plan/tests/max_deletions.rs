//! `maxDeletions` as the planner reads it agrees with the CRD's CEL rule: what the apiserver lets
//! through, the planner understands, and what it refuses, the planner refuses too.

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;

use super::super::MaxDeletions;

/// The pattern inside the rule's `self.matches('…')`, read from the generated CRD.
fn cel_pattern() -> regex::Regex {
    let crds = crate::api::crds_yaml().expect("CRDs render");
    // A single-quoted YAML scalar writes each quote twice.
    let rule = crds
        .lines()
        .find(|l| l.contains("rule:") && l.contains("self.matches("))
        .expect("the maxDeletions rule")
        .replace("''", "'");
    let start = rule.find("self.matches('").expect("matches") + "self.matches('".len();
    let end = start + rule[start..].find("')").expect("end of pattern");
    regex::Regex::new(&rule[start..end]).expect("the CEL pattern is a regex")
}

proptest! {
    #[test]
    fn strings_agree_with_the_cel_rule(text in "[0-9%a-z -]{0,6}|[0-9]{1,30}%?") {
        let accepted = cel_pattern().is_match(&text);
        let parsed = MaxDeletions::parse(&IntOrString::String(text.clone()));
        prop_assert_eq!(accepted, parsed.is_some(), "{:?}", text);
    }

    #[test]
    fn integers_agree_with_the_cel_rule(n in any::<i32>()) {
        let parsed = MaxDeletions::parse(&IntOrString::Int(n));
        prop_assert_eq!(n >= 0, parsed.is_some());
    }
}
