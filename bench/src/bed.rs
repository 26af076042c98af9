//! The benchmark's own test bed under `.bench/`: the local apiserver and the directories, started by
//! the project's scripts, stopped when dropped.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use usersync_testbed::fixture::{Fixture, FixtureSpec, generate};
use usersync_testbed::ldif;

use crate::target::{Kind, Target};

pub struct Bed {
    root: PathBuf,
    dir: PathBuf,
    /// (script, state dir) of each started part, stopped in reverse order.
    started: Vec<(&'static str, PathBuf)>,
}

pub struct KubeEnv {
    pub kubeconfig: String,
    pub audit_log: String,
}

impl Bed {
    pub fn new(root: &Path) -> Bed {
        Bed {
            root: root.to_owned(),
            dir: root.join(".bench"),
            started: Vec::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn script(&self, name: &str, args: &[&Path]) -> Result<(), String> {
        let status = Command::new("bash")
            .arg(self.root.join("tests/env").join(name))
            .args(args)
            // slapd's syncrepl session log, sized for the 1 % scenario (1,000 changed users) as a
            // directory with that change rate would be configured; older cookies get present lists.
            .env("SLAPD_SESSIONLOG", "10000")
            // A million users take about 4 GiB.
            .env("SLAPD_MAXSIZE", (16u64 << 30).to_string())
            .status()
            .map_err(|e| format!("{name}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{name} {args:?} failed ({status})"))
        }
    }

    fn start(&mut self, script: &'static str, part: &str) -> Result<PathBuf, String> {
        let dir = self.dir.join(part);
        self.script(script, &[Path::new("start"), &dir])?;
        self.started.push((script, dir.clone()));
        Ok(dir)
    }

    /// Stops a part started before (its state stays on disk until the next start).
    pub fn stop(&mut self, part: &str) -> Result<(), String> {
        let dir = self.dir.join(part);
        let Some(i) = self.started.iter().position(|(_, d)| *d == dir) else {
            return Ok(());
        };
        let (script, dir) = self.started.remove(i);
        self.script(script, &[Path::new("stop"), &dir])
    }

    pub fn start_kube(&mut self) -> Result<KubeEnv, String> {
        let dir = self.start("kube.sh", "kube")?;
        let env = read_env(&dir.join("env"))?;
        Ok(KubeEnv {
            kubeconfig: env["KUBECONFIG"].clone(),
            audit_log: env["USERSYNC_AUDIT_LOG"].clone(),
        })
    }

    /// A slapd of its own with `spec`'s fixture, bulk-loaded offline.
    pub fn start_slapd(&mut self, part: &str, spec: FixtureSpec) -> Result<Target, String> {
        let dir = self.start("slapd.sh", part)?;
        let fixture = generate(spec);
        let path = dir.join("fixture.ldif");
        write_ldif(&path, |out| ldif::write_openldap(&fixture, true, out))?;
        self.script("slapd.sh", &[Path::new("load"), &dir, &path])?;
        let env = read_env(&dir.join("env"))?;
        Ok(Target {
            kind: Kind::OpenLdap,
            url: env["USERSYNC_SLAPD_LDAPS_URL"].clone(),
            ca_file: env["USERSYNC_SLAPD_CA"].clone(),
            bind: env["USERSYNC_SLAPD_ADMIN_DN"].clone(),
            password: env["USERSYNC_SLAPD_ADMIN_PASSWORD"].clone(),
            fixture,
            member_range: None,
        })
    }

    /// Samba AD DC (fixed ports 389/636: one at a time) with `spec`'s fixture.
    pub fn start_samba(
        &mut self,
        spec: FixtureSpec,
        member_range: usize,
    ) -> Result<Target, String> {
        let dir = self.start("samba.sh", "samba")?;
        let fixture: Fixture = generate(spec);
        let path = dir.join("fixture.ldif");
        write_ldif(&path, |out| ldif::write_active_directory(&fixture, out))?;
        self.script("samba.sh", &[Path::new("load"), &dir, &path])?;
        let env = read_env(&dir.join("env"))?;
        Ok(Target {
            kind: Kind::Samba,
            url: env["USERSYNC_SAMBA_LDAPS_URL"].clone(),
            ca_file: env["USERSYNC_SAMBA_CA"].clone(),
            bind: format!("{}\\Administrator", env["USERSYNC_SAMBA_DOMAIN"]),
            password: env["USERSYNC_SAMBA_ADMIN_PASSWORD"].clone(),
            fixture,
            member_range: Some(member_range),
        })
    }
}

impl Drop for Bed {
    fn drop(&mut self) {
        while let Some((script, dir)) = self.started.pop() {
            if let Err(e) = self.script(script, &[Path::new("stop"), &dir]) {
                eprintln!("bench: {e}");
            }
        }
    }
}

fn write_ldif(
    path: &Path,
    write: impl FnOnce(&mut BufWriter<std::fs::File>) -> std::io::Result<()>,
) -> Result<(), String> {
    let file = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = BufWriter::new(file);
    write(&mut out)
        .and_then(|()| out.flush())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// `export KEY=value` lines (values optionally single-quoted), as the scripts write them.
fn read_env(path: &Path) -> Result<BTreeMap<String, String>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('\'').to_owned()))
        .collect())
}
