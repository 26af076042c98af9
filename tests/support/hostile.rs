//! A hostile LDAP server on 127.0.0.1: it speaks just enough raw BER (bind, search, unbind) to be
//! taken for a directory, then misbehaves as its [`Mode`] says. Every loop in it is bounded in count
//! and in time, so a client that never gives up cannot keep it running past the test.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// How the server misbehaves in subtree searches (base searches of an entry always succeed).
#[derive(Clone, Copy, Debug)]
pub enum Mode {
    /// No misbehaviour: every subtree search ends at once, empty. With the binds it records, a
    /// rogue server that collects credentials.
    Quiet,
    /// One entry every `interval`, never the end of the search.
    Drip { interval: Duration },
    /// Entries as fast as the connection takes them, never the end of the search.
    Endless,
    /// One entry per page and always the same paging cookie, so there is always a next page.
    RepeatedCookie,
    /// `count` entries, then the connection closes mid-search.
    CloseAfter { count: usize },
    /// A good entry between bad ones: a DN that is not UTF-8, and an entry without a uid.
    BadEntries,
    /// An entry that declares a length of 4 GiB and then stops sending.
    HugeDeclaredLength,
    /// An entry with one 50 MB value.
    HugeValue,
    /// A search that ends with a paged-results control whose value is not BER.
    MalformedControl,
    /// A search refused with a diagnostic message of 100 KB.
    HugeErrorText,
    /// An Active Directory group whose member ranges always start again at 0.
    StuckRange,
    /// An Active Directory group whose second member range ends at the largest number there is.
    EndlessRange,
}

/// The group [`Mode::StuckRange`] and [`Mode::EndlessRange`] serve, with `range` members.
fn ranged_group(id: i64, range: &str) -> Vec<u8> {
    let attr = format!("member;{range}");
    search_entry(
        id,
        b"CN=Ranged,DC=example",
        &[
            ("objectClass", &[b"top", b"group"]),
            ("objectGUID", &[&[7u8; 16]]),
            ("cn", &[b"Ranged"]),
            (attr.as_str(), &[b"CN=u1,DC=example", b"CN=u2,DC=example"]),
        ],
    )
}

/// The diagnostic message of [`Mode::HugeErrorText`]: it ends in a marker a test can look for.
pub fn huge_error_text() -> String {
    format!(
        "{}END-OF-SERVER-TEXT",
        "the server explains at length; ".repeat(3300)
    )
}

/// Most connections, requests per connection and entries per search the server serves, and how
/// long it lives.
const MAX_CONNECTIONS: usize = 64;
const MAX_REQUESTS: usize = 100_000;
const MAX_ENTRIES: usize = 5_000_000;
const LIFETIME: Duration = Duration::from_secs(180);

pub struct Hostile {
    pub url: String,
    /// Subtree searches served, all connections together.
    pub searches: Arc<AtomicUsize>,
    /// Every bind received: (name, simple password) as sent.
    pub binds: Binds,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// The binds a server received, each as (name, simple password) in the bytes sent.
pub type Binds = Arc<Mutex<Vec<(Vec<u8>, Vec<u8>)>>>;

/// Starts a server in `mode` on a free port of 127.0.0.1.
pub async fn start(mode: Mode) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ldap://{}", listener.local_addr().expect("address"));
    let searches = Arc::new(AtomicUsize::new(0));
    let binds = Binds::default();
    let (counted, recorded) = (searches.clone(), binds.clone());
    let server = tokio::spawn(async move {
        let serve = async {
            for _ in 0..MAX_CONNECTIONS {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let seen = Seen {
                    searches: counted.clone(),
                    binds: recorded.clone(),
                };
                tokio::spawn(serve_connection(socket, mode, seen));
            }
        };
        let _ = tokio::time::timeout(LIFETIME, serve).await;
    });
    Hostile {
        url,
        searches,
        binds,
        server,
    }
}

/// What the server's connections record.
struct Seen {
    searches: Arc<AtomicUsize>,
    binds: Binds,
}

/// The name and simple password of a BindRequest's body (version, name, [0] password); a SASL
/// bind's credentials count as its password.
fn bind_credentials(body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let Some((_, _, rest)) = split_tlv(body) else {
        return (Vec::new(), Vec::new());
    };
    let Some((_, name, rest)) = split_tlv(rest) else {
        return (Vec::new(), Vec::new());
    };
    let password = split_tlv(rest)
        .map(|(_, p, _)| p.to_vec())
        .unwrap_or_default();
    (name.to_vec(), password)
}

async fn serve_connection(mut socket: TcpStream, mode: Mode, seen: Seen) {
    let Seen { searches, binds } = seen;
    let _ = tokio::time::timeout(LIFETIME, async {
        for _ in 0..MAX_REQUESTS {
            let Some((id, op, body)) = read_request(&mut socket).await else {
                return;
            };
            let answered = match op {
                // BindRequest: any credentials do, and are kept.
                0x60 => {
                    let credentials = bind_credentials(&body);
                    binds
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(credentials);
                    send(&mut socket, &message(id, &tlv(0x61, &result(0)), None)).await
                }
                // UnbindRequest.
                0x42 => return,
                // SearchRequest.
                0x63 => {
                    let (base, scope) = search_base_and_scope(&body);
                    let ranged = matches!(mode, Mode::StuckRange | Mode::EndlessRange);
                    if scope == 0 && ranged && base.starts_with(b"CN=Ranged") {
                        let range = match mode {
                            Mode::StuckRange => "range=0-1",
                            _ => "range=2-18446744073709551615",
                        };
                        send(&mut socket, &ranged_group(id, range)).await
                            && send(&mut socket, &search_done(id, None)).await
                    } else if scope == 0 {
                        base_search(&mut socket, id, &base).await
                    } else {
                        searches.fetch_add(1, Ordering::Relaxed);
                        subtree_search(&mut socket, id, &base, mode).await
                    }
                }
                // Abandon and anything else: no answer.
                _ => true,
            };
            if !answered {
                return;
            }
        }
    })
    .await;
}

async fn base_search(socket: &mut TcpStream, id: i64, base: &[u8]) -> bool {
    let entry = search_entry(id, base, &[("objectClass", &[b"top"])]);
    send(socket, &entry).await && send(socket, &search_done(id, None)).await
}

async fn subtree_search(socket: &mut TcpStream, id: i64, base: &[u8], mode: Mode) -> bool {
    let user = |n: usize| {
        let dn = format!("uid=u{n},{}", String::from_utf8_lossy(base));
        let uuid = format!("00000000-0000-0000-0000-{n:012}");
        search_entry(
            id,
            dn.as_bytes(),
            &[
                ("objectClass", &[b"inetOrgPerson", b"groupOfNames"]),
                ("uid", &[format!("u{n}").as_bytes()]),
                ("cn", &[format!("u{n}").as_bytes()]),
                ("entryUUID", &[uuid.as_bytes()]),
            ],
        )
    };
    match mode {
        Mode::Quiet => send(socket, &search_done(id, None)).await,
        Mode::Drip { interval } => {
            for n in 0..MAX_ENTRIES {
                if !send(socket, &user(n)).await {
                    return false;
                }
                tokio::time::sleep(interval).await;
            }
            false
        }
        Mode::Endless => {
            for n in 0..MAX_ENTRIES {
                if !send(socket, &user(n)).await {
                    return false;
                }
            }
            false
        }
        Mode::RepeatedCookie => {
            send(socket, &user(0)).await && send(socket, &search_done(id, Some(b"again"))).await
        }
        Mode::CloseAfter { count } => {
            for n in 0..count {
                if !send(socket, &user(n)).await {
                    return false;
                }
            }
            false
        }
        Mode::BadEntries => {
            let not_utf8 = search_entry(id, b"uid=\xff\xfe,dc=example", &[("uid", &[b"\xff"])]);
            let no_uid = search_entry(
                id,
                b"cn=nouid,dc=example",
                &[
                    ("objectClass", &[b"inetOrgPerson"]),
                    ("entryUUID", &[b"00000000-0000-0000-0000-00000000beef"]),
                ],
            );
            send(socket, &not_utf8).await
                && send(socket, &user(0)).await
                && send(socket, &no_uid).await
                && send(socket, &search_done(id, None)).await
        }
        Mode::HugeValue => {
            let value = vec![b'x'; 50 << 20];
            let entry = search_entry(
                id,
                b"uid=huge,dc=example",
                &[("uid", &[b"huge"]), ("description", &[&value])],
            );
            send(socket, &entry).await && send(socket, &search_done(id, None)).await
        }
        Mode::StuckRange | Mode::EndlessRange => {
            send(socket, &ranged_group(id, "range=0-1")).await
                && send(socket, &search_done(id, None)).await
        }
        Mode::HugeErrorText => {
            let text = huge_error_text();
            let refused = [tlv(0x0a, &[1]), tlv(0x04, b""), tlv(0x04, text.as_bytes())].concat();
            send(socket, &message(id, &tlv(0x65, &refused), None)).await
        }
        Mode::MalformedControl => {
            let done = tlv(0x65, &result(0));
            let control = tlv(
                0x30,
                &[
                    tlv(0x04, b"1.2.840.113556.1.4.319"),
                    tlv(0x04, b"\x30\x84garbage"),
                ]
                .concat(),
            );
            send(socket, &user(0)).await && send(socket, &message(id, &done, Some(&control))).await
        }
        Mode::HugeDeclaredLength => {
            // A SEQUENCE whose length says 4 GiB, followed by a few bytes and then silence.
            let mut start = vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff];
            start.extend(&tlv(0x02, &[1]));
            send(socket, &start).await;
            tokio::time::sleep(LIFETIME).await;
            false
        }
    }
}

async fn send(socket: &mut TcpStream, bytes: &[u8]) -> bool {
    socket.write_all(bytes).await.is_ok()
}

/// Reads one LDAPMessage: its id, the protocol operation's tag and that operation's contents.
async fn read_request(socket: &mut TcpStream) -> Option<(i64, u8, Vec<u8>)> {
    let (tag, body) = read_tlv(socket).await?;
    if tag != 0x30 {
        return None;
    }
    let (id_tag, id, rest) = split_tlv(&body)?;
    if id_tag != 0x02 {
        return None;
    }
    let id = id.iter().fold(0i64, |n, b| (n << 8) | i64::from(*b));
    let (op, contents, _) = split_tlv(rest)?;
    Some((id, op, contents.to_vec()))
}

async fn read_tlv(socket: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let tag = socket.read_u8().await.ok()?;
    let first = socket.read_u8().await.ok()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let mut len = 0usize;
        for _ in 0..(first & 0x7f).min(4) {
            len = (len << 8) | usize::from(socket.read_u8().await.ok()?);
        }
        len
    };
    // Requests are small; a client that claims more is not one this server talks to.
    if len > 1 << 20 {
        return None;
    }
    let mut body = vec![0; len];
    socket.read_exact(&mut body).await.ok()?;
    Some((tag, body))
}

/// The first element of `bytes`: tag, contents, and what follows.
fn split_tlv(bytes: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = bytes.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let count = usize::from(first & 0x7f);
        let (len_bytes, after) = rest.split_at_checked(count)?;
        rest = after;
        len_bytes
            .iter()
            .fold(0usize, |n, b| (n << 8) | usize::from(*b))
    };
    let (contents, after) = rest.split_at_checked(len)?;
    Some((tag, contents, after))
}

/// A SearchRequest's baseObject and scope.
fn search_base_and_scope(body: &[u8]) -> (Vec<u8>, u8) {
    let Some((_, base, rest)) = split_tlv(body) else {
        return (Vec::new(), 0);
    };
    let scope = split_tlv(rest)
        .and_then(|(_, scope, _)| scope.first().copied())
        .unwrap_or(0);
    (base.to_vec(), scope)
}

fn tlv(tag: u8, contents: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = contents.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        out.push(0x80 | (bytes.len() - skip) as u8);
        out.extend(&bytes[skip..]);
    }
    out.extend(contents);
    out
}

fn integer(value: i64) -> Vec<u8> {
    let bytes = value.to_be_bytes();
    let skip = bytes
        .windows(2)
        .take_while(|w| (w[0] == 0 && w[1] < 0x80) || (w[0] == 0xff && w[1] >= 0x80))
        .count();
    tlv(0x02, &bytes[skip..])
}

/// An LDAPResult's fields: resultCode, matchedDN, diagnosticMessage.
fn result(code: u8) -> Vec<u8> {
    [tlv(0x0a, &[code]), tlv(0x04, b""), tlv(0x04, b"")].concat()
}

fn message(id: i64, op: &[u8], controls: Option<&[u8]>) -> Vec<u8> {
    let mut body = [integer(id), op.to_vec()].concat();
    if let Some(controls) = controls {
        body.extend(tlv(0xa0, controls));
    }
    tlv(0x30, &body)
}

fn search_entry(id: i64, dn: &[u8], attrs: &[(&str, &[&[u8]])]) -> Vec<u8> {
    let attributes: Vec<u8> = attrs
        .iter()
        .flat_map(|(name, values)| {
            let values: Vec<u8> = values.iter().flat_map(|v| tlv(0x04, v)).collect();
            tlv(
                0x30,
                &[tlv(0x04, name.as_bytes()), tlv(0x31, &values)].concat(),
            )
        })
        .collect();
    let op = tlv(0x64, &[tlv(0x04, dn), tlv(0x30, &attributes)].concat());
    message(id, &op, None)
}

/// SearchResultDone, success, with a paged-results control carrying `cookie` when given.
fn search_done(id: i64, cookie: Option<&[u8]>) -> Vec<u8> {
    let done = tlv(0x65, &result(0));
    let control = cookie.map(|cookie| {
        let value = tlv(0x30, &[integer(0), tlv(0x04, cookie)].concat());
        tlv(
            0x30,
            &[tlv(0x04, b"1.2.840.113556.1.4.319"), tlv(0x04, &value)].concat(),
        )
    });
    message(id, &done, control.as_deref())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_and_lengths_are_minimal_ber() {
        assert_eq!(integer(0), [0x02, 0x01, 0x00]);
        assert_eq!(integer(128), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(integer(-1), [0x02, 0x01, 0xff]);
        assert_eq!(&tlv(0x04, &[0; 200])[..3], [0x04, 0x81, 200]);
        let encoded = tlv(0x04, b"abc");
        let (tag, contents, rest) = split_tlv(&encoded).expect("tlv");
        assert_eq!((tag, contents, rest), (0x04, &b"abc"[..], &b""[..]));
    }
}
