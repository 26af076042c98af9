//! The operator's image as `cargo xtask image` wrote it (`target/image/oci`, or `$USERSYNC_IMAGE`):
//! both platforms, the user, entrypoint and command the Dockerfile states, the files it copies, and
//! a static binary of the right architecture that runs. Read with serde_json, tar and flate2, every
//! blob checked against its digest. Without a built image these tests fail; they never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// OCI architecture, ELF `e_machine`, `uname -m`.
const PLATFORMS: [(&str, u16, &str); 2] = [("amd64", 62, "x86_64"), ("arm64", 183, "aarch64")];

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// One platform's image: its config and the files of its layer by path.
struct Platform {
    config: Value,
    files: BTreeMap<String, File>,
}

struct File {
    mode: u32,
    uid: u64,
    gid: u64,
    directory: bool,
    data: Vec<u8>,
}

/// The image, read once for all tests; by OCI architecture.
fn image() -> &'static BTreeMap<String, Platform> {
    static IMAGE: OnceLock<BTreeMap<String, Platform>> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let layout = std::env::var_os("USERSYNC_IMAGE")
            .map_or_else(|| root().join("target/image/oci"), PathBuf::from);
        assert!(
            layout.join("index.json").is_file(),
            "no OCI image layout at {}: build it with `cargo xtask image` (`cargo xtask test` \
             builds it before the tests)",
            layout.display()
        );
        read_layout(&layout)
    })
}

fn read_layout(layout: &Path) -> BTreeMap<String, Platform> {
    let top: Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap())
        .expect("index.json is JSON");
    let refs = top["manifests"]
        .as_array()
        .expect("index.json lists manifests");
    assert_eq!(refs.len(), 1, "index.json names one image: {top:#}");
    assert_eq!(
        refs[0]["annotations"]["org.opencontainers.image.ref.name"],
        env!("CARGO_PKG_VERSION"),
        "the layout's image is named by the crate version"
    );
    assert_eq!(
        refs[0]["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let index = json_blob(layout, &refs[0]);
    let mut platforms = BTreeMap::new();
    for descriptor in index["manifests"]
        .as_array()
        .expect("the index lists manifests")
    {
        assert_eq!(descriptor["platform"]["os"], "linux", "{descriptor:#}");
        let arch = descriptor["platform"]["architecture"]
            .as_str()
            .expect("a platform architecture")
            .to_owned();
        let manifest = json_blob(layout, descriptor);
        let config = json_blob(layout, &manifest["config"]);
        let layers = manifest["layers"].as_array().expect("layers");
        assert_eq!(layers.len(), 1, "one layer: {manifest:#}");
        assert_eq!(
            layers[0]["mediaType"],
            "application/vnd.oci.image.layer.v1.tar+gzip"
        );
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(blob(layout, &layers[0]).as_slice())
            .read_to_end(&mut tar)
            .expect("the layer is gzip");
        assert_eq!(
            config["rootfs"],
            json!({"type": "layers", "diff_ids": [format!("sha256:{}", sha256_hex(&tar))]}),
            "the config's diff_id is the uncompressed layer's digest"
        );
        let files = read_tar(&tar);
        assert!(
            platforms
                .insert(arch.clone(), Platform { config, files })
                .is_none(),
            "{arch} twice in the index"
        );
    }
    platforms
}

/// A blob's bytes, after checking them against the descriptor's digest and size.
fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().expect("a digest");
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex))
        .unwrap_or_else(|e| panic!("blob {digest}: {e}"));
    assert_eq!(sha256_hex(&bytes), hex, "blob {digest} has another digest");
    assert_eq!(
        descriptor["size"],
        bytes.len(),
        "blob {digest} has another size"
    );
    bytes
}

fn json_blob(layout: &Path, descriptor: &Value) -> Value {
    serde_json::from_slice(&blob(layout, descriptor)).expect("a JSON blob")
}

fn read_tar(tar: &[u8]) -> BTreeMap<String, File> {
    let mut files = BTreeMap::new();
    for entry in tar::Archive::new(tar).entries().expect("a tar") {
        let mut entry = entry.expect("a tar entry");
        let header = entry.header().clone();
        let path = entry.path().expect("a path").to_string_lossy().into_owned();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("entry data");
        let file = File {
            mode: header.mode().expect("mode"),
            uid: header.uid().expect("uid"),
            gid: header.gid().expect("gid"),
            directory: header.entry_type().is_dir(),
            data,
        };
        files.insert(format!("/{}", path.trim_end_matches('/')), file);
    }
    files
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The Dockerfile's last stage: `USER`, `ENTRYPOINT` and `CMD` as the image config spells them, and
/// the destinations of its `COPY`s.
struct Dockerfile {
    config: Value,
    copied: BTreeSet<String>,
}

fn dockerfile() -> Dockerfile {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    let joined = text.replace("\\\n", " ");
    let lines: Vec<&str> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let last_from = lines
        .iter()
        .rposition(|l| l.starts_with("FROM "))
        .expect("FROM");
    let mut config = serde_json::Map::new();
    let mut copied = BTreeSet::new();
    for line in &lines[last_from + 1..] {
        let (instruction, rest) = line.split_once(' ').expect("an instruction and arguments");
        match instruction {
            "USER" => _ = config.insert("User".into(), json!(rest.trim())),
            "ENTRYPOINT" | "CMD" => {
                let key = if instruction == "CMD" {
                    "Cmd"
                } else {
                    "Entrypoint"
                };
                let value: Value = serde_json::from_str(rest).expect("exec form, a JSON array");
                config.insert(key.into(), value);
            }
            "COPY" => {
                let dest = rest.split_whitespace().last().expect("a destination");
                copied.insert(dest.to_owned());
            }
            _ => {}
        }
    }
    Dockerfile {
        config: Value::Object(config),
        copied,
    }
}

#[test]
fn the_image_is_for_amd64_and_arm64_and_runs_as_the_dockerfile_says() {
    let image = image();
    let archs: Vec<&str> = image.keys().map(String::as_str).collect();
    assert_eq!(archs, ["amd64", "arm64"], "platforms in the index");
    let docker = dockerfile();
    for (arch, platform) in image {
        let config = &platform.config;
        assert_eq!(config["architecture"], arch.as_str());
        assert_eq!(config["os"], "linux");
        let run = &config["config"];
        assert_eq!(run["User"], "65532:65532", "{arch}");
        assert_eq!(run["Entrypoint"], json!(["/usersync"]), "{arch}");
        assert_eq!(run["Cmd"], json!(["run"]), "{arch}");
        for key in ["User", "Entrypoint", "Cmd"] {
            assert_eq!(
                run[key], docker.config[key],
                "{arch}: the image's {key} differs from the Dockerfile's"
            );
        }
    }
}

#[test]
fn the_image_is_labelled_with_version_revision_and_source() {
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map_or_else(
            || "unknown".to_owned(),
            |o| String::from_utf8_lossy(&o.stdout).trim().to_owned(),
        );
    for (arch, platform) in image() {
        let labels = &platform.config["config"]["Labels"];
        assert_eq!(
            labels["org.opencontainers.image.version"],
            env!("CARGO_PKG_VERSION"),
            "{arch}"
        );
        let revision = labels["org.opencontainers.image.revision"]
            .as_str()
            .expect("a revision label");
        assert_eq!(
            revision.trim_end_matches("-dirty"),
            head,
            "{arch}: the image was built from another commit; rebuild it with `cargo xtask image`"
        );
        let source = env!("CARGO_PKG_REPOSITORY");
        let expected = if source.is_empty() {
            Value::Null
        } else {
            json!(source)
        };
        assert_eq!(
            labels["org.opencontainers.image.source"], expected,
            "{arch}"
        );
    }
}

#[test]
fn the_layer_holds_what_the_dockerfile_copies() {
    let docker = dockerfile();
    let passwd = std::fs::read(root().join("image/passwd")).expect("image/passwd");
    let group = std::fs::read(root().join("image/group")).expect("image/group");
    for (arch, platform) in image() {
        let files = &platform.files;
        let regular: BTreeSet<String> = files
            .iter()
            .filter(|(_, f)| !f.directory)
            .map(|(path, _)| path.clone())
            .collect();
        assert_eq!(
            regular, docker.copied,
            "{arch}: files in the image vs the Dockerfile's COPYs"
        );
        for (path, file) in files {
            assert_eq!((file.uid, file.gid), (0, 0), "{arch}: {path} is root's");
            let mode = if file.directory || path == "/usersync" {
                0o755
            } else {
                0o644
            };
            assert_eq!(file.mode, mode, "{arch}: {path} has mode {:o}", file.mode);
        }
        assert_eq!(files["/etc/passwd"].data, passwd, "{arch}");
        assert_eq!(files["/etc/group"].data, group, "{arch}");
        let passwd = String::from_utf8_lossy(&passwd);
        assert!(passwd.contains("\nnonroot:x:65532:65532:"), "{passwd}");
        assert!(String::from_utf8_lossy(&group).contains("\nnonroot:x:65532:\n"));
        let ca = String::from_utf8_lossy(&files["/etc/ssl/certs/ca-certificates.crt"].data);
        let certificates = ca.matches("-----BEGIN CERTIFICATE-----").count();
        assert!(certificates > 100, "{arch}: {certificates} CA roots");
    }
}

#[test]
fn the_binary_is_static_and_of_the_platforms_architecture() {
    for (arch, machine, _) in PLATFORMS {
        let elf = &image()[arch].files["/usersync"].data;
        assert_eq!(
            &elf[..6],
            b"\x7fELF\x02\x01",
            "{arch}: a 64-bit little-endian ELF file"
        );
        assert!(
            matches!(u16_at(elf, 16), 2 | 3),
            "{arch}: an executable (ET_EXEC, or ET_DYN for static-pie)"
        );
        assert_eq!(u16_at(elf, 18), machine, "{arch}: ELF e_machine");
        let (phoff, phentsize, phnum) = (u64_at(elf, 32), u16_at(elf, 54), u16_at(elf, 56));
        for n in 0..usize::from(phnum) {
            let ph = usize::try_from(phoff).unwrap() + n * usize::from(phentsize);
            let kind = u32::from_le_bytes(elf[ph..ph + 4].try_into().unwrap());
            assert_ne!(kind, 3, "{arch}: a PT_INTERP header, so not static");
            if kind == 2 {
                let (offset, size) = (u64_at(elf, ph + 8), u64_at(elf, ph + 32));
                let offset = usize::try_from(offset).unwrap();
                let tags =
                    (0..usize::try_from(size).unwrap() / 16).map(|i| u64_at(elf, offset + i * 16));
                assert!(
                    !tags.take_while(|&t| t != 0).any(|t| t == 1),
                    "{arch}: DT_NEEDED, so it loads shared libraries"
                );
            }
        }
    }
}

fn u16_at(bytes: &[u8], at: usize) -> u16 {
    u16::from_le_bytes(bytes[at..at + 2].try_into().unwrap())
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Each platform's `/usersync`, taken out of the layer, prints its version and the CRDs this source
/// generates: natively on this machine's architecture, under qemu-user on the other.
#[test]
fn the_binaries_in_the_image_run() {
    let crds = usersync::api::crds_yaml().expect("CRDs render");
    for (arch, _, machine) in PLATFORMS {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("image-{arch}"));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let binary = dir.join("usersync");
        std::fs::write(&binary, &image()[arch].files["/usersync"].data).expect("write usersync");
        std::fs::set_permissions(&binary, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let command = |arg: &str| {
            let mut cmd = if machine == std::env::consts::ARCH {
                Command::new(&binary)
            } else {
                let mut cmd = Command::new(format!("qemu-{machine}-static"));
                cmd.arg(&binary);
                cmd
            };
            cmd.arg(arg);
            cmd
        };
        let version = run(arch, command("--version"));
        assert_eq!(
            version.trim(),
            format!("usersync {}", env!("CARGO_PKG_VERSION"))
        );
        assert!(
            run(arch, command("crd")) == crds,
            "{arch}: `usersync crd` differs from the source's CRDs"
        );
    }
}

/// Runs `cmd`, retrying while another test thread's fork still holds the new file open
/// (ETXTBSY); its standard output when it succeeds.
fn run(arch: &str, mut cmd: Command) -> String {
    let shown = format!("{cmd:?}");
    let mut tries = 0;
    let out: Output = loop {
        match cmd.output() {
            Err(e) if e.raw_os_error() == Some(26) && tries < 50 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!(
                "{arch}: cannot run {shown}: {e} (qemu-user-static comes with \
                 tests/env/install-deps.sh)"
            ),
            Ok(out) => break out,
        }
    };
    assert!(
        out.status.success(),
        "{arch}: {shown} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

/// The chart takes the image from any registry: repository, tag, pull policy and pull secrets.
#[test]
fn the_chart_points_at_any_registry() {
    let out = Command::new("helm")
        .args(["template", "usersync", "charts/usersync"])
        .args(["--namespace", "usersync-system"])
        .args([
            "--set",
            "image.repository=registry.example.com:5000/team/usersync",
        ])
        .args([
            "--set",
            "image.tag=0.1.0-rc1",
            "--set",
            "image.pullPolicy=Always",
        ])
        .args(["--set", "imagePullSecrets[0].name=registry-login"])
        .current_dir(root())
        .output()
        .expect("helm runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for expected in [
        "image: \"registry.example.com:5000/team/usersync:0.1.0-rc1\"",
        "imagePullPolicy: Always",
        "imagePullSecrets:\n        - name: registry-login",
    ] {
        assert!(text.contains(expected), "`{expected}` not in:\n{text}");
    }
}
