//! Step 1 of a run: the task's spec, alone, into checked settings. Every spec error is found here,
//! before any I/O, with a message that names the field; the steps after it take [`Checked`] values
//! and never parse the spec again.

use std::time::Duration;

use croner::Cron;

use super::schedule::{Schedule, UnixSeconds, parse_duration};
use crate::api::{BindMethod, ServerSpec, ServerType, TlsMode, UserSynchronizationSpec};
use crate::directory::error::DirectoryError;
use crate::directory::search::check_spec;
use crate::planner::names::{is_dns1123_label, looks_like_shard};
use crate::planner::plan::MaxDeletions;

/// What the spec says, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Checked {
    pub schedule: Schedule,
    /// The longest an incremental task goes without a full read.
    pub full_sync_every: Duration,
    pub max_deletions: MaxDeletions,
    /// The longest one run may take.
    pub run_timeout: Duration,
}

/// The longest `runTimeout`: a run that needs more is stuck, and holds a run slot meanwhile.
pub const MAX_RUN_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// A spec the operator cannot run; `field` is the path in the spec, as a person writes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.{field}: {message}")]
pub struct InvalidSpec {
    pub field: String,
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidSpec {
    InvalidSpec {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks the whole spec. `now` is when the task would first run: a cron expression must fire after it.
pub fn validate(spec: &UserSynchronizationSpec, now: UnixSeconds) -> Result<Checked, InvalidSpec> {
    names(spec)?;
    let schedule = schedule(spec, now)?;
    let full_sync_every = parse_duration(&spec.incremental.full_sync_interval)
        .map_err(|e| invalid("incremental.fullSyncInterval", e.to_string()))?;
    let run_timeout = parse_duration(&spec.run_timeout)
        .map_err(|e| invalid("runTimeout", e.to_string()))
        .and_then(|d| {
            (d <= MAX_RUN_TIMEOUT)
                .then_some(d)
                .ok_or_else(|| invalid("runTimeout", "must be at most 24h"))
        })?;
    let floor = u64::try_from(spec.max_deletions_floor)
        .map_err(|_| invalid("maxDeletionsFloor", "must not be negative"))?;
    let max_deletions = MaxDeletions::parse(&spec.max_deletions)
        .ok_or_else(|| {
            invalid(
                "maxDeletions",
                "must be a non-negative integer or a percentage from 0% to 100%",
            )
        })?
        .at_least(floor);
    match (&spec.server, &spec.connection_ref) {
        (Some(inline), None) => {
            server(inline, "server.")?;
            preset_fits(inline.server_type, spec)?;
        }
        (None, Some(_)) => {}
        _ => {
            return Err(invalid(
                "server",
                "set exactly one of server and connectionRef",
            ));
        }
    }
    directory(spec)?;
    Ok(Checked {
        schedule,
        full_sync_every,
        max_deletions,
        run_timeout,
    })
}

const SHARD_LIKE: &str = "ends like a shard's name (-s and a number), which only shards may";

/// `targetGroup` and `groupNames` name UserGroups exactly: each a DNS-1123 label, none twice.
fn names(spec: &UserSynchronizationSpec) -> Result<(), InvalidSpec> {
    if !is_dns1123_label(&spec.target_group) {
        return Err(invalid(
            "targetGroup",
            format!(
                "{:?} is not a UserGroup name (lower-case letters, digits and '-', at most 63): \
                 it names the root UserGroup exactly; to keep a root synced before, set it to \
                 that UserGroup's name",
                spec.target_group
            ),
        ));
    }
    if looks_like_shard(&spec.target_group) {
        return Err(invalid("targetGroup", SHARD_LIKE));
    }
    let mut groups = std::collections::HashSet::new();
    let mut names = std::collections::HashSet::from([spec.target_group.as_str()]);
    for (i, chosen) in spec.group_names.iter().enumerate() {
        let field = format!("groupNames[{i}]");
        if !is_dns1123_label(&chosen.name) {
            return Err(invalid(
                format!("{field}.name"),
                format!("{:?} is not a UserGroup name", chosen.name),
            ));
        }
        if looks_like_shard(&chosen.name) {
            return Err(invalid(format!("{field}.name"), SHARD_LIKE));
        }
        if !names.insert(&chosen.name) {
            return Err(invalid(
                format!("{field}.name"),
                format!("{:?} is chosen twice (or is the targetGroup)", chosen.name),
            ));
        }
        if !groups.insert(chosen.group.to_lowercase()) {
            return Err(invalid(
                format!("{field}.group"),
                format!("{:?} is named twice", chosen.group),
            ));
        }
    }
    Ok(())
}

fn schedule(spec: &UserSynchronizationSpec, now: UnixSeconds) -> Result<Schedule, InvalidSpec> {
    match (&spec.interval, &spec.schedule, &spec.time_zone) {
        (Some(_), Some(_), _) => Err(invalid(
            "interval",
            "schedule and interval are mutually exclusive; set one of them",
        )),
        (_, None, Some(_)) => Err(invalid("timeZone", "applies to schedule only")),
        (Some(interval), None, None) => parse_duration(interval)
            .map(Schedule::Every)
            .map_err(|e| invalid("interval", e.to_string())),
        (None, None, None) => Ok(Schedule::Triggers),
        (None, Some(pattern), zone) => {
            let cron: Cron = pattern.parse().map_err(|e: croner::errors::CronError| {
                invalid(
                    "schedule",
                    format!("{pattern:?} is not a cron expression: {e}"),
                )
            })?;
            let zone = zone
                .as_deref()
                .map(|name| {
                    name.parse::<chrono_tz::Tz>().map_err(|_| {
                        invalid(
                            "timeZone",
                            format!("{name:?} is not an IANA time zone name"),
                        )
                    })
                })
                .transpose()?;
            let schedule = Schedule::Cron {
                cron: Box::new(cron),
                zone,
            };
            match schedule.next_after(now) {
                Some(_) => Ok(schedule),
                None => Err(invalid(
                    "schedule",
                    format!("{pattern:?} never fires (no such date)"),
                )),
            }
        }
    }
}

/// Checks a server section; `at` is where it sits in its spec (`server.` in a task, nothing in a
/// connection).
pub fn server(server: &ServerSpec, at: &str) -> Result<(), InvalidSpec> {
    let tls = &server.tls;
    if server.urls.is_empty() {
        return Err(invalid(
            format!("{at}urls"),
            "must list at least one server",
        ));
    }
    let (scheme, mode) = match tls.mode {
        TlsMode::Ldaps => ("ldaps://", "LDAPS"),
        TlsMode::StartTls => ("ldap://", "StartTLS"),
        TlsMode::Plaintext => ("ldap://", "None"),
    };
    for (i, url) in server.urls.iter().enumerate() {
        let host = url.strip_prefix(scheme).ok_or_else(|| {
            invalid(
                format!("{at}urls[{i}]"),
                format!("{url:?} must start with {scheme} with tls.mode {mode}"),
            )
        })?;
        if host.is_empty() || host.starts_with('/') || host.contains(char::is_whitespace) {
            return Err(invalid(
                format!("{at}urls[{i}]"),
                format!("{url:?} names no host"),
            ));
        }
    }
    if tls.mode == TlsMode::Plaintext && !tls.allow_insecure {
        return Err(invalid(
            format!("{at}tls.allowInsecure"),
            "tls.mode None sends the password in clear text; it needs allowInsecure: true",
        ));
    }
    if tls.ca_secret_ref.is_some() && tls.ca_config_map_ref.is_some() {
        return Err(invalid(
            format!("{at}tls"),
            "caSecretRef and caConfigMapRef are mutually exclusive",
        ));
    }
    if server.auth == BindMethod::Ntlm && server.credentials_secret_ref.is_none() {
        return Err(invalid(
            format!("{at}auth"),
            "NTLM needs credentialsSecretRef",
        ));
    }
    if !(1..=3600).contains(&server.timeout_seconds) {
        return Err(invalid(
            format!("{at}timeoutSeconds"),
            "must be between 1 and 3600",
        ));
    }
    Ok(())
}

/// Whether the task's preset (if it names one) can read a server of `server_type`.
pub fn preset_fits(
    server_type: ServerType,
    spec: &UserSynchronizationSpec,
) -> Result<(), InvalidSpec> {
    match spec.directory.preset {
        Some(preset) if !server_type.fits(preset) => Err(invalid(
            "directory.preset",
            format!(
                "{preset:?} does not fit a server of type {server_type:?}; leave preset out to follow the server's type"
            ),
        )),
        _ => Ok(()),
    }
}

fn directory(spec: &UserSynchronizationSpec) -> Result<(), InvalidSpec> {
    if !(1..=10_000).contains(&spec.directory.page_size) {
        return Err(invalid("directory.pageSize", "must be between 1 and 10000"));
    }
    // The directory layer's own check, the one a read makes before its first request; its messages
    // start with the field (`directory.groups[2]: …`).
    check_spec(&spec.directory).map_err(|e| {
        let text = match e {
            DirectoryError::InvalidSettings(text) => text,
            other => other.to_string(),
        };
        match text.split_once(": ") {
            Some((field, message)) if field.starts_with("directory.") => invalid(field, message),
            _ => invalid("directory", text),
        }
    })
}

#[cfg(test)]
mod tests;
