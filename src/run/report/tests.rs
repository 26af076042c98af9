use super::*;
use crate::run::conditions::is_true;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).expect("time")
}

const POLL: Duration = Duration::from_secs(60);
const EVERY_15M: Schedule = Schedule::Every(Duration::from_secs(900));

fn task(schedule: &Schedule) -> Task<'_> {
    Task {
        generation: Some(3),
        schedule: Some(schedule),
        run_now: Some("now-1".into()),
        references: Some("secret/bind@7".into()),
        poll: POLL,
        ..Task::default()
    }
}

fn summary() -> RunSummary {
    RunSummary {
        users: 40,
        groups: 5,
        created: 2,
        updated: 1,
        removed: 0,
        skipped: 1,
        duration_seconds: 0.5,
        unresolved_members: 0,
        directory_read: "Full".into(),
        entries_read: 45,
        unreadable_entries: 0,
        duplicates_removed: 0,
    }
}

fn synced() -> Synced {
    Synced {
        server: "ldaps://dc1".into(),
        summary: summary(),
        brake: None,
        preview: Some(Preview::default()),
        incremental: Some(IncrementalStatus {
            method: "USNChanged".into(),
            ..IncrementalStatus::default()
        }),
        unreadable_sample: Vec::new(),
    }
}

fn failure(reason: &'static str, transient: bool, reachable: Option<bool>) -> Outcome {
    Outcome::Failed(Failure {
        reason,
        message: format!("{reason} happened"),
        transient,
        directory_reachable: reachable,
    })
}

fn condition<'a>(status: &'a UserSynchronizationStatus, type_: &str) -> &'a Condition {
    status
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap_or_else(|| panic!("{type_} is set"))
}

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

#[test]
fn a_successful_run() {
    let report = finished(
        &UserSynchronizationStatus {
            consecutive_failures: 3,
            ..Default::default()
        },
        &task(&EVERY_15M),
        &Outcome::Synced(Box::new(synced())),
        at(10_000),
    );
    let s = &report.status;
    assert!(is_true(&s.conditions, READY));
    assert!(!is_true(&s.conditions, STALLED));
    assert!(!is_true(&s.conditions, RECONCILING));
    assert!(is_true(&s.conditions, DIRECTORY_REACHABLE));
    assert_eq!(condition(s, READY).reason, "Synced");
    assert_eq!(
        condition(s, READY).message,
        "40 users in 5 groups from ldaps://dc1: 2 created, 1 updated, 0 removed, 1 skipped"
    );
    assert_eq!(condition(s, READY).observed_generation, Some(3));
    assert_eq!(s.observed_generation, Some(3));
    assert_eq!(s.consecutive_failures, 0);
    assert_eq!(s.last_sync_time, Some(Time(at(10_000))));
    assert_eq!(s.last_successful_sync_time, Some(Time(at(10_000))));
    assert_eq!(s.next_sync_time, Some(Time(at(10_900))));
    assert_eq!(s.last_handled_run_now.as_deref(), Some("now-1"));
    assert_eq!(s.references_version.as_deref(), Some("secret/bind@7"));
    assert_eq!(s.last_run, Some(summary()));
    assert_eq!(s.preview, None, "only a dry run shows its plan");
    assert!(s.incremental.is_some());
    assert_eq!(
        report.requeue,
        Some(POLL),
        "the poll comes before the interval"
    );
    let event = report.event.expect("an Event");
    assert_eq!((event.type_, event.reason), (EventType::Normal, "Synced"));
    assert_eq!(event.message, condition(s, READY).message);
}

#[test]
fn a_run_with_unreadable_entries_is_ready_and_warns_with_a_sample() {
    let mut run = synced();
    run.summary.unreadable_entries = 2;
    run.unreadable_sample = vec![
        "uid=x,dc=example: no usable uid; fix the entry or narrow the filter".into(),
        "an entry without a readable DN: not a valid LDAP entry".into(),
    ];
    let report = finished(
        &Default::default(),
        &task(&EVERY_15M),
        &Outcome::Synced(Box::new(run)),
        at(0),
    );
    let s = &report.status;
    assert!(is_true(&s.conditions, READY));
    assert!(!is_true(&s.conditions, STALLED));
    let message = &condition(s, READY).message;
    assert!(
        message.ends_with(
            "; 2 directory entries cannot be used, and what stands for them is kept as it was: \
             uid=x,dc=example: no usable uid; fix the entry or narrow the filter; \
             an entry without a readable DN: not a valid LDAP entry"
        ),
        "{message}"
    );
    let event = report.event.expect("an Event");
    assert_eq!(
        (event.type_, event.reason),
        (EventType::Warning, "UnreadableEntries")
    );
    assert_eq!(s.last_run.as_ref().map(|r| r.unreadable_entries), Some(2));
}

#[test]
fn a_dry_run_shows_its_plan() {
    let mut t = task(&EVERY_15M);
    t.dry_run = true;
    let report = finished(
        &Default::default(),
        &t,
        &Outcome::Synced(Box::new(synced())),
        at(0),
    );
    assert_eq!(condition(&report.status, READY).reason, "Previewed");
    assert_eq!(report.status.preview, Some(Preview::default()));
    assert_eq!(report.event.expect("event").reason, "Previewed");
}

#[test]
fn unresolved_members_are_mentioned() {
    let mut run = synced();
    run.summary.unresolved_members = 3;
    let report = finished(
        &Default::default(),
        &task(&EVERY_15M),
        &Outcome::Synced(Box::new(run)),
        at(0),
    );
    assert!(
        condition(&report.status, READY)
            .message
            .ends_with("; 3 member values name nothing in scope")
    );
}

#[test]
fn the_brake_stalls_until_approved() {
    let mut run = synced();
    run.brake = Some(Brake {
        would_remove: 30,
        limit: 4,
        ..Brake::default()
    });
    let mut t = task(&EVERY_15M);
    t.approval = Some("yes".into());
    let report = finished(
        &Default::default(),
        &t,
        &Outcome::Synced(Box::new(run.clone())),
        at(0),
    );
    let s = &report.status;
    assert!(is_true(&s.conditions, STALLED));
    assert!(!is_true(&s.conditions, READY));
    assert_eq!(condition(s, STALLED).reason, "DeletionThresholdExceeded");
    assert!(
        condition(s, READY)
            .message
            .contains("would remove 30 objects")
    );
    assert!(condition(s, READY).message.contains("(4)"));
    assert!(
        condition(s, READY)
            .message
            .contains(APPROVE_DELETIONS_ANNOTATION)
    );
    assert_eq!(
        s.last_handled_approval, None,
        "a braked run does not use the approval"
    );
    assert_eq!(s.next_sync_time, Some(Time(at(900))), "timed runs go on");
    let event = report.event.expect("event");
    assert_eq!(event.type_, EventType::Warning);
    assert_eq!(event.reason, "DeletionThresholdExceeded");

    run.brake = None;
    let report = finished(&report.status, &t, &Outcome::Synced(Box::new(run)), at(100));
    assert_eq!(report.status.last_handled_approval.as_deref(), Some("yes"));
    assert!(is_true(&report.status.conditions, READY));
    assert!(!is_true(&report.status.conditions, STALLED));
}

#[test]
fn each_class_of_failure() {
    // (reason, transient, directory reachable, requeue, Stalled, DirectoryReachable)
    let cases = [
        (
            "ServerUnreachable",
            true,
            Some(false),
            Some(backoff(1)),
            false,
            Some(false),
        ),
        (
            "Timeout",
            true,
            Some(false),
            Some(backoff(1)),
            false,
            Some(false),
        ),
        (
            "InvalidCredentials",
            false,
            Some(true),
            Some(POLL),
            true,
            Some(true),
        ),
        (
            "BaseDNNotFound",
            false,
            Some(true),
            Some(POLL),
            true,
            Some(true),
        ),
        ("ReferenceNotFound", false, None, Some(POLL), true, None),
        (
            "KubernetesAPIError",
            true,
            None,
            Some(backoff(1)),
            false,
            None,
        ),
        ("InvalidSpec", false, None, None, true, None),
        ("InternalError", false, None, Some(POLL), true, None),
    ];
    let previous = UserSynchronizationStatus {
        next_sync_time: Some(Time(at(5))),
        incremental: Some(IncrementalStatus::default()),
        ..Default::default()
    };
    for (reason, transient, reachable, requeue, stalled, reachable_condition) in cases {
        let report = finished(
            &previous,
            &task(&EVERY_15M),
            &failure(reason, transient, reachable),
            at(1000),
        );
        let s = &report.status;
        assert_eq!(report.requeue, requeue, "{reason}");
        assert_eq!(is_true(&s.conditions, STALLED), stalled, "{reason}");
        assert!(!is_true(&s.conditions, READY), "{reason}");
        assert_eq!(condition(s, READY).reason, reason);
        assert_eq!(condition(s, READY).message, format!("{reason} happened"));
        assert_eq!(condition(s, STALLED).reason, reason);
        let reachable_now = s
            .conditions
            .iter()
            .find(|c| c.type_ == DIRECTORY_REACHABLE)
            .map(|c| c.status == "True");
        assert_eq!(reachable_now, reachable_condition, "{reason}");
        assert_eq!(s.incremental, None, "{reason}: a failed run keeps no read");
        assert_eq!(s.last_successful_sync_time, None);
        let expected_next = transient.then(|| Time(at(1005)));
        assert_eq!(s.next_sync_time, expected_next, "{reason}");
        let event = report.event.expect("event");
        assert_eq!((event.type_, event.reason), (EventType::Warning, reason));
    }
}

#[test]
fn back_off_grows_and_is_capped() {
    let delays: Vec<u64> = (1..=10).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(delays, [5, 10, 20, 40, 80, 160, 320, 600, 600, 600]);
    assert_eq!(backoff(i32::MAX), MAX_BACKOFF);
    assert_eq!(backoff(0), FIRST_BACKOFF);

    let mut status = UserSynchronizationStatus::default();
    let t = task(&EVERY_15M);
    let outage = failure("ServerUnreachable", true, Some(false));
    let mut seen = Vec::new();
    for i in 0..9 {
        let report = finished(&status, &t, &outage, at(i * 1000));
        seen.push(report.requeue.expect("retries").as_secs());
        status = report.status;
    }
    assert_eq!(seen, [5, 10, 20, 40, 80, 160, 320, 600, 600]);
    assert_eq!(status.consecutive_failures, 9);
    let report = finished(
        &status,
        &t,
        &Outcome::Synced(Box::new(synced())),
        at(20_000),
    );
    assert_eq!(report.status.consecutive_failures, 0, "a success resets it");
}

#[test]
fn transition_times_move_only_when_a_condition_flips() {
    let t = task(&EVERY_15M);
    let first = finished(
        &Default::default(),
        &t,
        &Outcome::Synced(Box::new(synced())),
        at(100),
    );
    let second = finished(
        &first.status,
        &t,
        &Outcome::Synced(Box::new(synced())),
        at(200),
    );
    assert_eq!(
        condition(&second.status, READY).last_transition_time,
        Time(at(100))
    );
    let third = finished(
        &second.status,
        &t,
        &failure("Timeout", true, Some(false)),
        at(300),
    );
    assert_eq!(
        condition(&third.status, READY).last_transition_time,
        Time(at(300))
    );
}

#[test]
fn insecure_skip_verify_is_flagged_while_set() {
    let mut t = task(&EVERY_15M);
    t.insecure_skip_verify = true;
    let flagged = finished(
        &Default::default(),
        &t,
        &Outcome::Synced(Box::new(synced())),
        at(0),
    );
    assert!(is_true(
        &flagged.status.conditions,
        TLS_VERIFICATION_DISABLED
    ));
    t.insecure_skip_verify = false;
    let cleared = finished(
        &flagged.status,
        &t,
        &Outcome::Synced(Box::new(synced())),
        at(1),
    );
    assert!(
        !cleared
            .status
            .conditions
            .iter()
            .any(|c| c.type_ == TLS_VERIFICATION_DISABLED)
    );
}

#[test]
fn a_suspended_task_is_neither_ready_nor_in_progress() {
    let ran = finished(
        &Default::default(),
        &task(&EVERY_15M),
        &Outcome::Synced(Box::new(synced())),
        at(0),
    );
    let report = suspended(&ran.status, Some(4), at(50));
    let s = &report.status;
    assert_eq!(s.observed_generation, Some(4));
    assert_eq!(s.next_sync_time, None);
    assert!(
        !s.conditions.iter().any(|c| c.type_ == READY),
        "readiness does not apply: neither ready nor failing"
    );
    assert!(!is_true(&s.conditions, STALLED));
    assert!(!is_true(&s.conditions, RECONCILING));
    assert_eq!(condition(s, STALLED).reason, "Suspended");
    assert_eq!(condition(s, RECONCILING).reason, "Suspended");
    assert_eq!(report.event, None);
    assert_eq!(report.requeue, None, "resumed by a change of the task");
    assert_eq!(
        s.last_run, ran.status.last_run,
        "the last run stays on record"
    );
}

#[test]
fn a_schedule_sets_the_next_run_and_the_requeue() {
    // 2026-01-01T00:10:00Z; the cron fires at 06:00 UTC.
    let from = 1_767_226_200;
    let daily = Schedule::Cron {
        cron: Box::new("0 6 * * *".parse().expect("cron")),
        zone: None,
    };
    let mut t = task(&daily);
    t.poll = Duration::from_secs(24 * 3600);
    let report = finished(
        &Default::default(),
        &t,
        &Outcome::Synced(Box::new(synced())),
        at(from),
    );
    let six = from - 600 + 6 * 3600;
    assert_eq!(report.status.next_sync_time, Some(Time(at(six))));
    assert_eq!(
        report.requeue,
        Some(Duration::from_secs((six - from) as u64))
    );

    let waiting = waiting_for_schedule(&Default::default(), &t, at(from), at(from + 60));
    assert_eq!(waiting.status.next_sync_time, Some(Time(at(six))));
    assert_eq!(waiting.status.observed_generation, Some(3));
    assert_eq!(waiting.status.last_sync_time, None);
    assert_eq!(
        waiting.requeue,
        Some(Duration::from_secs((six - from - 60) as u64))
    );
    assert_eq!(waiting.event, None);

    let triggers_only = Task {
        schedule: Some(&Schedule::Triggers),
        ..task(&daily)
    };
    let report = finished(
        &Default::default(),
        &triggers_only,
        &Outcome::Synced(Box::new(synced())),
        at(0),
    );
    assert_eq!(report.status.next_sync_time, None);
    assert_eq!(report.requeue, Some(POLL));
}

#[test]
fn an_invalid_spec_is_reported_once_per_generation() {
    let invalid = Outcome::Failed(Failure {
        reason: INVALID_SPEC,
        message: "spec.interval: too long".into(),
        transient: false,
        directory_reachable: None,
    });
    let t = Task {
        schedule: None,
        ..task(&EVERY_15M)
    };
    let report = finished(&Default::default(), &t, &invalid, at(0));
    assert!(reports_invalid_spec(
        &report.status,
        Some(3),
        "spec.interval: too long"
    ));
    assert!(!reports_invalid_spec(
        &report.status,
        Some(4),
        "spec.interval: too long"
    ));
    assert!(!reports_invalid_spec(
        &report.status,
        Some(3),
        "spec.schedule: bad"
    ));
}

#[test]
fn requeue_is_never_zero_nor_past_the_poll() {
    assert_eq!(requeue_at(None, at(0), POLL), POLL);
    assert_eq!(
        requeue_at(Some(&Time(at(10))), at(0), POLL),
        Duration::from_secs(10)
    );
    assert_eq!(
        requeue_at(Some(&Time(at(0))), at(50), POLL),
        Duration::from_secs(1)
    );
    assert_eq!(requeue_at(Some(&Time(at(1000))), at(0), POLL), POLL);
}

#[test]
fn a_started_run_is_in_progress_for_its_generation() {
    let t = task(&EVERY_15M);
    let ran = finished(
        &Default::default(),
        &t,
        &Outcome::Synced(Box::new(synced())),
        at(100),
    );
    let started = started(&ran.status, Some(4), "SpecChanged", at(200));
    assert_eq!(started.observed_generation, Some(4));
    assert!(is_true(&started.conditions, RECONCILING));
    let reconciling = condition(&started, RECONCILING);
    assert_eq!(reconciling.reason, "Running");
    assert_eq!(reconciling.message, "a run started (SpecChanged)");
    assert_eq!(reconciling.last_transition_time, Time(at(200)));
    assert_eq!(reconciling.observed_generation, Some(4));
    assert!(
        is_true(&started.conditions, READY),
        "the last result stands meanwhile"
    );
    let braked = Synced {
        brake: Some(Brake {
            would_remove: 9,
            limit: 1,
            ..Brake::default()
        }),
        ..synced()
    };
    let stalled = finished(
        &Default::default(),
        &t,
        &Outcome::Synced(Box::new(braked)),
        at(150),
    );
    assert!(is_true(&stalled.status.conditions, STALLED));
    let retried = super::started(&stalled.status, Some(4), "Schedule", at(160));
    assert!(
        !is_true(&retried.conditions, STALLED),
        "never stalled and reconciling at once"
    );
    assert_eq!(started.last_run, ran.status.last_run);

    let done = finished(&started, &t, &Outcome::Synced(Box::new(synced())), at(300));
    assert!(!is_true(&done.status.conditions, RECONCILING));
    assert_eq!(condition(&done.status, RECONCILING).reason, "RunFinished");
    assert_eq!(
        condition(&done.status, RECONCILING).last_transition_time,
        Time(at(300))
    );
}

#[test]
fn a_task_whose_last_run_ran_out_of_time_is_told_apart() {
    let failed = |reason: &'static str| {
        finished(
            &Default::default(),
            &task(&EVERY_15M),
            &failure(reason, true, None),
            at(0),
        )
        .status
    };
    assert!(ran_out_of_time(&failed("RunTimeout")));
    assert!(ran_out_of_time(&failed("Timeout")));
    assert!(!ran_out_of_time(&failed("ProtocolError")));
    let synced = finished(
        &failed("RunTimeout"),
        &task(&EVERY_15M),
        &Outcome::Synced(Box::new(synced())),
        at(10),
    );
    assert!(
        !ran_out_of_time(&synced.status),
        "a run that finishes clears it"
    );
}
