//! `cargo xtask image`: the operator's OCI image, built without a container engine.
//!
//! For each platform it builds the static binary the way the Dockerfile's build step does, then
//! writes one layer (`/usersync`, the CA roots, `/etc/passwd` and `/etc/group` from `image/`), the
//! image config (user 65532, entrypoint, cmd, labels), a manifest per platform and an index over
//! them: an OCI image layout, and the same layout as one tar. The JSON types come from oci-spec, the
//! layer from the tar and flate2 crates. Objects are written with sorted keys and every timestamp
//! is the commit's, so building one commit again gives the same digests.

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;

use clap::{Args, ValueEnum};
use flate2::Compression;
use flate2::write::GzEncoder;
use oci_spec::image::{
    ANNOTATION_CREATED, ANNOTATION_REF_NAME, ANNOTATION_REVISION, ANNOTATION_SOURCE,
    ANNOTATION_VERSION, Arch, ConfigBuilder, Descriptor, DescriptorBuilder, HistoryBuilder,
    ImageConfigurationBuilder, ImageIndexBuilder, ImageManifestBuilder, MediaType,
    OciLayoutBuilder, Os, PlatformBuilder, RootFsBuilder, Sha256Digest,
};
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::testbed::{root, run};

/// How the image runs; the Dockerfile says the same (a packaging test compares the two).
const USER: &str = "65532:65532";
const ENTRYPOINT: &str = "/usersync";
const CMD: &str = "run";
/// Debian's `ca-certificates` bundle, where rustls-native-certs looks for CA roots.
const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";
const NONROOT: u64 = 65532;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum Platform {
    #[value(name = "linux/amd64")]
    Amd64,
    #[value(name = "linux/arm64")]
    Arm64,
}

impl Platform {
    pub const ALL: [Platform; 2] = [Platform::Amd64, Platform::Arm64];

    fn name(self) -> &'static str {
        match self {
            Platform::Amd64 => "linux/amd64",
            Platform::Arm64 => "linux/arm64",
        }
    }

    /// The CPU as `uname -m` and Rust's target triples spell it.
    fn machine(self) -> &'static str {
        match self {
            Platform::Amd64 => "x86_64",
            Platform::Arm64 => "aarch64",
        }
    }

    fn triple(self) -> String {
        format!("{}-unknown-linux-musl", self.machine())
    }

    fn arch(self) -> Arch {
        match self {
            Platform::Amd64 => Arch::Amd64,
            Platform::Arm64 => Arch::ARM64,
        }
    }
}

#[derive(Args, Default)]
pub struct Options {
    /// Directory for the layout (`oci/`) and its tar [default: target/image in the workspace].
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Platforms to build, repeated or comma-separated [default: all].
    #[arg(long = "platform", value_enum, value_delimiter = ',')]
    pub platforms: Vec<Platform>,
    /// The `org.opencontainers.image.source` label [default: Cargo.toml's package.repository].
    #[arg(long)]
    pub source: Option<String>,
}

/// What the labels and timestamps say, read once from Cargo and git.
struct Metadata {
    version: String,
    revision: String,
    source: Option<String>,
    /// Seconds since the epoch and RFC 3339, both the commit's.
    epoch: u64,
    created: String,
}

/// One platform's image, written into the layout.
struct Built {
    platform: Platform,
    manifest: Descriptor,
    binary_size: u64,
    layer_size: u64,
}

/// What `build` wrote: the layout as one tar, and the version it is tagged with.
pub struct Image {
    pub archive: PathBuf,
    pub version: String,
}

/// `cargo xtask image`: binaries, layout, tar; prints where they are.
pub fn build(options: Options) -> Result<Image, String> {
    run(Command::new("bash").args([
        root().join("tests/env/install-deps.sh").as_os_str(),
        "image".as_ref(),
    ]))?;
    run(Command::new("bash").arg(root().join("tests/env/rust-targets.sh")))?;
    let cargo = cargo_metadata()?;
    let meta = metadata(&cargo, options.source)?;
    let output = options
        .output
        .unwrap_or_else(|| root().join("target/image"));
    let mut platforms = options.platforms;
    if platforms.is_empty() {
        platforms = Platform::ALL.to_vec();
    }
    platforms.sort();
    platforms.dedup();
    let ca = fs::read(CA_BUNDLE).map_err(|e| {
        format!("cannot read {CA_BUNDLE} ({e}); install Debian's ca-certificates package")
    })?;

    let target_dir = PathBuf::from(
        cargo["target_directory"]
            .as_str()
            .ok_or("cargo metadata gave no target_directory")?,
    );
    let binaries = build_binaries(&platforms, &target_dir)?;

    // A fresh layout beside the old one, swapped in at the end: no stale blobs, no half image.
    let layout = output.join("oci");
    let staging = output.join("oci.new");
    remove_dir(&staging)?;
    fs::create_dir_all(staging.join("blobs/sha256"))
        .map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let mut built = Vec::new();
    for (&platform, binary) in platforms.iter().zip(&binaries) {
        built.push(write_image(&staging, platform, binary, &ca, &meta)?);
    }
    let index = write_layout(&staging, &built, &meta)?;
    remove_dir(&layout)?;
    fs::rename(&staging, &layout)
        .map_err(|e| format!("cannot rename {}: {e}", staging.display()))?;
    let archive = output.join(format!("usersync-{}.oci.tar", meta.version));
    write_archive(&layout, &archive, meta.epoch)?;

    for b in &built {
        eprintln!(
            "{}: binary {} bytes, layer {} bytes (gzip), manifest {}",
            b.platform.name(),
            b.binary_size,
            b.layer_size,
            b.manifest.digest()
        );
    }
    eprintln!(
        "image usersync:{} (revision {}), index {}\n  OCI layout: {}\n  tar of it:  {}",
        meta.version,
        meta.revision,
        index.digest(),
        layout.display(),
        archive.display()
    );
    Ok(Image {
        archive,
        version: meta.version,
    })
}

fn cargo_metadata() -> Result<serde_json::Value, String> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--no-deps", "--locked"])
        .current_dir(root())
        .output()
        .map_err(|e| format!("cannot run cargo metadata: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("cargo metadata: {e}"))
}

fn metadata(cargo: &serde_json::Value, source: Option<String>) -> Result<Metadata, String> {
    let package = cargo["packages"]
        .as_array()
        .and_then(|all| all.iter().find(|p| p["name"] == "usersync"))
        .ok_or("cargo metadata lists no usersync package")?;
    let version = package["version"]
        .as_str()
        .ok_or("usersync has no version")?
        .to_owned();
    let source = source.or_else(|| package["repository"].as_str().map(str::to_owned));
    if source.is_none() {
        eprintln!(
            "xtask image: no source address (Cargo.toml has no package.repository, no --source); \
             the image has no org.opencontainers.image.source label"
        );
    }
    // Outside a git checkout (a source tarball) the image says so and dates from the epoch.
    let revision = git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".to_owned());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let epoch = git(&["log", "-1", "--format=%ct"])
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let created = git(&[
        "log",
        "-1",
        "--date=format-local:%Y-%m-%dT%H:%M:%SZ",
        "--format=%cd",
    ])
    .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned());
    Ok(Metadata {
        version,
        revision: if dirty {
            format!("{revision}-dirty")
        } else {
            revision
        },
        source,
        epoch,
        created,
    })
}

/// A git command's trimmed output in the workspace, in UTC; `None` when git fails.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(root())
        .env("TZ", "UTC")
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// The Dockerfile's build step, for all platforms in one cargo run, so that one platform's crates
/// compile while the other's longest crate still does. A platform other than this machine's gets
/// Debian's cross gcc for ring's C code and for linking, unless the environment names others.
fn build_binaries(platforms: &[Platform], target_dir: &Path) -> Result<Vec<PathBuf>, String> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--release", "--locked", "--bin", "usersync"])
        .current_dir(root());
    for platform in platforms {
        let triple = platform.triple();
        cmd.args(["--target", &triple]);
        if platform.machine() == std::env::consts::ARCH {
            continue;
        }
        let gcc = format!("{}-linux-gnu-gcc", platform.machine());
        let var = triple.replace('-', "_");
        for key in [
            format!("CC_{var}"),
            format!("CARGO_TARGET_{}_LINKER", var.to_uppercase()),
        ] {
            if std::env::var_os(&key).is_none() {
                cmd.env(key, &gcc);
            }
        }
    }
    let names: Vec<&str> = platforms.iter().map(|p| p.name()).collect();
    eprintln!("xtask image: building usersync for {}", names.join(", "));
    run(&mut cmd)?;
    Ok(platforms
        .iter()
        .map(|p| target_dir.join(p.triple()).join("release/usersync"))
        .collect())
}

/// One platform: its layer, config and manifest as blobs; returns the manifest's descriptor.
fn write_image(
    layout: &Path,
    platform: Platform,
    binary: &Path,
    ca: &[u8],
    meta: &Metadata,
) -> Result<Built, String> {
    let binary_bytes =
        fs::read(binary).map_err(|e| format!("cannot read {}: {e}", binary.display()))?;
    let tar = layer_tar(&binary_bytes, ca, meta.epoch)?;
    let diff_id = format!("sha256:{}", sha256_hex(&tar));
    let mut gz = GzEncoder::new(Vec::new(), Compression::best());
    gz.write_all(&tar)
        .and_then(|()| gz.flush())
        .map_err(|e| format!("gzip: {e}"))?;
    let gzipped = gz.finish().map_err(|e| format!("gzip: {e}"))?;
    let layer = write_blob(layout, MediaType::ImageLayerGzip, &gzipped)?;

    let config = ConfigBuilder::default()
        .user(USER)
        .entrypoint(vec![ENTRYPOINT.to_owned()])
        .cmd(vec![CMD.to_owned()])
        .labels(labels(meta, false))
        .build()
        .map_err(|e| e.to_string())?;
    let image_config = ImageConfigurationBuilder::default()
        .created(meta.created.clone())
        .architecture(platform.arch())
        .os(Os::Linux)
        .config(config)
        .rootfs(
            RootFsBuilder::default()
                .typ("layers")
                .diff_ids(vec![diff_id])
                .build()
                .map_err(|e| e.to_string())?,
        )
        .history(vec![
            HistoryBuilder::default()
                .created(meta.created.clone())
                .created_by(format!("cargo xtask image --platform {}", platform.name()))
                .comment("usersync, CA roots, passwd and group; see the Dockerfile")
                .build()
                .map_err(|e| e.to_string())?,
        ])
        .build()
        .map_err(|e| e.to_string())?;
    let config = write_json_blob(layout, MediaType::ImageConfig, &image_config)?;

    let manifest = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(config)
        .layers(vec![layer.clone()])
        .build()
        .map_err(|e| e.to_string())?;
    let mut descriptor = write_json_blob(layout, MediaType::ImageManifest, &manifest)?;
    descriptor.set_platform(Some(
        PlatformBuilder::default()
            .architecture(platform.arch())
            .os(Os::Linux)
            .build()
            .map_err(|e| e.to_string())?,
    ));
    Ok(Built {
        platform,
        manifest: descriptor,
        binary_size: binary_bytes.len() as u64,
        layer_size: layer.size(),
    })
}

/// The OCI labels; with `created`, the same set as index annotations.
fn labels(meta: &Metadata, created: bool) -> HashMap<String, String> {
    let mut labels = HashMap::from([
        (ANNOTATION_VERSION.to_owned(), meta.version.clone()),
        (ANNOTATION_REVISION.to_owned(), meta.revision.clone()),
    ]);
    if let Some(source) = &meta.source {
        labels.insert(ANNOTATION_SOURCE.to_owned(), source.clone());
    }
    if created {
        labels.insert(ANNOTATION_CREATED.to_owned(), meta.created.clone());
    }
    labels
}

/// The index over the platforms' manifests, and `index.json` naming it by the version, as
/// `crane push`, `skopeo copy oci:…` and `podman load` expect.
fn write_layout(layout: &Path, built: &[Built], meta: &Metadata) -> Result<Descriptor, String> {
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(built.iter().map(|b| b.manifest.clone()).collect::<Vec<_>>())
        .annotations(labels(meta, true))
        .build()
        .map_err(|e| e.to_string())?;
    let mut descriptor = write_json_blob(layout, MediaType::ImageIndex, &index)?;
    descriptor.set_annotations(Some(HashMap::from([(
        ANNOTATION_REF_NAME.to_owned(),
        meta.version.clone(),
    )])));
    let top = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(vec![descriptor.clone()])
        .build()
        .map_err(|e| e.to_string())?;
    write_file(&layout.join("index.json"), &canonical_json(&top)?)?;
    let header = OciLayoutBuilder::default()
        .image_layout_version("1.0.0")
        .build()
        .map_err(|e| e.to_string())?;
    write_file(&layout.join("oci-layout"), &canonical_json(&header)?)?;
    Ok(descriptor)
}

/// A file of the layer: path without the leading `/`, mode, owner, contents (`None`: directory).
type Entry<'a> = (&'a str, u32, u64, Option<&'a [u8]>);

/// The image's one layer, uncompressed. Everything is root's and read-only but the binary runs;
/// the user exists only in passwd and group, so the root filesystem can stay read-only.
fn layer_tar(binary: &[u8], ca: &[u8], mtime: u64) -> Result<Vec<u8>, String> {
    let passwd = fs::read(root().join("image/passwd")).map_err(|e| format!("image/passwd: {e}"))?;
    let group = fs::read(root().join("image/group")).map_err(|e| format!("image/group: {e}"))?;
    if !String::from_utf8_lossy(&passwd).contains(&format!("nonroot:x:{NONROOT}:{NONROOT}:")) {
        return Err("image/passwd lacks the nonroot user 65532".to_owned());
    }
    let entries: [Entry; 7] = [
        ("etc/", 0o755, 0, None),
        ("etc/group", 0o644, 0, Some(&group)),
        ("etc/passwd", 0o644, 0, Some(&passwd)),
        ("etc/ssl/", 0o755, 0, None),
        ("etc/ssl/certs/", 0o755, 0, None),
        ("etc/ssl/certs/ca-certificates.crt", 0o644, 0, Some(ca)),
        ("usersync", 0o755, 0, Some(binary)),
    ];
    write_tar(&entries, mtime)
}

/// A tar with the given entries in order, every header fixed (no host uid, name or time).
fn write_tar(entries: &[Entry], mtime: u64) -> Result<Vec<u8>, String> {
    let mut tar = tar::Builder::new(Vec::new());
    for &(path, mode, owner, data) in entries {
        let mut header = tar::Header::new_ustar();
        header
            .set_path(path)
            .map_err(|e| format!("tar path {path}: {e}"))?;
        header.set_mode(mode);
        header.set_uid(owner);
        header.set_gid(owner);
        header.set_mtime(mtime);
        header.set_entry_type(match data {
            Some(_) => tar::EntryType::Regular,
            None => tar::EntryType::Directory,
        });
        header.set_size(data.map_or(0, |d| d.len() as u64));
        header.set_cksum();
        tar.append(&header, data.unwrap_or_default())
            .map_err(|e| format!("tar {path}: {e}"))?;
    }
    tar.into_inner().map_err(|e| format!("tar: {e}"))
}

/// The layout as one tar: `oci-layout`, `index.json`, then the blobs in name order.
fn write_archive(layout: &Path, archive: &Path, mtime: u64) -> Result<(), String> {
    let blobs = layout.join("blobs/sha256");
    let mut names: Vec<String> = fs::read_dir(&blobs)
        .map_err(|e| format!("cannot list {}: {e}", blobs.display()))?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()
        .map_err(|e| format!("cannot list {}: {e}", blobs.display()))?;
    names.sort();
    let mut files = vec!["oci-layout".to_owned(), "index.json".to_owned()];
    files.extend(names.iter().map(|n| format!("blobs/sha256/{n}")));
    let contents = files
        .iter()
        .map(|f| fs::read(layout.join(f)).map_err(|e| format!("cannot read {f}: {e}")))
        .collect::<Result<Vec<_>, _>>()?;
    let mut entries: Vec<Entry> = vec![
        ("blobs/", 0o755, 0, None),
        ("blobs/sha256/", 0o755, 0, None),
    ];
    entries.extend(
        files
            .iter()
            .zip(&contents)
            .map(|(f, c)| (f.as_str(), 0o644, 0, Some(c.as_slice()))),
    );
    write_file(archive, &write_tar(&entries, mtime)?)
}

/// JSON with every object's keys sorted: oci-spec keeps labels in a HashMap, whose order changes
/// from run to run, and a digest must not.
fn canonical_json<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let mut value = serde_json::to_value(value).map_err(|e| format!("json: {e}"))?;
    value.sort_all_objects();
    serde_json::to_vec(&value).map_err(|e| format!("json: {e}"))
}

fn write_json_blob<T: Serialize>(
    layout: &Path,
    media_type: MediaType,
    value: &T,
) -> Result<Descriptor, String> {
    write_blob(layout, media_type, &canonical_json(value)?)
}

/// Stores `bytes` under their digest and describes them.
fn write_blob(layout: &Path, media_type: MediaType, bytes: &[u8]) -> Result<Descriptor, String> {
    let hex = sha256_hex(bytes);
    write_file(&layout.join("blobs/sha256").join(&hex), bytes)?;
    let digest = Sha256Digest::from_str(&hex).map_err(|e| e.to_string())?;
    DescriptorBuilder::default()
        .media_type(media_type)
        .digest(digest)
        .size(bytes.len() as u64)
        .build()
        .map_err(|e| e.to_string())
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn remove_dir(path: &Path) -> Result<(), String> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(format!("cannot remove {}: {e}", path.display()))
        }
        _ => Ok(()),
    }
}
