//! Which cluster and namespace a command talks to, with kubectl's flags: `--kubeconfig`,
//! `--context`, `-n`/`--namespace`. Installed as `kubectl-usersync`, kubectl passes them through.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};

#[derive(Clone, Debug, Default, clap::Args)]
pub struct KubeArgs {
    /// Path to the kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the pod's
    /// service account).
    #[arg(long, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
    /// Namespace of the tasks (default: the context's).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
}

impl KubeArgs {
    /// A client for the chosen cluster and context.
    pub async fn client(&self) -> Result<kube::Client, String> {
        let failed = |e: &dyn std::fmt::Display| format!("cannot reach Kubernetes: {e}");
        let options = KubeConfigOptions {
            context: self.context.clone(),
            ..Default::default()
        };
        let config = match (&self.kubeconfig, &self.context) {
            (Some(path), _) => {
                let file = Kubeconfig::read_from(path).map_err(|e| failed(&e))?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|e| failed(&e))?
            }
            (None, Some(_)) => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| failed(&e))?,
            (None, None) => kube::Config::infer().await.map_err(|e| failed(&e))?,
        };
        kube::Client::try_from(config).map_err(|e| failed(&e))
    }

    /// The namespace given, else the context's.
    pub fn namespace_of(&self, client: &kube::Client) -> String {
        self.namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_owned())
    }
}
