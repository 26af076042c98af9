//! A control plane of the test's own (`tests/env/kube.sh` in a directory of its own), stopped when
//! dropped: its apiserver can be killed, or hold cluster-scoped objects (an earlier CRD), without
//! touching the other tests'.

use std::path::PathBuf;

use super::audit::write_lines_in;
use super::command::run_ok;

pub struct OwnControlPlane {
    dir: PathBuf,
}

impl OwnControlPlane {
    /// Starts one; `name` keeps those of tests running at the same time apart.
    pub async fn start(name: &str) -> (OwnControlPlane, kube::Client) {
        let dir =
            std::env::temp_dir().join(format!("usersync-own-kube-{}-{name}", std::process::id()));
        let plane = OwnControlPlane { dir };
        plane.script("start");
        let kubeconfig =
            kube::config::Kubeconfig::read_from(plane.kubeconfig()).expect("kubeconfig");
        let options = kube::config::KubeConfigOptions::default();
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .expect("config");
        (plane, kube::Client::try_from(config).expect("client"))
    }

    /// `kube.sh COMMAND` on this control plane (`restart-apiserver`, …).
    pub fn script(&self, command: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/env/kube.sh");
        run_ok(
            std::process::Command::new("bash")
                .args([script, command])
                .arg(&self.dir),
        );
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.join("kubeconfig")
    }

    /// UserGroup writes in `ns`, by this control plane's audit log.
    pub fn writes(&self, ns: &str) -> usize {
        self.write_lines(ns).len()
    }

    /// UserGroup writes in `ns`, one line each: verb, name, subresource and response code.
    pub fn write_lines(&self, ns: &str) -> Vec<String> {
        write_lines_in(&self.dir.join("audit.log"), ns)
    }
}

impl Drop for OwnControlPlane {
    fn drop(&mut self) {
        self.script("stop");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
