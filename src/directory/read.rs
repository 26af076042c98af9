//! A task's read: everything, or, when the change feed allows, only what changed since the entries
//! the last run kept; either way assembled into a complete [`Snapshot`], and kept for the next run
//! when the server has a feed. A read that fails part-way is an error, never a smaller snapshot;
//! entries that cannot be used are named in the snapshot's `stats.unreadable`, not dropped unseen.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use tracing::{debug, info};

use super::assemble::assemble;
use super::connect::Connection;
use super::delta::{self, Mark, Position};
use super::error::DirectoryError;
use super::kept::Entries;
use super::preset::MemberFormat;
use super::search::{Query, check_base, read_all};
use super::snapshot::{ReadStats, Snapshot, User};
use crate::api::DirectorySpec;

/// Knobs that are not part of the task's API.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Ask Active Directory for group members in explicit ranges of this many values instead of
    /// letting the server choose (its MaxValRange, 1500 by default).
    pub member_range: Option<usize>,
    /// Counts the read as it goes, for a progress display.
    pub progress: Option<std::sync::Arc<super::progress::Progress>>,
}

/// Reads the part of the directory the task describes, all of it.
pub async fn read_snapshot(
    conn: &mut Connection,
    spec: &DirectorySpec,
    options: &ReadOptions,
) -> Result<Snapshot, DirectoryError> {
    Ok(read(conn, spec, options, Feed::Off).await?.snapshot)
}

/// Whether a read follows the directory's change feed.
pub enum Feed {
    /// Read everything and keep nothing.
    Off,
    /// Read the changes since `Kept` when it still applies, else everything; keep the result.
    Follow(Option<Box<Kept>>),
}

/// What a read keeps for the next run of the same task: the entries, and where the server's change
/// feed stood when the read began.
pub struct Kept {
    /// Fingerprint of the settings the entries were read with; other settings mean a full read.
    pub settings: u64,
    pub server: String,
    pub mark: Mark,
    pub entries: Entries,
    /// The snapshot assembled from `entries`: a run that finds no change uses it as it is.
    pub snapshot: Snapshot,
    /// When the last read of everything began.
    pub full_read_at: SystemTime,
}

impl Kept {
    /// Whether a read with `settings` from `server`, whose feed stands at `now`, can read only the
    /// changes since this one.
    fn followed_by(&self, settings: u64, server: &str, now: &Position) -> bool {
        self.settings == settings && self.server == server && now.mark.follows(&self.mark)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadKind {
    Full,
    Incremental,
}

pub struct Read {
    pub snapshot: Snapshot,
    pub kind: ReadKind,
    /// `None` when the server offers no usable change feed (or the feed is off).
    pub kept: Option<Box<Kept>>,
    /// The entries the snapshot was assembled from when no run keeps them: the reading thread
    /// frees them after handing the read over.
    pub discarded: Option<Entries>,
    /// When the snapshot is the followed read's with only some users' records replaced: their
    /// indices in the snapshot (none when nothing changed). `None` for anything else.
    pub changed_in_place: Option<Vec<usize>>,
}

/// Reads the directory, incrementally when `feed` allows and the server supports it. A feed that
/// cannot be trusted (other settings or server, a restored database, an answer the server marks as
/// too old) means a full read, never a guess.
pub async fn read(
    conn: &mut Connection,
    spec: &DirectorySpec,
    options: &ReadOptions,
    feed: Feed,
) -> Result<Read, DirectoryError> {
    let query = Query::new(spec, options.member_range)?;
    let mut stats = ReadStats::default();
    check_base(conn, &spec.base_dn).await?;
    let (previous, probe) = match feed {
        Feed::Off => (None, None),
        Feed::Follow(previous) => (previous, delta::probe(conn, &query).await?),
    };
    let settings = settings_fingerprint(spec, options);
    let followed = match (previous, probe.as_ref()) {
        (Some(kept), Some(now)) if kept.followed_by(settings, &conn.server, now) => {
            follow(conn, &query, kept, now, &mut stats).await?
        }
        _ => None,
    };
    let kind = if followed.is_some() {
        ReadKind::Incremental
    } else {
        ReadKind::Full
    };
    let mut changed_in_place = None;
    let (entries, full_read_at, previous_snapshot) = match followed {
        Some((kept, change)) => {
            let Kept {
                entries,
                full_read_at,
                mut snapshot,
                ..
            } = *kept;
            // Nothing changed since the kept read, or users changed in place: its snapshot (with
            // their new records) is what assembly would build again, at the cost of the change.
            let previous = match change {
                Change::None => {
                    changed_in_place = Some(Vec::new());
                    Some(snapshot)
                }
                Change::InPlace(records) => {
                    changed_in_place = Some(snapshot.replace_users(records));
                    Some(snapshot)
                }
                Change::Other => None,
            };
            (entries, full_read_at, previous)
        }
        None => {
            let started = SystemTime::now();
            stats = ReadStats::default();
            let (users, groups, containers) = read_all(conn, &query, None, &mut stats).await?;
            (Entries::from_read(users, groups, containers), started, None)
        }
    };
    debug!(
        server = %conn.server,
        entries = stats.entries,
        requests = stats.requests,
        incremental = kind == ReadKind::Incremental,
        "directory read"
    );
    let snapshot = match previous_snapshot {
        Some(previous) => with_stats(previous, stats),
        None => assemble(
            entries.users.values(),
            entries.groups.values(),
            entries.containers.values(),
            &query.scope,
            stats,
        )
        .map_err(|too_many| DirectoryError::LimitExceeded {
            server: conn.server.clone(),
            limit: "directory.maxMemberships",
            value: too_many.limit,
            entry: too_many.group,
        })?,
    };
    // A read that left entries out is not followed: the next one reads everything again, so that
    // what those entries stand for is held by name every time, never taken as gone.
    let (kept, discarded) = match probe.filter(|_| snapshot.stats.unreadable.count == 0) {
        Some(now) => (
            Some(Box::new(Kept {
                settings,
                server: conn.server.clone(),
                mark: now.mark,
                entries,
                snapshot: snapshot.clone(),
                full_read_at,
            })),
            None,
        ),
        None => (None, Some(entries)),
    };
    Ok(Read {
        snapshot,
        kind,
        kept,
        discarded,
        changed_in_place,
    })
}

/// What the changes since the kept read do to its snapshot.
enum Change {
    /// Nothing: no change reported, no kept account expired.
    None,
    /// These users' records change, nothing else (see [`Entries::changed_in_place`]).
    InPlace(Vec<Arc<User>>),
    /// Anything else: the snapshot is assembled again.
    Other,
}

/// The kept entries with the changes since their mark applied, and what they change; `None` when
/// the feed or its changes cannot be used, and everything must be read.
async fn follow(
    conn: &mut Connection,
    query: &Query,
    mut kept: Box<Kept>,
    now: &Position,
    stats: &mut ReadStats,
) -> Result<Option<(Box<Kept>, Change)>, DirectoryError> {
    let (users, groups, containers) =
        match delta::changes(conn, query, &kept.mark, now, stats).await? {
            Ok(changes) => changes,
            Err(why) => {
                info!(%why, "change feed unusable; reading everything");
                return Ok(None);
            }
        };
    if stats.unreadable.count > 0 {
        info!(
            unreadable = stats.unreadable.count,
            "changed entries cannot be used; reading everything"
        );
        return Ok(None);
    }
    let links = query.schema.member_format == MemberFormat::Dn;
    let none = users.is_empty() && groups.is_empty() && containers.is_empty();
    let in_place = kept.entries.changed_in_place(&users, &groups, &containers);
    if let Err(why) = kept.entries.apply(users, groups, containers, links) {
        info!(%why, "changes unusable; reading everything");
        return Ok(None);
    }
    let expired = kept.entries.disable_expired(SystemTime::now());
    if expired > 0 {
        info!(expired, "kept accounts expired since they were read");
    }
    let change = match (none, in_place) {
        _ if expired > 0 => Change::Other,
        (true, _) => Change::None,
        (false, Some(records)) => Change::InPlace(records),
        (false, None) => Change::Other,
    };
    Ok(Some((kept, change)))
}

/// The kept snapshot with this read's counters; those of assembly (what the scope left out) stand
/// as they were.
fn with_stats(previous: Snapshot, stats: ReadStats) -> Snapshot {
    Snapshot {
        stats: ReadStats {
            excluded: previous.stats.excluded,
            disabled_skipped: previous.stats.disabled_skipped,
            ..stats
        },
        ..previous
    }
}

/// Everything that decides what the searches return; kept entries read with other settings are
/// not reused.
fn settings_fingerprint(spec: &DirectorySpec, options: &ReadOptions) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    serde_json::to_string(spec)
        .unwrap_or_default()
        .hash(&mut hasher);
    options.member_range.hash(&mut hasher);
    hasher.finish()
}
