//! `usersync version`: what this build is.

use serde::Serialize;

use super::exit::Failure;
use super::output::{self, Format};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Version {
    pub version: &'static str,
    /// The git commit the binary was built from (`-dirty` with uncommitted changes), or
    /// `unknown` outside a git checkout.
    pub commit: &'static str,
    /// The API group and version of the resources it serves.
    pub api_version: &'static str,
}

pub const VERSION: Version = Version {
    version: env!("CARGO_PKG_VERSION"),
    commit: env!("USERSYNC_COMMIT"),
    api_version: "usersync.io/v1alpha1",
};

pub fn print(format: Format) -> Result<(), Failure> {
    output::print(format, &VERSION, |v| {
        format!(
            "usersync {} (commit {}, {})\n",
            v.version, v.commit, v.api_version
        )
    })?;
    Ok(())
}
