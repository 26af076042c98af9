//! Change feeds: where the directory stands before a read (a [`Mark`]), and what changed since an
//! earlier mark. OpenLDAP: RFC 4533 syncrepl in refreshOnly mode. Active Directory: entries whose
//! uSNChanged is above the last highestCommittedUSN of the same database (same invocationId), and,
//! through the Show Deleted control, the ids of everything changed, so entries that left the
//! searches (deleted, moved out, no longer matching) are noticed.

use hashbrown::HashSet;

use ldap3::controls::{
    MakeCritical, RawControl, RefreshMode, SyncDone, SyncInfo, SyncRequest, SyncState,
    parse_syncinfo,
};
use ldap3::{ResultEntry, Scope as LdapScope, SearchOptions};
use tracing::debug;

use super::assemble::{RawContainer, RawGroup, RawUser};
use super::connect::{Connection, map_operation_error};
use super::dn::Dn;
use super::entry::Entry;
use super::error::DirectoryError;
use super::id_format::{guid_to_string, uuid_to_string};
use super::kept::{Changes, Keyed, Unusable};
use super::parse::{parse_container, parse_group, parse_user, taken_apart, taken_apart_whole};
use super::search::{CONTAINER_FILTER, Query, Request, read_all, result_error, search};
use super::snapshot::{BadEntry, ReadStats};

pub(super) const SYNC_REQUEST_OID: &str = "1.3.6.1.4.1.4203.1.9.1.1";
const SYNC_STATE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.2";
const SYNC_DONE_OID: &str = "1.3.6.1.4.1.4203.1.9.1.3";
pub(super) const SHOW_DELETED_OID: &str = "1.2.840.113556.1.4.417";
/// e-syncRefreshRequired: the server cannot answer from this cookie.
const SYNC_REFRESH_REQUIRED: u32 = 4096;
const SIZE_LIMIT_EXCEEDED: u32 = 4;

/// A position in a server's change feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mark {
    Syncrepl { cookie: String },
    Usn { invocation_id: String, usn: i64 },
}

impl Mark {
    /// Whether the changes since `earlier` can be asked for from the server that gave `self`.
    pub fn follows(&self, earlier: &Mark) -> bool {
        match (self, earlier) {
            (Mark::Syncrepl { .. }, Mark::Syncrepl { .. }) => true,
            (
                Mark::Usn {
                    invocation_id: now,
                    usn: to,
                },
                Mark::Usn {
                    invocation_id: then,
                    usn: from,
                },
            ) => now == then && to >= from,
            _ => false,
        }
    }

    pub fn method(&self) -> &'static str {
        match self {
            Mark::Syncrepl { .. } => "Syncrepl",
            Mark::Usn { .. } => "USNChanged",
        }
    }
}

/// Where the feed stands now, and (Active Directory) the naming context whose changes are listed.
pub struct Position {
    pub mark: Mark,
    naming_context: Option<String>,
}

type AllChanges = (Changes<RawUser>, Changes<RawGroup>, Changes<RawContainer>);

/// The server's feed position, or `None` when it offers no feed this task can use.
pub(super) async fn probe(
    conn: &mut Connection,
    q: &Query,
) -> Result<Option<Position>, DirectoryError> {
    let root = base_entry(
        conn,
        "",
        vec![
            "supportedControl",
            "highestCommittedUSN",
            "dsServiceName",
            "namingContexts",
        ],
    )
    .await?;
    let Some(root) = root else { return Ok(None) };
    let controls = root.values("supportedControl");
    let supports = |oid: &str| controls.contains(&oid.as_bytes());
    if q.schema.active_directory {
        if q.membership_filtered || !supports(SHOW_DELETED_OID) {
            return Ok(None);
        }
        return usn_position(conn, q, &root).await;
    }
    if supports(SYNC_REQUEST_OID) && q.schema.id.eq_ignore_ascii_case("entryUUID") {
        return syncrepl_position(conn, &q.base_dn).await;
    }
    Ok(None)
}

async fn usn_position(
    conn: &mut Connection,
    q: &Query,
    root: &Entry,
) -> Result<Option<Position>, DirectoryError> {
    let usn = root
        .text("highestCommittedUSN")
        .and_then(|v| v.parse::<i64>().ok());
    let (Some(usn), Some(service)) = (usn, root.text("dsServiceName")) else {
        return Ok(None);
    };
    let Some(naming_context) = naming_context_of(root, &q.base_dn) else {
        return Ok(None);
    };
    // Without the right to list deleted objects a search shows no deletions at all; that must not
    // look like "nothing was deleted". Only a tombstone actually seen proves the right (an empty
    // container reads the same as a hidden one, and then a full read is the safe answer).
    let deleted = format!("CN=Deleted Objects,{naming_context}");
    let show_deleted = RawControl {
        ctype: SHOW_DELETED_OID.to_owned(),
        crit: true,
        val: None,
    };
    let server = conn.server.clone();
    let visible = conn
        .ldap
        .with_controls(show_deleted)
        .with_search_options(SearchOptions::new().sizelimit(1))
        .with_timeout(conn.timeout)
        .search(
            &deleted,
            LdapScope::OneLevel,
            "(isDeleted=TRUE)",
            vec!["1.1"],
        )
        .await
        .map_err(|e| map_operation_error(&server, "deleted objects check", e, conn.timeout))?;
    let answered = matches!(visible.1.rc, 0 | SIZE_LIMIT_EXCEEDED);
    if !answered || visible.0.is_empty() {
        debug!(
            rc = visible.1.rc,
            "deleted objects not visible; no incremental reads"
        );
        return Ok(None);
    }
    let Some(settings) = base_entry(conn, service, vec!["invocationId"]).await? else {
        return Ok(None);
    };
    let Some(invocation_id) = settings
        .values("invocationId")
        .first()
        .and_then(|b| guid_to_string(b))
    else {
        return Ok(None);
    };
    Ok(Some(Position {
        mark: Mark::Usn { invocation_id, usn },
        naming_context: Some(naming_context),
    }))
}

/// Of the naming contexts a root DSE lists, the innermost one that holds `base_dn`.
pub(super) fn naming_context_of(root: &Entry, base_dn: &str) -> Option<String> {
    let base = Dn::parse(base_dn).ok();
    root.values("namingContexts")
        .into_iter()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .filter(|nc| {
            let nc = Dn::parse(nc).ok();
            matches!((&base, &nc), (Some(b), Some(nc)) if b.is_within(nc))
        })
        .max_by_key(|nc| nc.len())
        .map(str::to_owned)
}

pub(super) async fn syncrepl_position(
    conn: &mut Connection,
    base_dn: &str,
) -> Result<Option<Position>, DirectoryError> {
    // A refresh of the base entry alone: its SyncDone carries the server's current cookie.
    let server = conn.server.clone();
    let request = SyncRequest {
        mode: RefreshMode::RefreshOnly,
        cookie: None,
        reload_hint: false,
    }
    .critical();
    let result = conn
        .ldap
        .with_controls(request)
        .with_timeout(conn.timeout)
        .search(base_dn, LdapScope::Base, "(objectClass=*)", vec!["1.1"])
        .await
        .map_err(|e| map_operation_error(&server, "syncrepl position", e, conn.timeout))?;
    if result.1.rc != 0 {
        debug!(rc = result.1.rc, "syncrepl refused; no incremental reads");
        return Ok(None);
    }
    let cookie = sync_done(&result.1.ctrls)
        .and_then(|done| done.cookie)
        .and_then(|c| String::from_utf8(c).ok());
    Ok(cookie.map(|cookie| Position {
        mark: Mark::Syncrepl { cookie },
        naming_context: None,
    }))
}

pub(super) async fn base_entry(
    conn: &mut Connection,
    dn: &str,
    attrs: Vec<&str>,
) -> Result<Option<Entry>, DirectoryError> {
    let server = conn.server.clone();
    let result = conn
        .ldap
        .with_timeout(conn.timeout)
        .search(dn, LdapScope::Base, "(objectClass=*)", attrs)
        .await
        .map_err(|e| map_operation_error(&server, "root DSE", e, conn.timeout))?;
    if result.1.rc != 0 {
        return Ok(None);
    }
    result
        .0
        .into_iter()
        .next()
        .map(|e| taken_apart_whole(e, &server))
        .transpose()
}

/// What changed since `since`, or why the changes cannot be used.
pub(super) async fn changes(
    conn: &mut Connection,
    q: &Query,
    since: &Mark,
    now: &Position,
    stats: &mut ReadStats,
) -> Result<Result<AllChanges, Unusable>, DirectoryError> {
    match since {
        Mark::Syncrepl { cookie } => syncrepl_changes(conn, q, cookie, stats).await,
        Mark::Usn { usn, .. } => {
            let Some(naming_context) = now.naming_context.as_deref() else {
                return Ok(Err(Unusable::FeedRefused("no naming context".into())));
            };
            let upto = match &now.mark {
                Mark::Usn { usn, .. } => Some(*usn),
                Mark::Syncrepl { .. } => None,
            };
            let changed = UsnRange { after: *usn, upto };
            usn_changes(conn, q, changed, naming_context, stats)
                .await
                .map(Ok)
        }
    }
}

/// The USNs a read asks for the changes of: those after the kept `highestCommittedUSN`, up to the
/// server's current one when it is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct UsnRange {
    pub after: i64,
    pub upto: Option<i64>,
}

/// At most this many USNs are named one by one in a filter; more are asked for as a range.
const MAX_USNS_IN_FILTER: i64 = 200;

impl UsnRange {
    /// Nothing was committed since the kept position.
    fn is_empty(self) -> bool {
        self.upto.is_some_and(|upto| upto <= self.after)
    }

    /// A filter for the entries changed in the range. Samba answers `uSNChanged>=` by comparing
    /// every entry of the naming context, and `uSNChanged=` from its index: a few USNs are named
    /// one by one. An entry changed again after `upto` has a later USN and is not named: the next
    /// read, whose range starts after `upto`, finds it.
    fn filter(self) -> String {
        match self.upto {
            Some(upto) if upto - self.after <= MAX_USNS_IN_FILTER => {
                let usns: String = (self.after + 1..=upto)
                    .map(|usn| format!("(uSNChanged={usn})"))
                    .collect();
                format!("(|{usns})")
            }
            _ => self.range_filter(),
        }
    }

    fn range_filter(self) -> String {
        format!("(uSNChanged>={})", self.after + 1)
    }
}

async fn usn_changes(
    conn: &mut Connection,
    q: &Query,
    usns: UsnRange,
    naming_context: &str,
    stats: &mut ReadStats,
) -> Result<AllChanges, DirectoryError> {
    if usns.is_empty() {
        return Ok(Default::default());
    }
    // First the ids of everything changed in the naming context, deleted objects included: what is
    // not in a search any more has left it.
    let changed = usns.filter();
    let show_deleted = RawControl {
        ctype: SHOW_DELETED_OID.to_owned(),
        crit: true,
        val: None,
    };
    let guids: Vec<Vec<u8>> = search(
        conn,
        Request {
            base: naming_context,
            filter: &changed,
            attrs: vec!["objectGUID".to_owned()],
            page_size: q.page_size,
            controls: vec![show_deleted],
            limits: q.limits,
        },
        stats,
        |e| Ok(e.values("objectGUID").first().map(|b| b.to_vec())),
    )
    .await?
    .into_iter()
    .flatten()
    .collect();
    if guids.is_empty() {
        return Ok(Default::default());
    }
    let left: HashSet<String> = guids.iter().filter_map(|g| guid_to_string(g)).collect();
    // Then the changed entries of each kind, found by their indexed objectGUID: a `uSNChanged`
    // range is evaluated entry by entry over every user. Many changes: the range after all.
    let narrowed = if guids.len() <= MAX_IDS_IN_FILTER {
        let ids: String = guids
            .iter()
            .map(|g| format!("(objectGUID={})", escape_binary(g)))
            .collect();
        format!("(|{ids})")
    } else {
        usns.range_filter()
    };
    let (users, groups, containers) = read_all(conn, q, Some(&narrowed), stats).await?;
    Ok((
        left_or_changed(users, &left),
        left_or_changed(groups, &left),
        left_or_changed(containers, &left),
    ))
}

/// Changed ids named one by one in a filter; more are read by their `uSNChanged` range.
const MAX_IDS_IN_FILTER: usize = 500;

/// A binary value in an LDAP filter (RFC 4515): every byte as `\xx`.
fn escape_binary(value: &[u8]) -> String {
    value.iter().map(|b| format!("\\{b:02x}")).collect()
}

fn left_or_changed<T>(upserts: Vec<T>, left: &HashSet<String>) -> Changes<T> {
    Changes {
        upserts,
        removed: left.clone(),
        present: None,
    }
}

async fn syncrepl_changes(
    conn: &mut Connection,
    q: &Query,
    cookie: &str,
    stats: &mut ReadStats,
) -> Result<Result<AllChanges, Unusable>, DirectoryError> {
    let now = std::time::SystemTime::now();
    let users = sync_search(
        conn,
        &q.user_filter,
        q.user_attrs.clone(),
        q,
        cookie,
        stats,
        |e| parse_user(e, &q.schema, now),
    )
    .await?;
    let groups = sync_search(
        conn,
        &q.group_filter,
        q.group_attrs.clone(),
        q,
        cookie,
        stats,
        |e| parse_group(e, &q.schema).map(|(g, _)| g),
    )
    .await?;
    let containers = sync_search(
        conn,
        CONTAINER_FILTER,
        q.container_attrs(),
        q,
        cookie,
        stats,
        |e| parse_container(e, &q.schema),
    )
    .await?;
    Ok(match (users, groups, containers) {
        (Ok(u), Ok(g), Ok(c)) => Ok((u, g, c)),
        (Err(why), _, _) | (_, Err(why), _) | (_, _, Err(why)) => Err(why),
    })
}

/// One refreshOnly search from `cookie`: changed entries in full, deletions as ids, and, when the
/// server answers with a present list instead, the ids still there.
async fn sync_search<T: Keyed>(
    conn: &mut Connection,
    filter: &str,
    attrs: Vec<String>,
    q: &Query,
    cookie: &str,
    stats: &mut ReadStats,
    mut parse: impl FnMut(Entry) -> Result<T, BadEntry>,
) -> Result<Result<Changes<T>, Unusable>, DirectoryError> {
    let server = conn.server.clone();
    let op = |e| map_operation_error(&server, "syncrepl refresh", e, conn.timeout);
    let request = SyncRequest {
        mode: RefreshMode::RefreshOnly,
        cookie: Some(cookie.as_bytes().to_vec()),
        reload_hint: false,
    }
    .critical();
    let mut stream = conn
        .ldap
        .with_controls(request)
        .with_timeout(conn.timeout)
        .streaming_search(&q.base_dn, LdapScope::Subtree, filter, attrs)
        .await
        .map_err(op)?;
    let mut changes = Changes::default();
    let mut present = HashSet::new();
    let malformed = |detail: &str| DirectoryError::MalformedData {
        server: server.clone(),
        detail: detail.to_owned(),
    };
    while let Some(item) = stream.next().await.map_err(op)? {
        if item.is_intermediate() {
            record_id_set(item, &mut changes.removed, &mut present);
            continue;
        }
        if item.is_ref() {
            continue;
        }
        stats.entries += 1;
        let state: SyncState = item
            .1
            .iter()
            .find(|c| c.1.ctype == SYNC_STATE_OID)
            .map(|c| c.1.parse())
            .ok_or_else(|| malformed("a syncrepl entry without its sync state"))?;
        let id = uuid_to_string(&state.entry_uuid)
            .ok_or_else(|| malformed("a sync state with a malformed entryUUID"))?;
        match state.state {
            ldap3::controls::EntryState::Present => {
                present.insert(id);
            }
            ldap3::controls::EntryState::Delete => {
                changes.removed.insert(id);
            }
            ldap3::controls::EntryState::Add | ldap3::controls::EntryState::Modify => {
                let entry = taken_apart(item);
                q.limits.check(&entry, stats.entries, &server)?;
                match entry.and_then(&mut parse) {
                    Ok(upsert) => changes.upserts.push(upsert),
                    Err(bad) => stats.unreadable.record(bad),
                }
            }
        }
    }
    let result = stream.finish().await;
    stats.requests += 1;
    match result.rc {
        0 => {}
        SIZE_LIMIT_EXCEEDED | SYNC_REFRESH_REQUIRED => {
            return Ok(Err(Unusable::FeedRefused(format!(
                "result code {}: {}",
                result.rc, result.text
            ))));
        }
        rc => return Err(result_error(&server, "syncrepl refresh", rc, &result.text)),
    }
    let Some(done) = sync_done(&result.ctrls) else {
        return Ok(Err(Unusable::FeedRefused("no SyncDone control".into())));
    };
    if !done.refresh_deletes {
        // The present phase: whatever the server did not list is gone.
        stats.present_lists += 1;
        changes.present = Some(present);
    }
    Ok(Ok(changes))
}

/// A syncIdSet message (RFC 4533): the ids of entries deleted or, in the present phase, of
/// entries still there. Other intermediate messages say nothing about entries.
fn record_id_set(item: ResultEntry, removed: &mut HashSet<String>, present: &mut HashSet<String>) {
    if let SyncInfo::SyncIdSet {
        refresh_deletes,
        sync_uuids,
        ..
    } = parse_syncinfo(item)
    {
        let ids = sync_uuids.iter().filter_map(|u| uuid_to_string(u));
        if refresh_deletes {
            removed.extend(ids);
        } else {
            present.extend(ids);
        }
    }
}

fn sync_done(controls: &[ldap3::controls::Control]) -> Option<SyncDone> {
    controls
        .iter()
        .find(|c| c.1.ctype == SYNC_DONE_OID)
        .map(|c| c.1.parse())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_values_are_escaped_byte_by_byte() {
        assert_eq!(escape_binary(&[0x00, 0x2a, 0xff]), "\\00\\2a\\ff");
    }

    #[test]
    fn usn_marks_follow_only_on_the_same_database_forward() {
        let usn = |id: &str, usn| Mark::Usn {
            invocation_id: id.into(),
            usn,
        };
        assert!(usn("a", 10).follows(&usn("a", 7)));
        assert!(usn("a", 7).follows(&usn("a", 7)));
        assert!(!usn("a", 6).follows(&usn("a", 7)), "a USN going back");
        assert!(!usn("b", 10).follows(&usn("a", 7)), "a restored database");
        let cookie = Mark::Syncrepl {
            cookie: "rid=000,csn=1".into(),
        };
        assert!(cookie.follows(&cookie));
        assert!(!cookie.follows(&usn("a", 7)));
    }

    #[test]
    fn a_few_usns_are_named_and_many_are_a_range() {
        let range = |after, upto| UsnRange { after, upto };
        assert!(range(7, Some(7)).is_empty(), "nothing committed since");
        assert!(!range(7, Some(8)).is_empty());
        assert!(!range(7, None).is_empty());
        assert_eq!(
            range(7, Some(9)).filter(),
            "(|(uSNChanged=8)(uSNChanged=9))"
        );
        let most = range(7, Some(7 + MAX_USNS_IN_FILTER)).filter();
        assert_eq!(most.matches("(uSNChanged=").count(), 200);
        assert_eq!(
            range(7, Some(8 + MAX_USNS_IN_FILTER)).filter(),
            "(uSNChanged>=8)"
        );
        assert_eq!(range(7, None).filter(), "(uSNChanged>=8)");
    }
}
