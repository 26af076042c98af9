//! The baseline: `bench/baseline/sync.py`, what a user would write with the `ldap3` and
//! `kubernetes` Python packages, run with the venv's interpreter.

use std::path::Path;
use std::process::Command;

use crate::measure::{Sample, time_command};
use crate::target::{Kind, Target};

pub fn run(
    python: &Path,
    script: &Path,
    target: &Target,
    namespace: &str,
    kubeconfig: &str,
) -> Result<Sample, String> {
    time_command(
        Command::new(python)
            .arg(script)
            .env("BASELINE_URL", &target.url)
            .env("BASELINE_CA", &target.ca_file)
            .env("BASELINE_BIND_DN", &target.bind)
            .env("BASELINE_PASSWORD", &target.password)
            .env("BASELINE_BASE_DN", target.base_dn())
            .env("BASELINE_NAMESPACE", namespace)
            .env("BASELINE_PAGE_SIZE", "1000")
            .env(
                "BASELINE_KIND",
                match target.kind {
                    Kind::OpenLdap => "openldap",
                    Kind::Samba => "ad",
                },
            )
            .env("KUBECONFIG", kubeconfig),
        |_| {},
    )
}
