//! `usersync run`: the operator, as its Deployment runs it.

use crate::directory::read::ReadOptions;

use super::exit::Failure;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(clap::Args)]
pub struct RunArgs {
    /// Watch only these namespaces (repeat the flag or separate with commas; default: all).
    #[arg(long = "namespace", env = "USERSYNC_NAMESPACES", value_delimiter = ',')]
    namespaces: Vec<String>,
    /// Tasks synchronized at the same time.
    #[arg(long, default_value_t = 4, env = "USERSYNC_CONCURRENCY")]
    concurrency: u16,
    /// UserGroups written at the same time within one run.
    #[arg(long, default_value_t = 8, env = "USERSYNC_WRITE_CONCURRENCY")]
    write_concurrency: usize,
    /// Push feeds held open at the same time (one connection each); tasks past the limit run on
    /// their schedule.
    #[arg(long, default_value_t = 100, env = "USERSYNC_MAX_PUSH_FEEDS")]
    max_push_feeds: usize,
    /// How often an open push feed checks that its server still answers; one that does not
    /// within the task's operation timeout is reconnected.
    #[arg(long, default_value_t = 30, env = "USERSYNC_PUSH_KEEP_ALIVE_SECONDS")]
    push_keep_alive_seconds: u64,
    /// UserGroup writes per second across all runs (0: no limit), to spare a busy apiserver.
    #[arg(long, default_value_t = 0, env = "USERSYNC_WRITE_RATE")]
    write_rate: u32,
    /// Ask Active Directory for members in explicit ranges of this size.
    #[arg(long, value_name = "N")]
    member_range: Option<usize>,
    /// Namespaces whose Secrets and ConfigMaps runs may read (repeat or separate with commas;
    /// `*`: any). A task or connection that names one elsewhere is refused with a condition.
    #[arg(
        long = "secret-namespace",
        env = "USERSYNC_SECRET_NAMESPACES",
        value_delimiter = ',',
        default_value = "*"
    )]
    secret_namespaces: Vec<String>,
    /// Namespace of a ClusterDirectoryConnection's Secrets when it names none (default: the
    /// operator's own, from POD_NAMESPACE).
    #[arg(long, env = "USERSYNC_CONNECTION_NAMESPACE")]
    connection_namespace: Option<String>,
    /// Which tasks may name a server of their own instead of a connection: `allowed-by-secret`
    /// (those whose credentials Secret lists the server's URLs), `any` (also anonymous binds
    /// to any address), `none` (connections only).
    #[arg(long, default_value = "allowed-by-secret", env = "USERSYNC_INLINE_SERVERS",
          value_parser = ["allowed-by-secret", "any", "none"])]
    inline_servers: String,
    /// Seconds between checks of a connection that works (a broken one is checked sooner).
    #[arg(long, default_value_t = 300, env = "USERSYNC_CONNECTION_CHECK_SECONDS")]
    connection_check_seconds: u64,
    /// Seconds between checks of a task's Secrets for rotation.
    #[arg(long, default_value_t = 60, env = "USERSYNC_REFERENCE_POLL_SECONDS")]
    reference_poll_seconds: u64,
    /// Bytes of members one UserGroup object holds before shards continue the list.
    #[arg(long, hide = true, default_value_t = crate::planner::shard::DEFAULT_SHARD_BYTES,
          value_parser = clap::value_parser!(usize))]
    shard_bytes: usize,
    /// Namespace of the leader-election Lease; set it to run several replicas safely.
    #[arg(long, env = "USERSYNC_LEADER_ELECTION_NAMESPACE")]
    leader_election_namespace: Option<String>,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = "usersync-leader", env = "USERSYNC_LEASE_NAME")]
    lease_name: String,
    /// Seconds a leader's lease lasts unrenewed: a standby takes over this long after the
    /// leader's last renewal, and the leader stops writing a sixth of it before then.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=3600),
          env = "USERSYNC_LEASE_DURATION_SECONDS")]
    lease_duration_seconds: u64,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:8080", env = "USERSYNC_LISTEN")]
    listen: std::net::SocketAddr,
    /// Log format.
    #[arg(long, value_enum, default_value = "json", env = "USERSYNC_LOG_FORMAT")]
    pub log_format: LogFormat,
}

/// Runs the operator until it is asked to stop (then exit 0) or stops on its own: a lost leader
/// lease or a failed election ends it with exit 1, so that its pod shows an error and restarts.
pub async fn run(args: RunArgs) -> Result<(), Failure> {
    let RunArgs {
        namespaces,
        concurrency,
        write_concurrency,
        max_push_feeds,
        push_keep_alive_seconds,
        write_rate,
        member_range,
        reference_poll_seconds,
        shard_bytes,
        secret_namespaces,
        connection_namespace,
        inline_servers,
        connection_check_seconds,
        leader_election_namespace,
        lease_name,
        lease_duration_seconds,
        listen,
        log_format: _,
    } = args;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("cannot reach Kubernetes: {e}"))?;
    let options = crate::controller::Options {
        // The chart passes an empty value for "all namespaces".
        namespaces: namespaces
            .into_iter()
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .collect(),
        concurrency,
        read: ReadOptions {
            member_range,
            progress: None,
        },
        reference_poll: std::time::Duration::from_secs(reference_poll_seconds),
        references: reference_policy(secret_namespaces, connection_namespace, &inline_servers),
        connection_check: std::time::Duration::from_secs(connection_check_seconds.max(1)),
        shard_bytes: shard_bytes.clamp(1_000, crate::planner::shard::DEFAULT_SHARD_BYTES),
        write_concurrency,
        max_push_feeds,
        push_keep_alive: std::time::Duration::from_secs(push_keep_alive_seconds.max(1)),
        write_rate: std::num::NonZeroU32::new(write_rate),
        listen: Some(listen),
        leader_election: leader_election_namespace
            .filter(|n| !n.trim().is_empty())
            .map(|namespace| crate::controller::leader::LeaderElection {
                namespace,
                lease_name,
                identity: std::env::var("POD_NAME")
                    .or_else(|_| std::env::var("HOSTNAME"))
                    .unwrap_or_else(|_| format!("usersync-{}", std::process::id())),
                lease_duration: std::time::Duration::from_secs(lease_duration_seconds),
            }),
    };
    crate::controller::serve(client, options)
        .await
        .map_err(|stopped| Failure::no(stopped.to_string()))
}

/// Where runs may read Secrets and ConfigMaps; the operator enforces who may use what.
fn reference_policy(
    secret_namespaces: Vec<String>,
    connection_namespace: Option<String>,
    inline_servers: &str,
) -> crate::run::resolve::Policy {
    use crate::run::resolve::InlineServers;
    let listed: Vec<String> = secret_namespaces
        .into_iter()
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty())
        .collect();
    let connection_namespace = connection_namespace
        .filter(|n| !n.trim().is_empty())
        .or_else(|| std::env::var("POD_NAMESPACE").ok())
        .unwrap_or_else(|| "usersync-system".to_owned());
    crate::run::resolve::Policy {
        secret_namespaces: (!listed.iter().any(|n| n == "*")).then_some(listed),
        connection_namespace,
        inline_servers: match inline_servers {
            "any" => InlineServers::Any,
            "none" => InlineServers::None,
            _ => InlineServers::AllowedBySecret,
        },
        enforce: true,
    }
}
