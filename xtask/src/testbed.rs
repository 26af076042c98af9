//! Starts and stops the local test bed through the scripts in `tests/env/`, which are the one place
//! that knows how to run each server. State lives in `.testbed/` at the workspace root.

use std::collections::BTreeMap;
use std::fs;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;

use usersync_testbed::env::Ds389;
use usersync_testbed::fixture::{FixtureSpec, generate};
use usersync_testbed::ldif;

use crate::image::Image;

/// Where the node finds the operator's image: a registry name that exists nowhere, so that nothing
/// can be pulled and the image loaded into the node is the one that runs.
pub const NODE_IMAGE_REPOSITORY: &str = "registry.usersync.test/usersync";

/// Environment of a running test bed: what tests and tools need to reach its servers.
pub type Env = BTreeMap<String, String>;

pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn state_dir() -> PathBuf {
    root().join(".testbed")
}

fn script(name: &str) -> PathBuf {
    root().join("tests/env").join(name)
}

pub fn run(cmd: &mut Command) -> Result<(), String> {
    let shown = format!("{cmd:?}");
    let status = cmd
        .status()
        .map_err(|e| format!("cannot run {shown}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{shown} failed ({status})"))
    }
}

fn bash(script_name: &str, args: &[&Path]) -> Result<(), String> {
    run(Command::new("bash").arg(script(script_name)).args(args))
}

/// Starts Kubernetes, Samba AD, OpenLDAP and 389-DS, loads the standard fixture into Samba and
/// OpenLDAP and a small one into 389-DS, and writes `.testbed/env`. With an image, also the
/// cluster with a real node (`node.sh`), the image loaded into it. A test bed left over from an
/// earlier run is stopped first.
pub fn up(node_image: Option<&Image>) -> Result<Env, String> {
    down()?;
    run(Command::new("bash").arg(script("install-deps.sh")))?;
    run(Command::new("bash").arg(script("build-tools.sh")))?;
    let dir = state_dir();
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let fixture = generate(FixtureSpec::STANDARD);
    // The node's network comes first: the directories listen on its host end too, for pods.
    let node_dir = dir.join("node");
    if node_image.is_some() {
        bash("node.sh", &[Path::new("net"), &node_dir])?;
    }

    // Samba's provisioning is the slow part; the other servers start meanwhile.
    let samba = {
        let (dir, fixture) = (dir.clone(), fixture.clone());
        thread::spawn(move || -> Result<(), String> {
            let samba_dir = dir.join("samba");
            bash("samba.sh", &[Path::new("start"), &samba_dir])?;
            let ldif_path = dir.join("fixture-ad.ldif");
            write_ldif(&ldif_path, |out| {
                ldif::write_active_directory(&fixture, out)
            })?;
            bash("samba.sh", &[Path::new("load"), &samba_dir, &ldif_path])
        })
    };
    bash("kube.sh", &[Path::new("start"), &dir.join("kube")])?;
    let slapd_dir = dir.join("slapd");
    bash("slapd.sh", &[Path::new("start"), &slapd_dir])?;
    let ldif_path = dir.join("fixture-openldap.ldif");
    write_ldif(&ldif_path, |out| ldif::write_openldap(&fixture, true, out))?;
    bash("slapd.sh", &[Path::new("load"), &slapd_dir, &ldif_path])?;
    // 389-DS takes its fixture online, through its memberOf plugin, so it gets a small one; start
    // and load fit in the time Samba still needs.
    let ds389_dir = dir.join("ds389");
    bash("389ds.sh", &[Path::new("start"), &ds389_dir])?;
    let ldif_path = dir.join("fixture-389ds.ldif");
    write_ldif(&ldif_path, |out| {
        ldif::write_389ds(&generate(Ds389::FIXTURE), out)
    })?;
    bash("389ds.sh", &[Path::new("load"), &ds389_dir, &ldif_path])?;
    if let Some(image) = node_image {
        start_node(&node_dir, image)?;
    }
    samba
        .join()
        .map_err(|_| "the Samba start-up thread panicked".to_owned())??;

    let mut text = String::new();
    let mut parts = vec!["kube", "samba", "slapd", "ds389"];
    if node_image.is_some() {
        parts.push("node");
    }
    for part in parts {
        let path = dir.join(part).join("env");
        text += &fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    }
    text += &format!(
        "export USERSYNC_SAMBA_DIR={}\n",
        dir.join("samba").display()
    );
    text += &format!("export USERSYNC_GITOPS_BIN={}\n", gitops_helper()?);
    let env_path = dir.join("env");
    fs::write(&env_path, &text).map_err(|e| format!("cannot write {}: {e}", env_path.display()))?;
    eprintln!(
        "test bed is up; for manual use: source {}",
        env_path.display()
    );
    Ok(parse_env(&text))
}

/// The node's cluster, with the operator's image loaded into the node; its name goes to the tests.
fn start_node(node_dir: &Path, image: &Image) -> Result<(), String> {
    bash("node.sh", &[Path::new("start"), node_dir])?;
    let name = format!("{NODE_IMAGE_REPOSITORY}:{}", image.version);
    bash(
        "node.sh",
        &[
            Path::new("import"),
            node_dir,
            &image.archive,
            Path::new(&name),
        ],
    )?;
    let env_path = node_dir.join("env");
    let mut text = fs::read_to_string(&env_path)
        .map_err(|e| format!("cannot read {}: {e}", env_path.display()))?;
    text += &format!(
        "export USERSYNC_NODE_IMAGE_REPOSITORY={NODE_IMAGE_REPOSITORY}\n\
         export USERSYNC_NODE_IMAGE_TAG={}\n",
        image.version
    );
    fs::write(&env_path, text).map_err(|e| format!("cannot write {}: {e}", env_path.display()))
}

pub fn down() -> Result<(), String> {
    stop_operator();
    let dir = state_dir();
    // The node first: its pods talk to the directories.
    for (script_name, part) in [
        ("node.sh", "node"),
        ("kube.sh", "kube"),
        ("samba.sh", "samba"),
        ("slapd.sh", "slapd"),
        ("389ds.sh", "ds389"),
    ] {
        let path = dir.join(part);
        if path.exists() {
            bash(script_name, &[Path::new("stop"), &path])?;
        }
    }
    Ok(())
}

/// `cargo xtask test`: every test of the workspace against a fresh test bed.
pub fn run_tests(image: &Image, cargo_args: &[String]) -> Result<(), String> {
    let env = up(Some(image))?;
    let result = run(Command::new(env!("CARGO"))
        .args(["test", "--workspace", "--no-fail-fast"])
        .args(cargo_args)
        .envs(&env));
    let stopped = down();
    result.and(stopped)
}

/// `cargo xtask demo`: the quick start.
pub fn demo() -> Result<(), String> {
    let env = up(None)?;
    let kubectl = |args: &[&str]| run(Command::new("kubectl").args(args).envs(&env));
    let samba_ca = env
        .get("USERSYNC_SAMBA_CA")
        .ok_or("the test bed did not report the Samba CA")?;
    let examples = root().join("examples");
    kubectl(&[
        "apply",
        "--server-side",
        "-f",
        &root().join("crds").display().to_string(),
    ])?;
    kubectl(&[
        "wait",
        "--for=condition=Established",
        "crd/usersynchronizations.usersync.io",
        "crd/usergroups.usersync.io",
    ])?;
    kubectl(&["create", "namespace", "identity"])?;
    kubectl(&[
        "-n",
        "identity",
        "create",
        "secret",
        "generic",
        "corp-ca",
        &format!("--from-file=ca.crt={samba_ca}"),
    ])?;
    kubectl(&[
        "apply",
        "-f",
        &examples.join("corp-ad.yaml").display().to_string(),
    ])?;
    start_operator(&env)?;
    kubectl(&[
        "-n",
        "identity",
        "wait",
        "--for=condition=Ready",
        "--timeout=120s",
        "usersynchronization/corp-ad",
    ])?;
    kubectl(&["-n", "identity", "get", "usync,ug"])?;
    eprintln!(
        "\nThe operator keeps running (log: .testbed/operator.log), and so does the test bed: \
         `source .testbed/env` to use kubectl against it, `cargo xtask down` to stop everything."
    );
    Ok(())
}

/// Builds `usersync` and runs `usersync run` in the background against the test bed, as an
/// operator runs in a cluster. `down` stops it.
fn start_operator(env: &Env) -> Result<(), String> {
    run(Command::new(env!("CARGO")).args(["build", "--quiet", "--bin", "usersync"]))?;
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root().join("target"), PathBuf::from);
    let binary = target.join("debug/usersync");
    let log = fs::File::create(state_dir().join("operator.log"))
        .map_err(|e| format!("operator log: {e}"))?;
    let err_log = log.try_clone().map_err(|e| format!("operator log: {e}"))?;
    let child = Command::new("setsid")
        .arg(&binary)
        .args(["run", "--log-format", "text"])
        .envs(env)
        .stdout(log)
        .stderr(err_log)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    fs::write(state_dir().join("operator.pid"), child.id().to_string())
        .map_err(|e| format!("operator pid: {e}"))?;
    Ok(())
}

fn stop_operator() {
    let pidfile = state_dir().join("operator.pid");
    if let Ok(pid) = fs::read_to_string(&pidfile) {
        let _ = Command::new("kill").arg(pid.trim()).status();
        let _ = fs::remove_file(pidfile);
    }
}

/// Where `build-tools.sh` put the GitOps helper (kstatus, Argo CD's Lua checks) for this source.
fn gitops_helper() -> Result<String, String> {
    let out = Command::new("bash")
        .arg(script("build-tools.sh"))
        .arg("gitops-path")
        .output()
        .map_err(|e| format!("cannot run build-tools.sh gitops-path: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "build-tools.sh gitops-path failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn write_ldif(
    path: &Path,
    render: impl FnOnce(&mut BufWriter<fs::File>) -> std::io::Result<()>,
) -> Result<(), String> {
    let file =
        fs::File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    let mut out = BufWriter::new(file);
    render(&mut out)
        .and_then(|()| std::io::Write::flush(&mut out))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Reads the `export NAME=value` lines the scripts write. PATH entries are resolved against this
/// process's PATH so tests find kubectl and helm.
fn parse_env(text: &str) -> Env {
    let mut env = Env::new();
    for line in text.lines() {
        let Some((name, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('='))
        else {
            continue;
        };
        let value = value.trim_matches('\'');
        let value = if name == "PATH" {
            let current = env
                .get("PATH")
                .cloned()
                .or_else(|| std::env::var("PATH").ok())
                .unwrap_or_default();
            value.replace("$PATH", &current)
        } else {
            value.to_owned()
        };
        env.insert(name.to_owned(), value);
    }
    env
}
