//! A connection's status from its check (pure): kstatus `Ready` and `Stalled`, and one condition
//! per stage a bind goes through (`Reachable`, `TLSVerified`, `BindAccepted`), each `Unknown` when
//! the check did not get that far.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

use super::{CheckError, Passed};
use crate::api::{DirectoryConnectionStatus, ServerInfo, ServerSpec, TlsMode};
use crate::directory::error::DirectoryError;
use crate::run::conditions::{self, READY, STALLED};

pub const REACHABLE: &str = "Reachable";
pub const TLS_VERIFIED: &str = "TLSVerified";
pub const BIND_ACCEPTED: &str = "BindAccepted";

/// The first check after a failure comes this soon; each failure in a row doubles it.
const FIRST_RETRY: Duration = Duration::from_secs(5);

/// A check's outcome as status, when to check next and what to tell in an Event.
#[derive(Debug, PartialEq)]
pub struct Report {
    pub status: DirectoryConnectionStatus,
    pub next_check: Duration,
    pub event: Option<Notice>,
}

#[derive(Debug, PartialEq, Eq)]
pub struct Notice {
    pub warning: bool,
    pub reason: &'static str,
    pub message: String,
}

/// One stage of a bind: `Some(passed)` or `None` when the check did not get that far.
type Stage = Option<bool>;

/// The status after a check of `server` (the connection's spec at `generation`); `references` is
/// the version of the Secrets and ConfigMap it used; `every` the interval between checks.
pub fn checked(
    previous: &DirectoryConnectionStatus,
    generation: Option<i64>,
    server: &ServerSpec,
    outcome: &Result<Passed, CheckError>,
    references: String,
    now: Timestamp,
    every: Duration,
) -> Report {
    let at = Time(now);
    let mut status = previous.clone();
    status.observed_generation = generation;
    status.last_check_time = Some(at.clone());
    status.references_version = Some(references);
    let stamp = Stamp { generation, at };
    set_stages(&mut status.conditions, server, outcome, &stamp);
    let was = conditions::find(&previous.conditions, READY);
    let was = was.map(|c| (c.status.as_str(), c.reason.as_str()));
    let (next_check, event) = match outcome {
        Ok(passed) => {
            status.server = Some(info(passed));
            status.consecutive_failures = 0;
            let message = ready_message(passed);
            stamp.set(&mut status.conditions, READY, "True", "Checked", &message);
            conditions::remove(&mut status.conditions, STALLED);
            let event = (was.map(|w| w.0) != Some("True")).then_some(Notice {
                warning: false,
                reason: "Connected",
                message,
            });
            (every, event)
        }
        Err(e) => {
            status.consecutive_failures = previous.consecutive_failures.saturating_add(1);
            let message = e.to_string();
            stamp.set(&mut status.conditions, READY, "False", e.reason(), &message);
            stamp.set(
                &mut status.conditions,
                STALLED,
                "True",
                e.reason(),
                &message,
            );
            let event = (was != Some(("False", e.reason()))).then(|| Notice {
                warning: true,
                reason: e.reason(),
                message,
            });
            (retry_after(status.consecutive_failures, every), event)
        }
    };
    status.next_check_time = now.checked_add(next_check).ok().map(Time);
    Report {
        status,
        next_check,
        event,
    }
}

/// The generation and time every condition of one check carries.
struct Stamp {
    generation: Option<i64>,
    at: Time,
}

impl Stamp {
    fn set(
        &self,
        list: &mut Vec<Condition>,
        type_: &str,
        value: &str,
        reason: &str,
        message: &str,
    ) {
        conditions::set_status(
            list,
            type_,
            value,
            reason,
            message,
            self.generation,
            &self.at,
        );
    }

    /// A stage's condition: passed, failed with the check's reason, or not reached.
    fn stage(&self, list: &mut Vec<Condition>, type_: &str, stage: Stage, why: (&str, &str)) {
        match stage {
            Some(passed) => {
                let value = if passed { "True" } else { "False" };
                self.set(list, type_, value, why.0, why.1);
            }
            None => self.set(
                list,
                type_,
                "Unknown",
                "NotChecked",
                "the check did not get this far",
            ),
        }
    }
}

/// `Reachable`, `TLSVerified` and `BindAccepted` as far as the check got. A certificate accepted
/// unverified (`insecureSkipVerify`) or no TLS at all leaves `TLSVerified` False, and the connection
/// ready.
fn set_stages(
    list: &mut Vec<Condition>,
    server: &ServerSpec,
    outcome: &Result<Passed, CheckError>,
    stamp: &Stamp,
) {
    let (reachable, tls, bind) = stages(outcome);
    let failure = outcome.as_ref().err();
    let message = failure.map(ToString::to_string).unwrap_or_default();
    let why = |passed: Stage| match (passed, failure) {
        (Some(false), Some(e)) => (e.reason(), message.as_str()),
        _ => ("Passed", ""),
    };
    stamp.stage(list, REACHABLE, reachable, why(reachable));
    let (plaintext, skipped) = (
        server.tls.mode == TlsMode::Plaintext,
        server.tls.insecure_skip_verify,
    );
    let (verified, reason) = match tls {
        Some(true) if plaintext => (
            Some(false),
            ("NoTLS", "tls.mode None: nothing is encrypted"),
        ),
        Some(true) if skipped => (
            Some(false),
            (
                "VerificationSkipped",
                "insecureSkipVerify accepts any certificate",
            ),
        ),
        _ => (tls, why(tls)),
    };
    stamp.stage(list, TLS_VERIFIED, verified, reason);
    stamp.stage(list, BIND_ACCEPTED, bind, why(bind));
}

/// How far a check got: reached the server, verified its certificate, bound.
fn stages(outcome: &Result<Passed, CheckError>) -> (Stage, Stage, Stage) {
    let e = match outcome {
        Ok(_) => return (Some(true), Some(true), Some(true)),
        Err(CheckError::Directory(e)) => e,
        Err(_) => return (None, None, None),
    };
    match e {
        DirectoryError::ServerUnreachable { .. } | DirectoryError::Timeout { .. } => {
            (Some(false), None, None)
        }
        DirectoryError::TlsHandshakeFailed { .. } | DirectoryError::CertificateUntrusted { .. } => {
            (Some(true), Some(false), None)
        }
        DirectoryError::InvalidCredentials { .. }
        | DirectoryError::StrongAuthRequired { .. }
        | DirectoryError::InsufficientAccess { .. } => (Some(true), Some(true), Some(false)),
        DirectoryError::InvalidSettings(_) => (None, None, None),
        _ => (Some(true), Some(true), Some(true)),
    }
}

fn retry_after(failures: i32, every: Duration) -> Duration {
    let doublings = u32::try_from(failures.saturating_sub(1))
        .unwrap_or(0)
        .min(16);
    FIRST_RETRY.saturating_mul(1 << doublings).min(every)
}

fn info(passed: &Passed) -> ServerInfo {
    let offer = &passed.offer;
    ServerInfo {
        url: passed.url.clone(),
        vendor: offer.vendor.clone(),
        vendor_version: offer.vendor_version.clone(),
        naming_contexts: offer.naming_contexts.clone(),
        default_naming_context: offer.default_naming_context.clone(),
        change_feed: offer.change_feed.to_owned(),
    }
}

fn ready_message(passed: &Passed) -> String {
    let vendor = passed.offer.vendor.as_deref().unwrap_or("an LDAP server");
    let bind = if passed.anonymous {
        "an anonymous bind"
    } else {
        "the bind"
    };
    format!(
        "{} ({vendor}) accepted {bind}; change feed: {}",
        passed.url, passed.offer.change_feed
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::directory::root_dse::Offer;

    const EVERY: Duration = Duration::from_secs(300);

    fn server(extra: serde_json::Value) -> ServerSpec {
        let mut spec = serde_json::json!({"urls": ["ldaps://dc1"]});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        serde_json::from_value(spec).expect("server")
    }

    fn passed() -> Result<Passed, CheckError> {
        Ok(Passed {
            url: "ldaps://dc1".into(),
            offer: Offer {
                vendor: Some("Samba".into()),
                change_feed: "USNChanged",
                ..Offer::default()
            },
            anonymous: false,
        })
    }

    fn rejected() -> Result<Passed, CheckError> {
        Err(CheckError::Directory(DirectoryError::InvalidCredentials {
            server: "ldaps://dc1".into(),
            user: "CORP\\sync".into(),
        }))
    }

    fn unreachable() -> Result<Passed, CheckError> {
        Err(CheckError::Directory(DirectoryError::ServerUnreachable {
            server: "ldaps://dc1".into(),
            detail: "connection refused".into(),
        }))
    }

    fn check(previous: &DirectoryConnectionStatus, outcome: &Result<Passed, CheckError>) -> Report {
        let now = Timestamp::from_second(1_800_000_000).expect("time");
        let server = server(serde_json::json!({}));
        checked(
            previous,
            Some(1),
            &server,
            outcome,
            "secret/bind@1".into(),
            now,
            EVERY,
        )
    }

    fn stages(status: &DirectoryConnectionStatus) -> Vec<(String, String)> {
        ["Ready", "Stalled", REACHABLE, TLS_VERIFIED, BIND_ACCEPTED]
            .iter()
            .map(|t| {
                conditions::find(&status.conditions, t)
                    .map(|c| (c.status.clone(), c.reason.clone()))
                    .unwrap_or_default()
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(a, b)| ((*a).into(), (*b).into()))
            .collect()
    }

    #[test]
    fn each_stage_says_how_far_the_check_got() {
        let ok = check(&DirectoryConnectionStatus::default(), &passed());
        let expected = [
            ("True", "Checked"),
            ("", ""),
            ("True", "Passed"),
            ("True", "Passed"),
            ("True", "Passed"),
        ];
        assert_eq!(stages(&ok.status), pairs(&expected));
        assert_eq!(
            ok.status.server.as_ref().map(|s| s.change_feed.as_str()),
            Some("USNChanged")
        );
        assert_eq!(ok.next_check, EVERY);
        let bind = check(&ok.status, &rejected());
        let expected = [
            ("False", "InvalidCredentials"),
            ("True", "InvalidCredentials"),
            ("True", "Passed"),
            ("True", "Passed"),
            ("False", "InvalidCredentials"),
        ];
        assert_eq!(stages(&bind.status), pairs(&expected));
        let down = check(&ok.status, &unreachable());
        let expected = [
            ("False", "ServerUnreachable"),
            ("True", "ServerUnreachable"),
            ("False", "ServerUnreachable"),
            ("Unknown", "NotChecked"),
            ("Unknown", "NotChecked"),
        ];
        assert_eq!(stages(&down.status), pairs(&expected));
        // What the server offered stays from the last check that reached it.
        assert_eq!(down.status.server, ok.status.server);
    }

    #[test]
    fn events_tell_changes_and_failures_retry_sooner_each_time_up_to_the_interval() {
        let ok = check(&DirectoryConnectionStatus::default(), &passed());
        assert_eq!(ok.event.as_ref().map(|e| e.reason), Some("Connected"));
        assert_eq!(check(&ok.status, &passed()).event, None);
        let mut status = ok.status;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let failed = check(&status, &rejected());
            waits.push(failed.next_check.as_secs());
            assert_eq!(
                failed.event.is_some(),
                waits.len() == 1,
                "only the change is told"
            );
            status = failed.status;
        }
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 300, 300]);
        let other = check(&status, &unreachable());
        assert_eq!(other.event.map(|e| e.reason), Some("ServerUnreachable"));
        let back = check(&other.status, &passed());
        assert_eq!(back.event.map(|e| e.reason), Some("Connected"));
        assert_eq!(back.status.consecutive_failures, 0);
        assert!(conditions::find(&back.status.conditions, "Stalled").is_none());
    }

    #[test]
    fn an_unverified_certificate_is_said_so_without_failing_the_connection() {
        let now = Timestamp::from_second(1_800_000_000).expect("time");
        let skip = server(serde_json::json!({"tls": {"insecureSkipVerify": true}}));
        let previous = DirectoryConnectionStatus::default();
        let report = checked(
            &previous,
            Some(1),
            &skip,
            &passed(),
            String::new(),
            now,
            EVERY,
        );
        let verified = conditions::find(&report.status.conditions, TLS_VERIFIED).expect("TLS");
        assert_eq!(
            (verified.status.as_str(), verified.reason.as_str()),
            ("False", "VerificationSkipped")
        );
        assert!(conditions::is_true(&report.status.conditions, READY));
    }
}
