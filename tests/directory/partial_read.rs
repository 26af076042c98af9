//! A directory server that dies in the middle of a read yields an error, never a smaller snapshot.
//! Runs its own slapd (through tests/env/slapd.sh) so the shared one is not disturbed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use usersync::api::{DirectoryPreset, DirectorySpec, TlsMode};
use usersync::directory::connect::connect;
use usersync::directory::read::{ReadOptions, read_snapshot};
use usersync_testbed::fixture::{FixtureSpec, generate};
use usersync_testbed::ldif;

use crate::support::connector::bind_settings;

const USERS: usize = 2000;

struct OwnSlapd {
    dir: PathBuf,
}

impl OwnSlapd {
    fn script(args: &[&str]) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/env/slapd.sh");
        let status = Command::new("bash")
            .arg(script)
            .args(args)
            .status()
            .expect("slapd.sh runs");
        assert!(status.success(), "slapd.sh {args:?} failed");
    }

    fn start() -> OwnSlapd {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir = std::env::temp_dir().join(format!("usersync-partial-{nanos}"));
        let dir_text = dir.to_string_lossy().into_owned();
        Self::script(&["start", &dir_text]);
        let ldif_path = dir.join("fixture.ldif");
        let mut out =
            std::io::BufWriter::new(std::fs::File::create(&ldif_path).expect("create LDIF"));
        ldif::write_openldap(&generate(FixtureSpec::scaled(USERS)), true, &mut out)
            .expect("write LDIF");
        drop(out);
        Self::script(&["load", &dir_text, &ldif_path.to_string_lossy()]);
        OwnSlapd { dir }
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .trim()
            .to_owned()
    }

    fn kill(&self) {
        let pid = self.read("slapd.pid");
        let status = Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .expect("kill runs");
        assert!(status.success());
    }
}

impl Drop for OwnSlapd {
    fn drop(&mut self) {
        let dir: &Path = &self.dir;
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/env/slapd.sh");
        let _ = Command::new("bash")
            .arg(script)
            .arg("stop")
            .arg(dir)
            .status();
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[tokio::test]
async fn a_server_dying_mid_read_is_an_error_not_a_smaller_snapshot() {
    let slapd = OwnSlapd::start();
    let settings = bind_settings(
        &format!("ldap://127.0.0.1:{}", slapd.read("port")),
        TlsMode::StartTls,
        slapd.dir.join("tls/ca.crt"),
        "cn=admin,dc=example,dc=org",
        "usersync-admin",
        Duration::from_secs(5),
    );
    // One entry per page: the read takes thousands of round trips, long enough to be cut.
    let spec: DirectorySpec = serde_json::from_value(serde_json::json!({
        "baseDN": "dc=example,dc=org", "preset": DirectoryPreset::OpenLdap, "pageSize": 1
    }))
    .expect("spec");

    let mut full_conn = connect(&settings).await.expect("bind");
    let full = read_snapshot(&mut full_conn, &spec, &ReadOptions::default())
        .await
        .expect("a complete read");
    assert_eq!(full.users.len(), USERS);

    let mut conn = connect(&settings).await.expect("bind");
    let read =
        tokio::spawn(async move { read_snapshot(&mut conn, &spec, &ReadOptions::default()).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    slapd.kill();
    match read.await.expect("the read task does not panic") {
        Err(err) => assert!(
            matches!(
                err.reason(),
                "ServerUnreachable" | "ProtocolError" | "Timeout"
            ),
            "a lost server is reported as such: {} ({err})",
            err.reason()
        ),
        Ok(snapshot) => panic!(
            "the read finished with {} of {USERS} users after the server was killed",
            snapshot.users.len()
        ),
    }
}
