//! Who may use what, decided from objects alone: the servers a Secret lets tasks with an inline
//! server send its credentials to, and the namespaces a cluster connection serves.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::api::{ALLOWED_SERVERS_ANNOTATION, AllowedNamespaces};

/// The URLs of `urls` that the Secret's `usersync.io/allowed-servers` annotation does not list
/// (compared by scheme, host and port, the default port filled in); empty when all are allowed.
pub fn servers_not_allowed(secret: &Secret, urls: &[String]) -> Vec<String> {
    let listed: Vec<Server> = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(ALLOWED_SERVERS_ANNOTATION))
        .map(|value| {
            value
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter_map(Server::parse)
                .collect()
        })
        .unwrap_or_default();
    urls.iter()
        .filter(|url| Server::parse(url).is_none_or(|server| !listed.contains(&server)))
        .cloned()
        .collect()
}

/// A server as a URL names it: what decides where a bind goes.
#[derive(Debug, PartialEq, Eq)]
struct Server {
    tls: bool,
    host: String,
    port: u16,
}

impl Server {
    fn parse(url: &str) -> Option<Server> {
        let url = url.trim();
        let (tls, rest) = match url.split_once("://")? {
            (scheme, rest) if scheme.eq_ignore_ascii_case("ldaps") => (true, rest),
            (scheme, rest) if scheme.eq_ignore_ascii_case("ldap") => (false, rest),
            _ => return None,
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return None;
        }
        let (host, port) = match authority.rsplit_once(':') {
            // An IPv6 literal without a port: the colon belongs to the address.
            Some((host, port)) if !port.contains(']') => (host, Some(port.parse().ok()?)),
            _ => (authority, None),
        };
        let default_port = if tls { 636 } else { 389 };
        Some(Server {
            tls,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(default_port),
        })
    }
}

/// Whether a cluster connection's `allowedNamespaces` takes in `namespace`, whose labels are
/// `labels` (`None`: the namespace was not found, and only a listed name takes it in).
pub fn namespace_allowed(
    allowed: &AllowedNamespaces,
    namespace: &str,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    if allowed.names.iter().any(|n| n == namespace) {
        return true;
    }
    match (&allowed.selector, labels) {
        (Some(selector), Some(labels)) => selector_matches(selector, labels),
        _ => false,
    }
}

/// A label selector as Kubernetes evaluates it: every expression must hold; the empty selector
/// matches everything. An operator it does not know matches nothing.
fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let labels_match = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let expressions_match = selector.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        let value = labels.get(&e.key);
        match e.operator.as_str() {
            "In" => value.is_some_and(|v| values.contains(v)),
            "NotIn" => value.is_none_or(|v| !values.contains(v)),
            "Exists" => value.is_some(),
            "DoesNotExist" => value.is_none(),
            _ => false,
        }
    });
    labels_match && expressions_match
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    fn secret(annotation: Option<&str>) -> Secret {
        let mut secret = Secret::default();
        if let Some(value) = annotation {
            secret.metadata.annotations = Some(BTreeMap::from([(
                ALLOWED_SERVERS_ANNOTATION.to_owned(),
                value.to_owned(),
            )]));
        }
        secret
    }

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_secret_without_the_annotation_allows_no_server() {
        let refused = servers_not_allowed(&secret(None), &urls(&["ldaps://dc1"]));
        assert_eq!(refused, urls(&["ldaps://dc1"]));
    }

    #[test]
    fn listed_servers_match_by_scheme_host_and_port() {
        let s = secret(Some(
            "ldaps://DC1.corp.example, ldap://dc2.corp.example:3389/",
        ));
        let allowed = urls(&[
            "ldaps://dc1.corp.example:636",
            "ldaps://dc1.corp.example/",
            "ldap://dc2.corp.example:3389",
        ]);
        assert!(servers_not_allowed(&s, &allowed).is_empty());
        let refused = urls(&[
            // Another port, another scheme, another host, a look-alike with credentials in it.
            "ldaps://dc1.corp.example:6360",
            "ldap://dc1.corp.example",
            "ldaps://dc1.corp.example.evil",
            "ldaps://dc1.corp.example@evil",
            "ldap://dc2.corp.example",
        ]);
        assert_eq!(servers_not_allowed(&s, &refused), refused);
    }

    #[test]
    fn one_refused_url_among_allowed_ones_is_named() {
        let s = secret(Some("ldaps://dc1 ldaps://dc2"));
        let refused =
            servers_not_allowed(&s, &urls(&["ldaps://dc1", "ldaps://rogue", "ldaps://dc2"]));
        assert_eq!(refused, urls(&["ldaps://rogue"]));
    }

    #[test]
    fn ipv6_literals_keep_their_colons() {
        let s = secret(Some("ldaps://[::1]"));
        assert!(servers_not_allowed(&s, &urls(&["ldaps://[::1]:636"])).is_empty());
        assert!(!servers_not_allowed(&s, &urls(&["ldaps://[::1]:1636"])).is_empty());
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn namespaces_are_allowed_by_name_or_by_selector() {
        let by_name = AllowedNamespaces {
            names: vec!["team-a".into()],
            selector: None,
        };
        assert!(namespace_allowed(&by_name, "team-a", None));
        assert!(!namespace_allowed(&by_name, "team-b", Some(&labels(&[]))));
        let by_label = AllowedNamespaces {
            names: vec![],
            selector: Some(LabelSelector {
                match_labels: Some(labels(&[("directory", "corp")])),
                match_expressions: Some(vec![LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "NotIn".into(),
                    values: Some(vec!["sandbox".into()]),
                }]),
            }),
        };
        assert!(namespace_allowed(
            &by_label,
            "x",
            Some(&labels(&[("directory", "corp")]))
        ));
        let sandbox = labels(&[("directory", "corp"), ("tier", "sandbox")]);
        assert!(!namespace_allowed(&by_label, "x", Some(&sandbox)));
        assert!(!namespace_allowed(&by_label, "x", Some(&labels(&[]))));
        assert!(!namespace_allowed(&by_label, "x", None));
        let every = AllowedNamespaces {
            names: vec![],
            selector: Some(LabelSelector::default()),
        };
        assert!(namespace_allowed(&every, "any", Some(&labels(&[]))));
    }
}
