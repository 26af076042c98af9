//! A TCP proxy on 127.0.0.1 in front of a real server, which can cut every connection after a
//! given number of bytes from the server (a deterministic failure in the middle of a read) or a
//! given time after it opens (a server that ends every session at once), cut or stall the open
//! ones, and counts the connections made through it. TLS passes through it untouched. Its loops
//! are bounded in connections and time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_CONNECTIONS: usize = 200;
const LIFETIME: Duration = Duration::from_secs(300);

pub struct CutProxy {
    pub port: u16,
    /// Bytes from the server a new connection may pass before it is cut; negative: no limit.
    budget: Arc<AtomicI64>,
    /// Milliseconds a new connection lives before it is cut; negative: no limit.
    lifetime_ms: Arc<AtomicI64>,
    /// Connections accepted so far.
    connections: Arc<AtomicI64>,
    /// The most bytes from the server any connection has passed.
    largest: Arc<AtomicI64>,
    /// Bumped to close every open connection, or (negative) to stop them forwarding.
    cuts: tokio::sync::watch::Sender<i64>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl CutProxy {
    /// Connections opened from now on are cut after `bytes` from the server (negative: never).
    pub fn cut_after(&self, bytes: i64) {
        self.budget.store(bytes, Ordering::SeqCst);
    }

    /// Closes every connection open now, as a server that restarts does.
    pub fn cut_open(&self) {
        self.cuts.send_modify(|n| *n = n.abs() + 1);
    }

    /// Open connections stop passing anything, in either direction, without closing: a server
    /// or network that hangs.
    pub fn stall_open(&self) {
        self.cuts.send_modify(|n| *n = -(n.abs() + 1));
    }

    /// The most bytes the server has sent on one connection (a whole read's, once one was done).
    /// Cuts each connection opened from now on `after` it opened.
    pub fn close_after(&self, after: Duration) {
        let ms = i64::try_from(after.as_millis()).unwrap_or(i64::MAX);
        self.lifetime_ms.store(ms, Ordering::SeqCst);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> i64 {
        self.connections.load(Ordering::SeqCst)
    }

    pub fn largest_connection_bytes(&self) -> i64 {
        self.largest.load(Ordering::SeqCst)
    }
}

/// A proxy in front of the server an `ldaps://host:port` URL names, and the URL that goes through
/// it.
pub async fn in_front_of(url: &str) -> (CutProxy, String) {
    let proxy = start(address_of(url)).await;
    let through = format!("ldaps://127.0.0.1:{}", proxy.port);
    (proxy, through)
}

/// The address an `ldaps://host:port` URL names.
pub fn address_of(url: &str) -> SocketAddr {
    let address = url.trim_start_matches("ldaps://").trim_end_matches('/');
    address.parse().expect("host:port")
}

pub async fn start(target: SocketAddr) -> CutProxy {
    start_at(target, 0).await
}

/// A proxy on `port` of 127.0.0.1 (0: any free one): the same address again after a proxy was
/// dropped, as a server that comes back.
pub async fn start_at(target: SocketAddr, port: u16) -> CutProxy {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let budget = Arc::new(AtomicI64::new(-1));
    let lifetime_ms = Arc::new(AtomicI64::new(-1));
    let connections = Arc::new(AtomicI64::new(0));
    let largest = Arc::new(AtomicI64::new(0));
    let (budgets, largests) = (budget.clone(), largest.clone());
    let (lifetimes, accepted) = (lifetime_ms.clone(), connections.clone());
    let (cuts, _) = tokio::sync::watch::channel(0i64);
    let cut_signals = cuts.clone();
    let server = tokio::spawn(async move {
        let serve = async {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                accepted.fetch_add(1, Ordering::SeqCst);
                let limit = budgets.load(Ordering::SeqCst);
                let cut = cut_signals.subscribe();
                let lifetime = u64::try_from(lifetimes.load(Ordering::SeqCst))
                    .map_or(LIFETIME, Duration::from_millis);
                let forwarding = forward(client, target, limit, largests.clone(), cut);
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(lifetime, forwarding).await;
                });
            }
        };
        let _ = tokio::time::timeout(LIFETIME, serve).await;
    });
    CutProxy {
        port,
        budget,
        lifetime_ms,
        connections,
        largest,
        cuts,
        server,
    }
}

/// How a forwarded connection ended.
enum Ended {
    Done,
    Cut,
    Stalled,
}

async fn forward(
    client: TcpStream,
    target: SocketAddr,
    limit: i64,
    largest: Arc<AtomicI64>,
    mut cut: tokio::sync::watch::Receiver<i64>,
) {
    let Ok(server) = TcpStream::connect(target).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let upstream = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
    };
    let downstream = async {
        let mut passed: i64 = 0;
        let mut buffer = vec![0u8; 16 * 1024];
        while let Ok(n) = server_read.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            let allowed = if limit < 0 {
                n
            } else {
                n.min(usize::try_from(limit - passed).unwrap_or(0))
            };
            if client_write.write_all(&buffer[..allowed]).await.is_err() {
                break;
            }
            passed += allowed as i64;
            largest.fetch_max(passed, Ordering::SeqCst);
            if allowed < n {
                break;
            }
        }
    };
    cut.mark_unchanged();
    let signal = async {
        match cut.changed().await {
            Ok(()) if *cut.borrow() < 0 => Ended::Stalled,
            Ok(()) => Ended::Cut,
            // The proxy is gone; its connections run out their lifetime.
            Err(_) => std::future::pending().await,
        }
    };
    // Whichever direction ends first ends the connection: a cut closes both sides.
    let ended = tokio::time::timeout(LIFETIME, async {
        tokio::select! {
            () = upstream => Ended::Done,
            () = downstream => Ended::Done,
            ended = signal => ended,
        }
    })
    .await;
    if let Ok(Ended::Stalled) = ended {
        // The sockets stay open and nothing passes.
        tokio::time::sleep(LIFETIME).await;
    }
}
