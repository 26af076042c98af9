//! The CRDs, the plain manifests and the Helm chart say the same thing, the chart refuses bad values;
//! the source keeps its layers; the Argo CD customization passes its tests and GitOps tools read the
//! README's table from it; the image is what the Dockerfile describes.

mod image;

use std::process::Command;

/// Only the support modules these tests use: each binary declares its own, so nothing is unused.
#[path = "../support"]
mod support {
    pub mod gitops;
}

mod gitops;
mod rbac;

pub fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn every_copy_of_the_crds_is_current() {
    let generated = usersync::api::crds_yaml().expect("CRDs render");
    for copy in [
        "crds/usersync.io.yaml",
        "charts/usersync/crds/usersync.io.yaml",
        "deploy/01-crds.yaml",
    ] {
        assert!(
            read(copy) == generated,
            "{copy} is stale; regenerate it with `cargo run -- crd -o {copy}`"
        );
    }
}

/// How `deploy/02-operator.yaml` is rendered: the chart's defaults, labelled for kubectl, not Helm.
const PLAIN_MANIFESTS: [&str; 7] = [
    "template",
    "usersync",
    "charts/usersync",
    "--namespace",
    "usersync-system",
    "--set",
    "plainManifests=true",
];

/// `helm` with these arguments, run at the repository root.
fn helm(args: &[&str]) -> std::process::Output {
    Command::new("helm")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("helm runs (it is on PATH in the test bed)")
}

#[test]
fn plain_manifests_are_the_rendered_chart() {
    let out = helm(&PLAIN_MANIFESTS);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout) == read("deploy/02-operator.yaml"),
        "deploy/02-operator.yaml is stale; regenerate it with `helm {} > deploy/02-operator.yaml`",
        PLAIN_MANIFESTS.join(" ")
    );
}

/// Objects applied with kubectl or a GitOps tool must not say Helm manages them, or Helm and
/// tools that trust the label would treat them as a release's.
#[test]
fn plain_manifests_do_not_claim_helm_manages_them() {
    let manifests = read("deploy/02-operator.yaml");
    for label in ["app.kubernetes.io/managed-by: Helm", "helm.sh/chart"] {
        assert!(
            !manifests.contains(label),
            "deploy/02-operator.yaml carries `{label}`"
        );
    }
    let kustomization = read("deploy/kustomization.yaml");
    for file in ["00-namespace.yaml", "01-crds.yaml", "02-operator.yaml"] {
        assert!(
            kustomization.contains(&format!("- {file}")),
            "deploy/kustomization.yaml does not list {file}"
        );
    }
    // A task in deploy/ would be created by every application pointed at it.
    let entries = std::fs::read_dir(format!("{}/deploy", env!("CARGO_MANIFEST_DIR")))
        .expect("deploy/ is readable");
    for entry in entries {
        let name = entry.expect("entry").file_name();
        assert!(
            name == "kustomization.yaml" || kustomization.contains(&*name.to_string_lossy()),
            "deploy/{} is not in deploy/kustomization.yaml",
            name.to_string_lossy()
        );
    }
}

/// The values schema refuses a wrong value and names it; the values it must accept pass.
#[test]
fn the_chart_refuses_bad_values_by_name() {
    let template = |value: &str| {
        helm(&[
            "template",
            "usersync",
            "charts/usersync",
            "--namespace",
            "usersync-system",
            "--set",
            value,
        ])
    };
    for (value, named) in [
        ("replicaCount=two", "/replicaCount"),
        ("logFormat=xml", "/logFormat"),
        ("concurrency=0", "/concurrency"),
        ("listen=localhost", "/listen"),
        (
            "podDisruptionBudget.minAvailable=half",
            "/podDisruptionBudget/minAvailable",
        ),
        (
            "metrics.serviceMonitor.interval=soon",
            "/metrics/serviceMonitor/interval",
        ),
        ("leaderElection.leaseNamme=x", "leaseNamme"),
        ("replicas=2", "replicas"),
    ] {
        let out = template(value);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "--set {value} was accepted");
        assert!(
            stderr.contains("schema") && stderr.contains(named),
            "--set {value}: the error does not name {named}: {stderr}"
        );
    }
    for value in [
        "replicaCount=3",
        "logFormat=text",
        "listen=[::]:9090",
        "memberRange=1500",
        "writeRate=200",
        "watchNamespaces={identity,hr}",
        "extraArgs={--log-format,text}",
        "podDisruptionBudget.maxUnavailable=50%",
        "metrics.serviceMonitor.enabled=true",
        "metrics.prometheusRule.enabled=true",
        "metrics.serviceMonitor.interval=30s",
        "rbac.aggregatedRoles.enabled=false",
        "readinessProbe=null",
    ] {
        let out = template(value);
        assert!(
            out.status.success(),
            "--set {value} was refused: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_chart_lints_clean() {
    let out = helm(&["lint", "--strict", "charts/usersync"]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// No two modules of `src/` import each other (a parent declaring a child is no import): shared
/// pieces go one level down instead.
#[test]
fn no_two_modules_import_each_other() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = layering::modules(&root);
    assert!(modules.len() > 40, "found {} modules", modules.len());
    let imports = layering::imports(&modules);
    let mut mutual = Vec::new();
    for (module, uses) in &imports {
        for other in uses {
            if module < other && imports.get(other).is_some_and(|u| u.contains(module)) {
                mutual.push(format!("{module} <-> {other}"));
            }
        }
    }
    assert!(
        mutual.is_empty(),
        "modules that import each other: {mutual:#?}"
    );
}

/// A reading of `use` paths good enough for this code base: `crate::`, `super::`, `self::` and
/// child-relative paths, with nested braces; code in `#[cfg(test)]` modules is left out.
mod layering {
    use std::collections::{BTreeMap, BTreeSet};
    use std::path::{Path, PathBuf};

    /// Module path (`run::report`) → file, for every module file under `root` except test modules.
    pub fn modules(root: &Path) -> BTreeMap<String, PathBuf> {
        let mut found = BTreeMap::new();
        let mut dirs = vec![root.to_path_buf()];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).expect("src is readable") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let relative = path.strip_prefix(root).expect("under src");
                let text = relative
                    .to_string_lossy()
                    .trim_end_matches(".rs")
                    .to_owned();
                let mut parts: Vec<&str> = text.split('/').collect();
                if matches!(parts.last(), Some(&("mod" | "lib" | "main"))) {
                    parts.pop();
                }
                if path.extension().is_some_and(|e| e == "rs") && parts.last() != Some(&"tests") {
                    found.insert(parts.join("::"), path);
                }
            }
        }
        found
    }

    /// The other modules each module imports from.
    pub fn imports(modules: &BTreeMap<String, PathBuf>) -> BTreeMap<String, BTreeSet<String>> {
        let mut all = BTreeMap::new();
        for (module, path) in modules {
            let text = std::fs::read_to_string(path).expect("module is readable");
            let code = text.split("#[cfg(test)]").next().unwrap_or_default();
            let mut uses = BTreeSet::new();
            for path in paths(code) {
                if let Some(target) = resolve(module, &path, modules)
                    && target != *module
                    && !target.starts_with(&format!("{module}::"))
                {
                    uses.insert(target);
                }
            }
            all.insert(module.clone(), uses);
        }
        all
    }

    /// Every path in `use` items (braces expanded) and every `crate::`/`super::` path in code.
    fn paths(code: &str) -> Vec<String> {
        let mut found = Vec::new();
        for item in code.split(';') {
            let item = item.trim_start();
            let item = item.strip_prefix("pub ").unwrap_or(item);
            let item = item.strip_prefix("pub(crate) ").unwrap_or(item);
            if let Some(tree) = item.strip_prefix("use ") {
                expand("", tree, &mut found);
            }
        }
        let bytes = code.as_bytes();
        for start in ["crate::", "super::"] {
            for (at, _) in code.match_indices(start) {
                if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_') {
                    continue;
                }
                let end = code[at..]
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
                    .map_or(code.len(), |n| at + n);
                found.push(code[at..end].trim_end_matches(':').to_owned());
            }
        }
        found
    }

    /// `prefix` + a use tree such as `a::{b, c::{d, e}}`, one path per leaf.
    fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
        let tree: String = tree.split_whitespace().collect::<Vec<_>>().join(" ");
        match tree.find('{') {
            None => {
                let leaf = tree.split(" as ").next().unwrap_or_default().trim();
                out.push(format!("{prefix}{leaf}"));
            }
            Some(open) => {
                let head = &tree[..open];
                let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
                let mut depth = 0;
                let mut piece = String::new();
                for c in inner.chars().chain(std::iter::once(',')) {
                    match c {
                        '{' => depth += 1,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            let part = piece.trim();
                            if !part.is_empty() && part != "self" {
                                expand(&format!("{prefix}{head}"), part, out);
                            } else if part == "self" {
                                out.push(format!("{prefix}{}", head.trim_end_matches("::")));
                            }
                            piece.clear();
                            continue;
                        }
                        _ => {}
                    }
                    piece.push(c);
                }
            }
        }
    }

    /// The longest module that `path`, written in `module`, names.
    fn resolve(module: &str, path: &str, modules: &BTreeMap<String, PathBuf>) -> Option<String> {
        let mut segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        let mut base: Vec<&str> = if module.is_empty() {
            Vec::new()
        } else {
            module.split("::").collect()
        };
        match segments.first() {
            Some(&"crate") => {
                base.clear();
                segments.remove(0);
            }
            Some(&"self") => {
                segments.remove(0);
            }
            Some(&"super") => {
                while segments.first() == Some(&"super") {
                    base.pop();
                    segments.remove(0);
                }
            }
            Some(first) if modules.contains_key(&join(&base, &[first])) => {}
            _ => return None,
        }
        (1..=segments.len())
            .rev()
            .map(|n| join(&base, &segments[..n]))
            .chain(std::iter::once(base.join("::")))
            .find(|candidate| modules.contains_key(candidate))
    }

    fn join(base: &[&str], rest: &[&str]) -> String {
        base.iter()
            .chain(rest)
            .copied()
            .collect::<Vec<_>>()
            .join("::")
    }
}
