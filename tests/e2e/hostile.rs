//! Hostile directories against the real binary: for each way a server can misbehave, the hostile
//! task's run ends within its deadline with a reason of its own, the process stays up with its peak
//! memory bounded, a task on Samba in the same operator keeps syncing, and the hostile task writes
//! no UserGroup.

use std::time::{Duration, Instant};

use kube::api::{Api, PostParams};
use usersync::api::{UserGroup, UserSynchronization};

use crate::support::audit::writes_except;
use crate::support::hostile::{Mode, huge_error_text, start};
use crate::support::kube::{
    Scenario, allow_servers, create_task, events, names_of_task, run_now, user_groups,
};
use crate::support::operator::{spawn_operator, start_operator, take_turn};
use crate::support::wait::{assert_synced, condition, eventually, wait_for_run};

/// Peak resident memory the operator may reach over all modes (the chart's default limit is
/// 512 MiB; the bounded read keeps it far below).
const PEAK_RSS_LIMIT_KIB: u64 = 300 * 1024;

/// How much an endless stream of small entries may raise the operator's peak: the read stops at
/// `maxEntries` (2,000 entries, a few hundred KiB), and what the server sends meanwhile must not
/// pile up unchecked.
const ENDLESS_GROWTH_LIMIT_KIB: u64 = 16 * 1024;

/// The task `name` reading the hostile server at `url`: a short run deadline and a small entry
/// limit, so that each mode ends quickly.
fn hostile_task(name: &str, url: &str) -> UserSynchronization {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "usersync.io/v1alpha1", "kind": "UserSynchronization",
        "metadata": {"name": name},
        "spec": {
            "targetGroup": "hostile",
            "runTimeout": "8s",
            "server": {"type": "LDAP", "urls": [url], "timeoutSeconds": 3,
                       "credentialsSecretRef": {"name": "bind"},
                       "tls": {"mode": "None", "allowInsecure": true}},
            "directory": {"preset": "OpenLDAP", "baseDN": "dc=example", "maxEntries": 2000},
            "incremental": {"mode": "Disabled"},
        },
    }))
    .expect("task")
}

/// The operator's peak resident set (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("the process runs");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmHWM")
}

/// A server's 100 KB error text: the condition message is cut to 32 KiB and the Event note to
/// 1 KiB, each ending in an ellipsis, and the log keeps the whole text.
async fn bounded_texts(
    client: &kube::Client,
    ns: &str,
    task: &UserSynchronization,
    log_path: &std::path::Path,
) {
    let message = &task
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"))
        .expect("Ready")
        .message;
    assert!(
        message.len() <= 32 * 1024 && message.len() > 16 * 1024,
        "{}",
        message.len()
    );
    assert!(!message.contains("END-OF-SERVER-TEXT"));
    let note = events(client, ns)
        .await
        .into_iter()
        .filter(|e| {
            e.regarding.as_ref().and_then(|r| r.name.as_deref()) == task.metadata.name.as_deref()
        })
        .find_map(|e| e.note)
        .expect("an Event for the task");
    assert!(note.len() <= 1024 && note.len() > 512, "{}", note.len());
    let logs = std::fs::read_to_string(log_path).unwrap_or_default();
    assert!(
        logs.contains(&huge_error_text()),
        "the log keeps the whole text"
    );
}

#[tokio::test]
async fn hostile_servers_cost_their_task_alone() {
    let Scenario {
        client, ns, base, ..
    } = Scenario::new("e2e-hostile").await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let (mut operator, log_path) = spawn_operator(&ns.name, &[], "info");
    assert_synced(&wait_for_run(&tasks, None).await);
    let pid = operator.id().expect("running");

    let modes = [
        (
            Mode::Drip {
                interval: Duration::from_millis(500),
            },
            "RunTimeout",
        ),
        (Mode::Endless, "LimitExceeded"),
        (Mode::RepeatedCookie, "RunTimeout"),
        (Mode::CloseAfter { count: 5 }, "ProtocolError"),
        (Mode::HugeDeclaredLength, "Timeout"),
        (Mode::HugeValue, "LimitExceeded"),
        (Mode::MalformedControl, "MalformedData"),
        (Mode::HugeErrorText, "ProtocolError"),
        (Mode::StuckRange, "MalformedData"),
        (Mode::EndlessRange, "MalformedData"),
    ];
    let hostile: Api<UserSynchronization> = Api::namespaced(client.clone(), &ns.name);
    for (i, (mode, reason)) in modes.into_iter().enumerate() {
        let peak_before = peak_rss_kib(pid);
        let server = start(mode).await;
        let name = format!("hostile-{i}");
        let created = Instant::now();
        let mut task = hostile_task(&name, &server.url);
        allow_servers(&client, &ns.name, "bind", std::slice::from_ref(&server.url)).await;
        if let Mode::StuckRange | Mode::EndlessRange = mode {
            // An Active Directory server: its preset and its type go together.
            task.spec.directory.preset = None;
            if let Some(server) = task.spec.server.as_mut() {
                server.server_type = usersync::api::ServerType::ActiveDirectory;
            }
        }
        if let Mode::HugeValue = mode {
            // 50 MB in one message: on a busy machine more than the other modes' 3 s per message.
            if let Some(server) = task.spec.server.as_mut() {
                server.timeout_seconds = 15;
            }
            task.spec.run_timeout = "20s".into();
        }
        hostile
            .create(&PostParams::default(), &task)
            .await
            .expect("hostile task");
        let task = loop {
            let task = hostile.get(&name).await.expect("task");
            if condition(&task, "Ready")
                .is_some_and(|(status, r)| status == "False" && r != "Running")
            {
                break task;
            }
            assert!(
                created.elapsed() < Duration::from_secs(30),
                "{mode:?}: no verdict within 30 s: {:?}",
                task.status
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        let verdict = condition(&task, "Ready").expect("Ready");
        assert_eq!(verdict.1, reason, "{mode:?}: {:?}", task.status);
        if let Mode::HugeErrorText = mode {
            bounded_texts(&client, &ns.name, &task, &log_path).await;
        }
        if let Mode::StuckRange | Mode::EndlessRange = mode {
            let message = &task.status.as_ref().expect("status").conditions;
            let ready = message.iter().find(|c| c.type_ == "Ready").expect("Ready");
            assert!(
                ready.message.contains("member range")
                    && ready.message.contains("CN=Ranged,DC=example"),
                "{mode:?}: {}",
                ready.message
            );
        }
        assert!(
            created.elapsed() < Duration::from_secs(20),
            "{mode:?}: took {:?}",
            created.elapsed()
        );
        assert!(
            server.searches.load(std::sync::atomic::Ordering::Relaxed) > 0,
            "{mode:?}"
        );

        assert!(
            operator.try_wait().expect("state").is_none(),
            "{mode:?}: the operator exited"
        );
        if let Mode::Endless = mode {
            // Entries come faster than the read checks them: what waits to be checked stays small.
            let grown = peak_rss_kib(pid).saturating_sub(peak_before);
            assert!(
                grown < ENDLESS_GROWTH_LIMIT_KIB,
                "{mode:?}: the peak grew by {grown} KiB"
            );
        }
        let token = format!("after-{i}");
        run_now(&tasks, &token).await;
        assert_synced(&wait_for_run(&tasks, Some(&token)).await);
        assert_eq!(
            writes_except(&ns.name, &names_of_task(&client, &ns.name, "corp").await),
            0,
            "{mode:?}: the hostile task wrote UserGroups"
        );
    }
    let peak = peak_rss_kib(pid);
    let logs = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        peak < PEAK_RSS_LIMIT_KIB,
        "peak RSS {peak} KiB: {}",
        logs.len()
    );
    operator.kill().await.expect("stop the operator");
    let _ = std::fs::remove_file(&log_path);
}

/// Bad entries between good ones (a DN that is not UTF-8, a user without its uid) are left out,
/// counted and named on status and in a Warning Event; the run syncs what it can.
#[tokio::test]
async fn bad_entries_are_left_out_and_named() {
    let Scenario { client, ns, .. } = Scenario::new("e2e-bad-entries").await;
    let server = start(Mode::BadEntries).await;
    allow_servers(&client, &ns.name, "bind", std::slice::from_ref(&server.url)).await;
    let tasks: Api<UserSynchronization> = Api::namespaced(client.clone(), &ns.name);
    let mut task = hostile_task("corp", &server.url);
    task.spec.directory.max_entries = 100;
    tasks
        .create(&PostParams::default(), &task)
        .await
        .expect("task");
    let operator = start_operator(&client, &ns.name);
    let task = wait_for_run(&tasks, None).await;
    assert_synced(&task);
    let last_run = task.status.and_then(|s| s.last_run).expect("last run");
    assert!(last_run.unreadable_entries >= 2, "{last_run:?}");
    assert_eq!(last_run.users, 1, "u0 was synced: {last_run:?}");
    let groups: Api<UserGroup> = Api::namespaced(client.clone(), &ns.name);
    let listed: Vec<String> = user_groups(&groups)
        .await
        .iter()
        .flat_map(|g| g.spec.users.iter().map(|u| u.name.clone()))
        .collect();
    assert!(listed.contains(&"u0".to_owned()), "{listed:?}");
    let note = events(&client, &ns.name)
        .await
        .into_iter()
        .find(|e| e.reason.as_deref() == Some("UnreadableEntries"))
        .and_then(|e| e.note)
        .expect("a Warning Event");
    assert!(
        note.contains("cn=nouid,dc=example: no usable uid")
            && note.contains("an entry without a readable DN"),
        "{note}"
    );
    operator.abort();
}

/// Four tasks on a server that drips entries run out of time again and again; with two run slots
/// they hold at most one between them, so a healthy task's runs never wait behind them.
#[tokio::test]
async fn tasks_that_run_out_of_time_leave_a_slot_to_the_others() {
    let _turn = take_turn().await;
    let Scenario {
        client, ns, base, ..
    } = Scenario::new("e2e-slots").await;
    let tasks = create_task(&client, &ns.name, &base).await;
    let server = start(Mode::Drip {
        interval: Duration::from_millis(500),
    })
    .await;
    allow_servers(&client, &ns.name, "bind", std::slice::from_ref(&server.url)).await;
    let hostile: Api<UserSynchronization> = Api::namespaced(client.clone(), &ns.name);
    let operator = start_operator(&client, &ns.name);
    assert_synced(&wait_for_run(&tasks, None).await);
    let slow = ["slow-0", "slow-1", "slow-2", "slow-3"];
    for name in slow {
        let mut task = hostile_task(name, &server.url);
        task.spec.run_timeout = "6s".into();
        hostile
            .create(&PostParams::default(), &task)
            .await
            .expect("slow task");
    }
    // Each has run out of time once (the first round is not told apart: nothing is known yet).
    for name in slow {
        eventually(Duration::from_secs(60), "a slow run timed out", || async {
            let task = hostile.get(name).await.expect("task");
            condition(&task, "Ready").is_some_and(|(_, reason)| reason == "RunTimeout")
        })
        .await;
    }
    for round in 0..3 {
        let token = format!("healthy-{round}");
        let asked = Instant::now();
        run_now(&tasks, &token).await;
        assert_synced(&wait_for_run(&tasks, Some(&token)).await);
        assert!(
            asked.elapsed() < Duration::from_secs(4),
            "round {round}: the healthy task waited {:?} for a slot",
            asked.elapsed()
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    operator.abort();
}
