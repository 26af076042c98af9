//! Push: a search the server keeps open and answers whenever something below the task's base DN
//! changes. OpenLDAP: syncrepl in refreshAndPersist mode (RFC 4533). 389 Directory Server:
//! persistent search. Active Directory: change notifications (LDAP_SERVER_NOTIFICATION_OID).
//!
//! A notification only says that something changed: what changed is read by the run it starts,
//! from the task's change feed (`delta`), so a notification missed while the connection was down
//! costs nothing but time, and the read stays the single source of what the snapshot holds.

use std::time::Duration;

use ldap3::controls::{
    MakeCritical, RawControl, RefreshMode, SyncInfo, SyncRequest, parse_syncinfo,
};
use ldap3::{Ldap, ResultEntry, Scope as LdapScope, SearchStream};

use tracing::debug;

use super::connect::{Connection, map_operation_error};
use super::delta::{
    Mark, Position, SHOW_DELETED_OID, SYNC_REQUEST_OID, base_entry, naming_context_of,
    syncrepl_position,
};
use super::error::DirectoryError;
use super::search::Query;
use crate::api::{DirectorySpec, ServerType};

/// Persistent search (draft-ietf-ldapext-psearch).
const PERSISTENT_SEARCH_OID: &str = "2.16.840.1.113730.3.4.3";
/// LDAP_SERVER_NOTIFICATION_OID (MS-ADTS 3.1.1.3.4.1.9).
const NOTIFICATION_OID: &str = "1.2.840.113556.1.4.528";
/// The persistent search's value: every change type (add 1, delete 2, modify 4, modDN 8), changes
/// only (no initial entries), no entry change controls — a SEQUENCE of INTEGER 15, TRUE, FALSE.
const PERSISTENT_SEARCH_VALUE: [u8; 11] = [
    0x30, 0x09, 0x02, 0x01, 0x0f, 0x01, 0x01, 0xff, 0x01, 0x01, 0x00,
];

/// Where a task's push search looks.
#[derive(Clone, Debug)]
pub struct Target {
    pub base_dn: String,
    pub active_directory: bool,
}

impl Target {
    /// The task's base DN, and whether its preset (or its server type's) is Active Directory's.
    pub fn of(spec: &DirectorySpec, server_type: ServerType) -> Result<Target, DirectoryError> {
        let mut spec = spec.clone();
        spec.preset.get_or_insert(server_type.default_preset());
        let query = Query::new(&spec, None)?;
        Ok(Target {
            base_dn: query.base_dn,
            active_directory: query.schema.active_directory,
        })
    }
}

/// How a server pushes its changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushKind {
    Syncrepl,
    PersistentSearch,
    ChangeNotification,
}

impl PushKind {
    /// The name status shows.
    pub fn as_str(self) -> &'static str {
        match self {
            PushKind::Syncrepl => "Syncrepl",
            PushKind::PersistentSearch => "PersistentSearch",
            PushKind::ChangeNotification => "ChangeNotification",
        }
    }
}

/// Which push the server offers, by its root DSE; `None` when it offers none.
pub async fn offered(
    conn: &mut Connection,
    active_directory: bool,
) -> Result<Option<PushKind>, DirectoryError> {
    let Some(root) = base_entry(conn, "", vec!["supportedControl"]).await? else {
        return Ok(None);
    };
    let controls = root.values("supportedControl");
    let supports = |oid: &str| controls.contains(&oid.as_bytes());
    // Active Directory first: Samba lists syncrepl's OID too, but answers it only partly.
    Ok(if active_directory && supports(NOTIFICATION_OID) {
        Some(PushKind::ChangeNotification)
    } else if !active_directory && supports(SYNC_REQUEST_OID) {
        Some(PushKind::Syncrepl)
    } else if supports(PERSISTENT_SEARCH_OID) {
        Some(PushKind::PersistentSearch)
    } else {
        None
    })
}

/// An open push search on its own connection.
pub struct Subscription {
    stream: SearchStream<'static, String, Vec<String>>,
    /// Active Directory: deleted objects leave the base for the naming context's Deleted Objects
    /// container, where a second notification search sees them arrive.
    deletions: Option<SearchStream<'static, String, Vec<String>>>,
    /// A second handle on the same connection, for the keep-alive.
    ldap: Ldap,
    server: String,
    timeout: Duration,
    pub kind: PushKind,
}

/// What the server pushed.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Something below the base DN changed.
    Changed,
    /// A message that reports no change (a new syncrepl cookie, the end of the refresh phase).
    Nothing,
}

/// Opens the push search below `base_dn`; it reports changes from now on.
pub async fn subscribe(
    conn: &mut Connection,
    base_dn: &str,
    kind: PushKind,
) -> Result<Subscription, DirectoryError> {
    let control = match kind {
        PushKind::Syncrepl => {
            // From the server's current cookie: the refresh phase then has nothing to send.
            let cookie = match syncrepl_position(conn, base_dn).await? {
                Some(Position {
                    mark: Mark::Syncrepl { cookie },
                    ..
                }) => cookie,
                _ => return Err(refused(conn, "syncrepl position")),
            };
            let request = SyncRequest {
                mode: RefreshMode::RefreshAndPersist,
                cookie: Some(cookie.into_bytes()),
                reload_hint: false,
            };
            vec![RawControl::from(request.critical())]
        }
        PushKind::PersistentSearch => vec![RawControl {
            ctype: PERSISTENT_SEARCH_OID.to_owned(),
            crit: true,
            val: Some(PERSISTENT_SEARCH_VALUE.to_vec()),
        }],
        PushKind::ChangeNotification => vec![
            RawControl {
                ctype: NOTIFICATION_OID.to_owned(),
                crit: true,
                val: None,
            },
            // Deletions too: a deleted object is reported as it moves to Deleted Objects.
            RawControl {
                ctype: SHOW_DELETED_OID.to_owned(),
                crit: true,
                val: None,
            },
        ],
    };
    let server = conn.server.clone();
    let stream = push_search(conn, base_dn, LdapScope::Subtree, control.clone()).await?;
    let deletions = match kind {
        PushKind::ChangeNotification => match deleted_objects_of(conn, base_dn).await? {
            // A bind that may not see deleted objects still gets every other change pushed;
            // deletions then wait for the next run.
            Some(container) => push_search(conn, &container, LdapScope::OneLevel, control)
                .await
                .inspect_err(|e| debug!(error = %e, "no push of deletions"))
                .ok(),
            None => None,
        },
        _ => None,
    };
    Ok(Subscription {
        stream,
        deletions,
        ldap: conn.ldap.clone(),
        server,
        timeout: conn.timeout,
        kind,
    })
}

async fn push_search(
    conn: &mut Connection,
    base: &str,
    scope: LdapScope,
    control: Vec<RawControl>,
) -> Result<SearchStream<'static, String, Vec<String>>, DirectoryError> {
    let server = conn.server.clone();
    // The only filter and attribute list a notification search accepts; the others take them too.
    let attrs = vec!["objectClass".to_owned()];
    conn.ldap
        .with_controls(control)
        .streaming_search(base, scope, "(objectClass=*)", attrs)
        .await
        .map_err(|e| map_operation_error(&server, "push search", e, conn.timeout))
}

/// The Deleted Objects container of the naming context that holds `base_dn`.
async fn deleted_objects_of(
    conn: &mut Connection,
    base_dn: &str,
) -> Result<Option<String>, DirectoryError> {
    let Some(root) = base_entry(conn, "", vec!["namingContexts"]).await? else {
        return Ok(None);
    };
    let naming_context = naming_context_of(&root, base_dn);
    Ok(naming_context.map(|nc| format!("CN=Deleted Objects,{nc}")))
}

impl Subscription {
    /// Waits for the server's next message (as long as it takes). An ended search is an error: a
    /// push search never ends by itself.
    pub async fn next(&mut self) -> Result<Pushed, DirectoryError> {
        let entry = loop {
            let (entry, deletions_ended) = match &mut self.deletions {
                None => (self.stream.next().await, false),
                Some(deletions) => tokio::select! {
                    entry = self.stream.next() => (entry, false),
                    entry = deletions.next() => match entry {
                        Ok(Some(entry)) => (Ok(Some(entry)), false),
                        _ => (Ok(None), true),
                    },
                },
            };
            if !deletions_ended {
                break entry;
            }
            // The server ended the search of deleted objects: the rest still pushes, and
            // deletions wait for the next run.
            debug!("the server ended the push of deletions");
            self.deletions = None;
        };
        let entry =
            entry.map_err(|e| map_operation_error(&self.server, "push search", e, self.timeout))?;
        match entry {
            Some(entry) => Ok(classify(entry)),
            None => {
                let result = self.stream.finish().await;
                Err(DirectoryError::Protocol {
                    server: self.server.clone(),
                    operation: "push search",
                    detail: format!(
                        "the server ended it (result {}: {})",
                        result.rc, result.text
                    ),
                })
            }
        }
    }

    /// Asks the server for its root DSE on the same connection: a connection that no longer
    /// answers fails within the operation timeout instead of being trusted forever.
    pub async fn keep_alive(&mut self) -> Result<(), DirectoryError> {
        let result = self
            .ldap
            .with_timeout(self.timeout)
            .search("", LdapScope::Base, "(objectClass=*)", vec!["1.1"])
            .await
            .map_err(|e| map_operation_error(&self.server, "keep-alive", e, self.timeout))?;
        match result.1.rc {
            0 => Ok(()),
            rc => Err(DirectoryError::Protocol {
                server: self.server.clone(),
                operation: "keep-alive",
                detail: format!("result {rc}: {}", result.1.text),
            }),
        }
    }

    /// The server that pushes.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Closes the connection; the server drops the search with it.
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(self.timeout, self.ldap.unbind()).await;
    }
}

/// An entry is a change; of syncrepl's informational messages only a set of deleted ids is. A
/// message the library cannot take apart (it panics on some) counts as a change: a run then reads
/// what there is.
fn classify(entry: ResultEntry) -> Pushed {
    if !entry.is_intermediate() {
        return Pushed::Changed;
    }
    let parsed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse_syncinfo(entry)));
    match parsed {
        Ok(SyncInfo::NewCookie(_) | SyncInfo::RefreshDelete { .. })
        | Ok(SyncInfo::RefreshPresent { .. }) => Pushed::Nothing,
        Ok(SyncInfo::SyncIdSet { .. }) | Err(_) => Pushed::Changed,
    }
}

fn refused(conn: &Connection, operation: &'static str) -> DirectoryError {
    DirectoryError::Protocol {
        server: conn.server.clone(),
        operation,
        detail: "the server offers the feed but refused it".to_owned(),
    }
}
