//! A connection's status from its check (pure): kstatus `Ready` and `Stalled`, and one condition
//! per stage a bind goes through (`Reachable`, `TLSVerified`, `BindAccepted`), each `Unknown` when
//! the check did not get that far.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
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
    let (reachable, tls, bind) = stages(outcome);
    let mut set = |type_: &str, stage: Stage, reason: &str, message: &str| {
        let value = match stage {
            Some(true) => "True",
            Some(false) => "False",
            None => "Unknown",
        };
        let (reason, message) = match stage {
            None => ("NotChecked", "the check did not get this far"),
            Some(_) => (reason, message),
        };
        let conditions = &mut status.conditions;
        conditions::set_status(conditions, type_, value, reason, message, generation, &at);
    };
    let failure = outcome.as_ref().err();
    let failed_reason = failure.map_or("", CheckError::reason);
    let failed_message = failure.map(ToString::to_string).unwrap_or_default();
    let fail = |passed: bool| {
        if passed {
            ("Passed", "")
        } else {
            (failed_reason, failed_message.as_str())
        }
    };
    let (r, m) = fail(reachable != Some(false));
    set(REACHABLE, reachable, r, m);
    let (r, m) = match (tls, server.tls.mode, server.tls.insecure_skip_verify) {
        (Some(true), TlsMode::Plaintext, _) => ("NoTLS", "tls.mode None: nothing is encrypted"),
        (Some(true), _, true) => (
            "VerificationSkipped",
            "insecureSkipVerify accepts any certificate",
        ),
        (Some(passed), _, _) => fail(passed),
        (None, _, _) => ("", ""),
    };
    let verified =
        tls.map(|t| t && server.tls.mode != TlsMode::Plaintext && !server.tls.insecure_skip_verify);
    set(TLS_VERIFIED, verified, r, m);
    let (r, m) = fail(bind != Some(false));
    set(BIND_ACCEPTED, bind, r, m);
    let was_ready = conditions::find(&previous.conditions, READY).map(|c| c.status.clone());
    let was_reason = conditions::find(&previous.conditions, READY).map(|c| c.reason.clone());
    let conditions = &mut status.conditions;
    let (next_check, event) = match outcome {
        Ok(passed) => {
            status.server = Some(info(passed));
            status.consecutive_failures = 0;
            let message = ready_message(passed);
            conditions::set(
                conditions, READY, true, "Checked", &message, generation, &at,
            );
            conditions::remove(conditions, STALLED);
            let event = (was_ready.as_deref() != Some("True")).then_some(Notice {
                warning: false,
                reason: "Connected",
                message,
            });
            (every, event)
        }
        Err(e) => {
            status.consecutive_failures = previous.consecutive_failures.saturating_add(1);
            let message = e.to_string();
            conditions::set(
                conditions,
                READY,
                false,
                e.reason(),
                &message,
                generation,
                &at,
            );
            conditions::set(
                conditions,
                STALLED,
                true,
                e.reason(),
                &message,
                generation,
                &at,
            );
            let changed =
                was_ready.as_deref() != Some("False") || was_reason.as_deref() != Some(e.reason());
            let event = changed.then(|| Notice {
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
