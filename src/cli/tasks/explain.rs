//! `usersync explain [REASON]`: what each reason on a task's conditions and push status means, and
//! what to do about it.

use serde::Serialize;

use super::super::exit::Failure;
use super::super::output::{self, Format};

#[derive(clap::Args)]
pub struct ExplainArgs {
    /// A reason as `get` or the conditions show it (any letter case); none: all of them.
    pub reason: Option<String>,
    /// text, json or yaml (a list of reasons with `reason`, `where`, `meaning` and `action`).
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: Format,
}

#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Reason {
    pub reason: &'static str,
    /// Where it shows: the conditions (Ready, Stalled, Reconciling), or status.push.
    #[serde(rename = "where")]
    pub shows_in: &'static str,
    pub meaning: &'static str,
    pub action: &'static str,
}

const fn r(
    reason: &'static str,
    shows_in: &'static str,
    meaning: &'static str,
    action: &'static str,
) -> Reason {
    Reason {
        reason,
        shows_in,
        meaning,
        action,
    }
}

const CONDITIONS: &str = "conditions";
const PUSH: &str = "status.push";

pub const REASONS: &[Reason] = &[
    r(
        "Synced",
        CONDITIONS,
        "The last run read the directory and wrote the UserGroups.",
        "Nothing.",
    ),
    r(
        "Previewed",
        CONDITIONS,
        "A dry-run task planned; status.preview shows what a run would do.",
        "Set dryRun: false to let runs write.",
    ),
    r(
        "Running",
        CONDITIONS,
        "A run is under way (Reconciling).",
        "Wait: `usersync wait TASK`.",
    ),
    r(
        "Suspended",
        CONDITIONS,
        "spec.suspend is true: no runs.",
        "`usersync resume TASK`.",
    ),
    r(
        "DeletionThresholdExceeded",
        CONDITIONS,
        "The run would remove more than maxDeletions allows and removed nothing (Stalled).",
        "Check the removals with `usersync approve TASK` and approve one run, or raise maxDeletions.",
    ),
    r(
        "InvalidSpec",
        CONDITIONS,
        "The spec is not valid; the message says which field (Stalled until the spec changes).",
        "Fix the field; `kubectl explain usersynchronization.spec` describes each.",
    ),
    r(
        "ReferenceNotFound",
        CONDITIONS,
        "A Secret, ConfigMap or key the task names does not exist.",
        "Create it, or fix the name; the next check (every minute) runs the task.",
    ),
    r(
        "ReferenceNotAllowed",
        CONDITIONS,
        "The task names a Secret or ConfigMap in a namespace the operator may not read (--secret-namespace).",
        "Move the Secret, or ask the operator's admin to allow the namespace.",
    ),
    r(
        "ConnectionNotFound",
        CONDITIONS,
        "The DirectoryConnection or ClusterDirectoryConnection the task names does not exist.",
        "Create it or fix connectionRef.",
    ),
    r(
        "ConnectionNotAllowed",
        CONDITIONS,
        "The ClusterDirectoryConnection does not allow this namespace.",
        "Add the namespace to the connection's allowedNamespaces.",
    ),
    r(
        "ConnectionNotReady",
        CONDITIONS,
        "The connection the task uses failed its last check; the message has its reason.",
        "Look at the connection's status; the task runs again when it is Ready.",
    ),
    r(
        "InvalidConnection",
        CONDITIONS,
        "The connection's spec is not valid.",
        "Fix the connection.",
    ),
    r(
        "InlineServerNotAllowed",
        CONDITIONS,
        "The task names a server of its own, which the operator does not allow (--inline-servers).",
        "Use a DirectoryConnection, or ask the operator's admin.",
    ),
    r(
        "CredentialsNotAllowed",
        CONDITIONS,
        "The credentials Secret does not list the task's server in its usersync.io/allowed-servers annotation.",
        "Add the server's URL to the annotation (the Secret's owner decides).",
    ),
    r(
        "ServerUnreachable",
        CONDITIONS,
        "No server of the list answered (DNS, connection refused, network).",
        "Check the URLs and the network path from the operator's pod; runs retry with back-off.",
    ),
    r(
        "TLSHandshakeFailed",
        CONDITIONS,
        "The TLS handshake with the server failed.",
        "Check tls.mode (LDAPS or StartTLS) and the port.",
    ),
    r(
        "CertificateUntrusted",
        CONDITIONS,
        "The server's certificate is not signed by the CA the task trusts, or names another host.",
        "Give the right CA in tls.caSecretRef or tls.caConfigMapRef.",
    ),
    r(
        "InvalidCredentials",
        CONDITIONS,
        "The server refused the bind name or password (Stalled: not retried, so the account is not locked).",
        "Fix the credentials Secret; a new version of it runs the task.",
    ),
    r(
        "StrongAuthRequired",
        CONDITIONS,
        "The server requires signing or TLS for this bind.",
        "Use LDAPS or StartTLS.",
    ),
    r(
        "BaseDNNotFound",
        CONDITIONS,
        "directory.baseDN (or a chosen group) does not exist on the server.",
        "Fix the DN; `usersync browse` shows the tree.",
    ),
    r(
        "InsufficientAccess",
        CONDITIONS,
        "The bind account may not read what the task asks for.",
        "Grant read access, or choose a part of the tree it may read.",
    ),
    r(
        "Timeout",
        CONDITIONS,
        "The server did not answer within server.timeoutSeconds.",
        "Raise timeoutSeconds, or look at the server's load.",
    ),
    r(
        "InvalidSettings",
        CONDITIONS,
        "The server settings cannot make a connection (a URL, a CA bundle).",
        "Fix the settings the message names.",
    ),
    r(
        "MalformedData",
        CONDITIONS,
        "The server sent data that is not valid LDAP; nothing was written.",
        "Look at the server; the message names the entry.",
    ),
    r(
        "ProtocolError",
        CONDITIONS,
        "The server answered with an LDAP error the operator cannot go on from.",
        "The message has the server's result code and text.",
    ),
    r(
        "LimitExceeded",
        CONDITIONS,
        "A size limit was reached (directory.maxMemberships, or the server's).",
        "Raise the limit the message names, or narrow the task.",
    ),
    r(
        "RunTimeout",
        CONDITIONS,
        "The run took longer than runTimeout and was stopped; nothing already synced is lost.",
        "Raise runTimeout, or narrow the task.",
    ),
    r(
        "WriteConflict",
        CONDITIONS,
        "Another writer created a UserGroup of the same name at the same moment.",
        "Nothing: the next run picks another name.",
    ),
    r(
        "LeaseNotCurrent",
        CONDITIONS,
        "This replica's leader lease ran out before a write; another replica takes over.",
        "Nothing; if it repeats, check the apiserver's latency.",
    ),
    r(
        "KubernetesAPIError",
        CONDITIONS,
        "The apiserver refused or failed a request.",
        "The message has the apiserver's answer; check the operator's RBAC.",
    ),
    r(
        "InternalError",
        CONDITIONS,
        "The run failed inside the operator (caught; other tasks go on).",
        "Report it with the message and the operator's log.",
    ),
    r(
        "Connected",
        PUSH,
        "The push feed is open: changes land within about a second.",
        "Nothing.",
    ),
    r(
        "Connecting",
        PUSH,
        "The push feed is being opened.",
        "Wait.",
    ),
    r(
        "Disconnected",
        PUSH,
        "The push feed broke and reconnects with back-off; runs keep the schedule meanwhile.",
        "The message has the error; nothing is lost.",
    ),
    r(
        "NotOffered",
        PUSH,
        "The server offers no push search; the task is polled on its schedule.",
        "Nothing, or shorten interval.",
    ),
    r(
        "Refused",
        PUSH,
        "The server refused the feed for good (a wrong password, no right to search); it is not tried again.",
        "Fix what the message says; a new version of the task or its Secret tries again.",
    ),
    r(
        "FeedLimit",
        PUSH,
        "The operator holds --max-push-feeds feeds already; the task is polled.",
        "Raise maxPushFeeds in the chart, or turn push off for tasks that need it less.",
    ),
    r(
        "Disabled",
        PUSH,
        "spec.push.mode is Disabled.",
        "Set it to Auto to use push.",
    ),
];

pub fn explain(args: ExplainArgs) -> Result<(), Failure> {
    let chosen: Vec<Reason> = match &args.reason {
        Some(wanted) => {
            let found: Vec<Reason> = REASONS
                .iter()
                .filter(|r| r.reason.eq_ignore_ascii_case(wanted))
                .copied()
                .collect();
            if found.is_empty() {
                return Err(
                    format!("no reason {wanted:?}; `usersync explain` lists them all").into(),
                );
            }
            found
        }
        None => REASONS.to_vec(),
    };
    output::print(args.output, &chosen, |reasons| text(reasons))?;
    Ok(())
}

fn text(reasons: &[Reason]) -> String {
    let mut out = String::new();
    for r in reasons {
        out.push_str(&format!(
            "{} ({})\n  {}\n  What to do: {}\n",
            r.reason, r.shows_in, r.meaning, r.action
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reasons a file gives: the strings after `=> "` (a match arm of a `reason()` function)
    /// and in `not_pushed("`.
    fn given_in(source: &str) -> Vec<&str> {
        let mut found = Vec::new();
        for marker in ["=> \"", "not_pushed(\""] {
            for (at, _) in source.match_indices(marker) {
                let rest = &source[at + marker.len()..];
                let word = &rest[..rest.find('"').unwrap_or(0)];
                if word.chars().next().is_some_and(|c| c.is_ascii_uppercase())
                    && word.chars().all(|c| c.is_ascii_alphanumeric())
                {
                    found.push(word);
                }
            }
        }
        found
    }

    #[test]
    fn every_reason_the_operator_gives_is_explained_once() {
        let mut seen = std::collections::HashSet::new();
        for r in REASONS {
            assert!(seen.insert((r.reason, r.shows_in)), "{} twice", r.reason);
            assert!(!r.meaning.is_empty() && !r.action.is_empty());
        }
        let sources = [
            include_str!("../../directory/error.rs"),
            include_str!("../../run/error.rs"),
            include_str!("../../run/resolve/mod.rs"),
            include_str!("../../controller/push.rs"),
        ];
        let given: Vec<&str> = sources.iter().flat_map(|s| given_in(s)).collect();
        assert!(given.len() > 20, "{given:?}");
        for reason in given.iter().copied().chain([
            crate::run::report::DELETION_THRESHOLD_EXCEEDED,
            crate::run::report::INVALID_SPEC,
        ]) {
            assert!(
                REASONS.iter().any(|r| r.reason == reason),
                "{reason} is not explained"
            );
        }
    }
}
