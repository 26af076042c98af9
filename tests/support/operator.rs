//! The operator under test: in-process, as `usersync run` runs it, or the real binary in a process
//! of its own; and its HTTP endpoint.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::{Mutex, MutexGuard};
use usersync::controller::leader::LeaderElection;
use usersync::planner::shard::DEFAULT_SHARD_BYTES;

/// See [`take_turn`].
static TURNS: Mutex<()> = Mutex::const_new(());

/// Held for the whole test by the tests that must not overlap each other (the rest of their binary
/// still runs alongside): the 50,000-member sync keeps the machine and the apiserver busy for a
/// while, and the leader-election test's 4 s Lease passes to the standby when its leader's renewal
/// is a second late.
pub async fn take_turn() -> MutexGuard<'static, ()> {
    TURNS.lock().await
}

/// What a test varies in the operator it runs in-process; [`InProcess::start`] turns it into the
/// controller's own options.
pub struct InProcess {
    /// The namespaces watched.
    pub namespaces: Vec<String>,
    /// Tasks synchronized at once.
    pub concurrency: u16,
    pub shard_bytes: usize,
    pub write_rate: Option<NonZeroU32>,
    /// Where the health and metrics endpoints are served.
    pub listen: Option<SocketAddr>,
    pub leader_election: Option<LeaderElection>,
    /// Where ClusterDirectoryConnections keep their Secrets when they name no namespace.
    pub connection_namespace: String,
    /// The namespaces whose Secrets and ConfigMaps may be read; `None`: any.
    pub secret_namespaces: Option<Vec<String>>,
    /// How often a working connection is checked.
    pub connection_check: Duration,
    /// Which tasks may name a server of their own.
    pub inline_servers: usersync::run::resolve::InlineServers,
    /// Push feeds open at once (none unless a test asks: a pushed run would come between the runs
    /// a test asks for and counts).
    pub max_push_feeds: usize,
    /// How often an open push feed checks its server.
    pub push_keep_alive: Duration,
}

impl InProcess {
    /// Watching `ns` only, two tasks at a time, the default shard size, no endpoints and no leader
    /// election.
    pub fn watching(ns: &str) -> InProcess {
        InProcess {
            namespaces: vec![ns.to_owned()],
            concurrency: 2,
            shard_bytes: DEFAULT_SHARD_BYTES,
            write_rate: None,
            listen: None,
            leader_election: None,
            connection_namespace: ns.to_owned(),
            secret_namespaces: None,
            connection_check: Duration::from_secs(300),
            inline_servers: Default::default(),
            // Runs happen when a test asks for them; the push tests open feeds.
            max_push_feeds: 0,
            push_keep_alive: Duration::from_secs(30),
        }
    }

    /// Runs the controller on `client`, with quick polling for tests, until the handle is aborted.
    /// The only place the tests call into the controller: a change to its entry point or options
    /// changes this function alone.
    pub fn start(self, client: &kube::Client) -> tokio::task::JoinHandle<()> {
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("usersync=debug,kube_runtime=info,kube_lease_manager=info")
            .try_init();
        let options = usersync::controller::Options {
            namespaces: self.namespaces,
            concurrency: self.concurrency,
            read: Default::default(),
            reference_poll: Duration::from_secs(1),
            references: usersync::run::resolve::Policy {
                connection_namespace: self.connection_namespace,
                secret_namespaces: self.secret_namespaces,
                inline_servers: self.inline_servers,
                enforce: true,
            },
            connection_check: self.connection_check,
            shard_bytes: self.shard_bytes,
            write_concurrency: 4,
            max_push_feeds: self.max_push_feeds,
            push_keep_alive: self.push_keep_alive,
            write_rate: self.write_rate,
            listen: self.listen,
            leader_election: self.leader_election,
        };
        let client = client.clone();
        tokio::spawn(async move {
            let _ = usersync::controller::serve(client, options).await;
        })
    }
}

/// The operator watching `ns`.
pub fn start_operator(client: &kube::Client, ns: &str) -> tokio::task::JoinHandle<()> {
    InProcess::watching(ns).start(client)
}

/// The operator with a smaller shard size (so tests see shards without huge groups) and, with
/// `listen`, its health and metrics endpoints.
pub fn start_operator_with(
    client: &kube::Client,
    ns: &str,
    shard_bytes: usize,
    listen: Option<SocketAddr>,
) -> tokio::task::JoinHandle<()> {
    let mut operator = InProcess::watching(ns);
    operator.shard_bytes = shard_bytes;
    operator.listen = listen;
    operator.start(client)
}

/// `usersync run --namespace ns` with `args`, the real binary in a process of its own, killed when
/// the handle drops. It logs at `rust_log` to a file, returned with it: a pipe nobody reads would
/// fill up and block the operator.
pub fn spawn_operator(ns: &str, args: &[&str], rust_log: &str) -> (tokio::process::Child, PathBuf) {
    spawn_replica(ns, "operator", args, rust_log, &[])
}

/// The same as a replica of its own (`name` tells its log file apart) with `envs` set. Like the
/// in-process operator it opens no push feeds unless `args` or `envs` ask for them: a pushed run
/// would come between the runs a test asks for and counts.
pub fn spawn_replica(
    ns: &str,
    name: &str,
    args: &[&str],
    rust_log: &str,
    envs: &[(&str, &str)],
) -> (tokio::process::Child, PathBuf) {
    let log_path = std::env::temp_dir().join(format!("{ns}-{name}.log"));
    let log = std::fs::File::create(&log_path).expect("log file");
    let operator = tokio::process::Command::new(env!("CARGO_BIN_EXE_usersync"))
        .args(["run", "--namespace", ns])
        .args(args)
        .env("USERSYNC_MAX_PUSH_FEEDS", "0")
        // As the chart runs it: a backtrace of a panic the hostile servers provoke (and the read
        // catches) would load the debug binary's symbols, a hundred MiB the memory bounds would
        // count.
        .env("RUST_BACKTRACE", "0")
        .envs(envs.iter().copied())
        .env("RUST_LOG", rust_log)
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("usersync run starts");
    (operator, log_path)
}

/// GET `path` from the operator's HTTP endpoint: (status line, body).
pub async fn http_get(addr: SocketAddr, path: &str) -> (String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("operator HTTP answers");
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut response = String::new();
    stream
        .read_to_string(&mut response)
        .await
        .expect("response read");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (
        head.lines().next().unwrap_or_default().to_owned(),
        body.to_owned(),
    )
}

/// A loopback address with a port nothing listens on now.
pub fn free_local_addr() -> SocketAddr {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    ([127, 0, 0, 1], port).into()
}

/// The value of one series (`name` with its labels, as exposed) on the operator's `/metrics`; 0
/// when the series does not exist yet.
pub async fn metric(addr: SocketAddr, series: &str) -> f64 {
    let (_, body) = http_get(addr, "/metrics").await;
    body.lines()
        .find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}
