//! `usersync preview` and `usersync browse` against the real Samba AD DC, with a task file and no
//! cluster.

use std::process::{Command, Output};

use usersync_testbed::env;
use usersync_testbed::fixture::{FixtureSpec, generate};

const EXAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/corp-ad.yaml");

fn usersync(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_usersync"))
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .expect("usersync runs")
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn preview_summarises_the_example_task() {
    let samba = env::samba();
    let out = usersync(
        &["preview", "-f", EXAMPLE, "--ca-file", &samba.ca_file],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let fixture_users = generate(FixtureSpec::STANDARD).users.len();
    let users_line = stdout
        .lines()
        .find(|l| l.starts_with("users:"))
        .expect("a users line");
    let count: usize = users_line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("a user count");
    // The whole domain: the fixture and whatever other tests added in OUs of their own (the
    // domain's own accounts, such as krbtgt, are left out).
    assert!(count >= fixture_users, "{users_line}");
    assert!(stdout.contains("All Staff"), "{stdout}");
    assert!(!stdout.contains(&samba.admin_password) && !stderr.contains(&samba.admin_password));
}

#[test]
fn browse_shows_the_tree_with_counts() {
    let samba = env::samba();
    let base = format!("OU=Corp,{}", samba.base_dn);
    let out = usersync(
        &[
            "browse",
            "-f",
            EXAMPLE,
            "--ca-file",
            &samba.ca_file,
            "--base",
            &base,
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("Teams/") && l.contains("groups]")),
        "{stdout}"
    );
    assert!(stdout.contains("* All Staff  (3100 users"), "{stdout}");
}

#[test]
fn a_wrong_password_fails_with_its_reason_and_without_the_password() {
    let samba = env::samba();
    let out = usersync(
        &[
            "preview",
            "-f",
            EXAMPLE,
            "--ca-file",
            &samba.ca_file,
            "--password-env",
            "WRONG_PASSWORD",
        ],
        &[("WRONG_PASSWORD", "Not-The-Passw0rd")],
    );
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("InvalidCredentials"), "{stderr}");
    assert!(!stderr.contains("Not-The-Passw0rd") && !stdout.contains("Not-The-Passw0rd"));
}

const CONNECTION_EXAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/examples/corp-ad-connection.yaml"
);

/// The connection example's Secret and ClusterDirectoryConnection alone, in a file of their own.
fn connection_only() -> std::path::PathBuf {
    let text = std::fs::read_to_string(CONNECTION_EXAMPLE).expect("example");
    let documents: Vec<&str> = text.split("\n---\n").collect();
    let path =
        std::env::temp_dir().join(format!("usersync-connection-{}.yaml", std::process::id()));
    std::fs::write(&path, documents[..2].join("\n---\n")).expect("written");
    path
}

#[test]
fn browse_and_preview_read_through_a_connection() {
    let samba = env::samba();
    let base = format!("OU=Corp,{}", samba.base_dn);
    // The task file names the connection; the connection's file holds it and its Secret.
    let out = usersync(
        &[
            "browse",
            "-f",
            CONNECTION_EXAMPLE,
            "--ca-file",
            &samba.ca_file,
            "--base",
            &base,
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("* All Staff  (3100 users"), "{stdout}");

    // A connection without any task: browse and preview below the DN given.
    let alone = connection_only();
    let path = alone.to_str().expect("path");
    let out = usersync(
        &[
            "browse",
            "-f",
            path,
            "--ca-file",
            &samba.ca_file,
            "--base",
            &base,
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("* All Staff  (3100 users"), "{stdout}");
    let out = usersync(
        &[
            "preview",
            "-f",
            path,
            "--ca-file",
            &samba.ca_file,
            "--base",
            &base,
        ],
        &[],
    );
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    assert!(stdout.contains("All Staff"), "{stdout}");
    let out = usersync(&["preview", "-f", path, "--ca-file", &samba.ca_file], &[]);
    let (_, stderr) = text(&out);
    assert!(!out.status.success());
    assert!(stderr.contains("--base"), "{stderr}");
    let _ = std::fs::remove_file(alone);
}
