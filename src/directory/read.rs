//! Reads users, groups and containers with paged searches (RFC 2696), following Active Directory's
//! ranged member retrieval, and assembles them into a [`Snapshot`]. A read that fails part-way is an
//! error, never a smaller snapshot.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{ResultEntry, Scope as LdapScope, SearchResult};
use tracing::{debug, info};

use super::assemble::{Member, RawContainer, RawGroup, RawUser, Scope, assemble};
use super::cache::Entries;
use super::connect::{Connection, map_operation_error};
use super::delta::{self, Mark};
use super::dn::Dn;
use super::entry::{self, Entry};
use super::error::DirectoryError;
use super::preset::{MemberFormat, Schema};
use super::snapshot::{Group, ReadStats, Snapshot, User};
use crate::api::DirectorySpec;

/// Knobs that are not part of the task's API.
#[derive(Clone, Debug, Default)]
pub struct ReadOptions {
    /// Ask Active Directory for group members in explicit ranges of this many values instead of
    /// letting the server choose (its MaxValRange, 1500 by default).
    pub member_range: Option<usize>,
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
    /// The entries the snapshot was assembled from, when nothing keeps them: the reading thread
    /// frees them once the read is handed over.
    pub unkept: Option<Entries>,
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
    let query = Query::new(spec, options)?;
    let mut stats = ReadStats::default();
    check_base(conn, &spec.base_dn).await?;
    let (previous, probe) = match feed {
        Feed::Off => (None, None),
        Feed::Follow(previous) => (previous, delta::probe(conn, &query).await?),
    };
    let settings = settings_fingerprint(spec, options);
    let previous = previous.filter(|p| {
        p.settings == settings
            && p.server == conn.server
            && probe.as_ref().is_some_and(|now| now.mark.follows(&p.mark))
    });

    let mut incremental = None;
    // Nothing changed since the kept read: its snapshot is what assembly would build again.
    let mut unchanged = false;
    if let (Some(mut kept), Some(now)) = (previous, probe.as_ref()) {
        match delta::changes(conn, &query, &kept.mark, now, &mut stats).await? {
            Ok((users, groups, containers)) => {
                let links = query.schema.member_format == MemberFormat::Dn;
                let none = users.is_empty() && groups.is_empty() && containers.is_empty();
                match kept.entries.apply(users, groups, containers, links) {
                    Ok(()) => {
                        let expired = kept.entries.disable_expired(SystemTime::now());
                        if expired > 0 {
                            info!(expired, "kept accounts expired since they were read");
                        }
                        unchanged = none && expired == 0;
                        incremental = Some(kept);
                    }
                    Err(why) => info!(%why, "changes unusable; reading everything"),
                }
            }
            Err(why) => info!(%why, "change feed unusable; reading everything"),
        }
    }
    let kind = if incremental.is_some() {
        ReadKind::Incremental
    } else {
        ReadKind::Full
    };
    let (entries, full_read_at, previous_snapshot) = match incremental {
        Some(kept) => {
            let Kept {
                entries,
                full_read_at,
                snapshot,
                ..
            } = *kept;
            (entries, full_read_at, unchanged.then_some(snapshot))
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
        // This read's counters; those of assembly (what the scope left out) stand as they were.
        Some(previous) => Snapshot {
            stats: ReadStats {
                excluded: previous.stats.excluded,
                disabled_skipped: previous.stats.disabled_skipped,
                ..stats
            },
            ..previous
        },
        None => assemble(
            entries.users.values(),
            entries.groups.values(),
            entries.containers.values(),
            &query.scope,
            stats,
        ),
    };
    let (kept, unkept) = match probe {
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
        unkept,
    })
}

/// What the searches ask for, worked out once from the task.
pub(super) struct Query {
    pub schema: Schema,
    pub scope: Scope,
    pub base_dn: String,
    pub user_filter: String,
    pub group_filter: String,
    pub user_attrs: Vec<String>,
    pub group_attrs: Vec<String>,
    pub page_size: usize,
    /// Active Directory member lists may come in ranges.
    pub ranged: bool,
    pub member_range: Option<usize>,
    /// The user filter depends on group membership, which changes no user entry on Active
    /// Directory (memberOf is a back link): such users cannot be read incrementally there.
    pub membership_filtered: bool,
}

/// builtinDomain is CN=Builtin on Active Directory, home of the built-in groups.
pub(super) const CONTAINER_FILTER: &str =
    "(|(objectClass=organizationalUnit)(objectClass=container)(objectClass=builtinDomain))";

impl Query {
    fn new(spec: &DirectorySpec, options: &ReadOptions) -> Result<Query, DirectoryError> {
        let schema = Schema::new(spec.preset, &spec.attributes);
        let scope = scope(spec, &schema)?;
        let mut user_filter = and_filter(&schema.user_filter, spec.user_filter.as_deref())?;
        if schema.active_directory && !spec.groups.is_empty() {
            // Active Directory names the transitive members of the chosen groups itself, so only
            // those users are read instead of everything under the base DN.
            user_filter = format!("(&{user_filter}{})", in_chain_filter(&spec.groups));
        }
        let group_filter = and_filter(&schema.group_filter, spec.group_filter.as_deref())?;
        let page_size = usize::try_from(spec.page_size)
            .ok()
            .filter(|&n| n > 0)
            .unwrap_or(500);
        let ranged = schema.active_directory && schema.member_format == MemberFormat::Dn;
        let user_attrs = schema
            .user_attributes()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let mut group_attrs: Vec<String> = schema
            .group_attributes()
            .into_iter()
            .map(str::to_owned)
            .collect();
        if let (true, Some(step)) = (ranged, options.member_range) {
            for attr in group_attrs.iter_mut().filter(|a| schema.member.contains(a)) {
                *attr = format!("{attr};range=0-{}", step.saturating_sub(1));
            }
        }
        let membership_filtered =
            schema.active_directory && user_filter.to_ascii_lowercase().contains("memberof");
        Ok(Query {
            schema,
            scope,
            base_dn: spec.base_dn.clone(),
            user_filter,
            group_filter,
            user_attrs,
            group_attrs,
            page_size,
            ranged,
            member_range: options.member_range,
            membership_filtered,
        })
    }

    pub fn container_attrs(&self) -> Vec<String> {
        vec![self.schema.id.clone()]
    }
}

/// Users, groups (with every member range) and containers, each search narrowed by `extra` when
/// given.
pub(super) async fn read_all(
    conn: &mut Connection,
    q: &Query,
    extra: Option<&str>,
    stats: &mut ReadStats,
) -> Result<(Vec<RawUser>, Vec<RawGroup>, Vec<RawContainer>), DirectoryError> {
    let narrowed = |filter: &str| match extra {
        Some(extra) => format!("(&{filter}{extra})"),
        None => filter.to_owned(),
    };
    let server = conn.server.clone();
    let now = SystemTime::now();
    let users = search(
        conn,
        Request {
            base: &q.base_dn,
            filter: &narrowed(&q.user_filter),
            attrs: q.user_attrs.clone(),
            page_size: q.page_size,
            controls: Vec::new(),
        },
        stats,
        |e| parse_user(e, &q.schema, now, &server),
    )
    .await?;
    let mut groups = search(
        conn,
        Request {
            base: &q.base_dn,
            filter: &narrowed(&q.group_filter),
            attrs: q.group_attrs.clone(),
            page_size: q.page_size,
            controls: Vec::new(),
        },
        stats,
        |e| parse_group(e, &q.schema, &server),
    )
    .await?;
    if q.ranged {
        for (group, next) in groups.iter_mut() {
            if let Some(start) = next.take() {
                fetch_member_ranges(
                    conn,
                    group,
                    &q.schema.member[0],
                    start,
                    q.member_range,
                    stats,
                )
                .await?;
            }
        }
    }
    let groups = groups.into_iter().map(|(g, _)| g).collect();
    let containers = search(
        conn,
        Request {
            base: &q.base_dn,
            filter: &narrowed(CONTAINER_FILTER),
            attrs: q.container_attrs(),
            page_size: q.page_size,
            controls: Vec::new(),
        },
        stats,
        |e| parse_container(e, &q.schema, &server),
    )
    .await?;
    Ok((users, groups, containers))
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

fn scope(spec: &DirectorySpec, schema: &Schema) -> Result<Scope, DirectoryError> {
    let parse = |text: &str, what: &str| {
        Dn::parse(text).map_err(|e| DirectoryError::InvalidSettings(format!("{what}: {e}")))
    };
    Ok(Scope {
        base: parse(&spec.base_dn, "directory.baseDN")?,
        groups: spec
            .groups
            .iter()
            .map(|g| parse(g, "directory.groups"))
            .collect::<Result<_, _>>()?,
        excludes: spec
            .excludes
            .iter()
            .map(|g| parse(g, "directory.excludes"))
            .collect::<Result<_, _>>()?,
        ignore_disabled_users: spec.ignore_disabled_users,
        nested_groups: spec.nested_groups,
        member_format: schema.member_format,
    })
}

/// Users that are members of any of `groups`, directly or through nested groups
/// (LDAP_MATCHING_RULE_IN_CHAIN). The DNs come from the task, so they are escaped (RFC 4515).
pub fn in_chain_filter(groups: &[String]) -> String {
    let terms: String = groups
        .iter()
        .map(|g| {
            format!(
                "(memberOf:1.2.840.113556.1.4.1941:={})",
                ldap3::ldap_escape(g)
            )
        })
        .collect();
    format!("(|{terms})")
}

/// `(&preset extra)`, after checking that the task's extra filter is a valid LDAP filter.
pub fn and_filter(preset: &str, extra: Option<&str>) -> Result<String, DirectoryError> {
    let Some(extra) = extra.map(str::trim).filter(|e| !e.is_empty()) else {
        return Ok(preset.to_owned());
    };
    let extra = if extra.starts_with('(') {
        extra.to_owned()
    } else {
        format!("({extra})")
    };
    ldap3::parse_filter(&extra).map_err(|_| {
        DirectoryError::InvalidSettings(format!("{extra} is not a valid LDAP filter"))
    })?;
    Ok(format!("(&{preset}{extra})"))
}

async fn check_base(conn: &mut Connection, base_dn: &str) -> Result<(), DirectoryError> {
    let server = conn.server.clone();
    let result = conn
        .ldap
        .with_timeout(conn.timeout)
        .search(base_dn, LdapScope::Base, "(objectClass=*)", vec!["1.1"])
        .await
        .map_err(|e| map_operation_error(&server, "base DN check", e, conn.timeout))?;
    let (entries, result) = (result.0, result.1);
    match result.rc {
        0 if !entries.is_empty() => Ok(()),
        0 | 32 => Err(DirectoryError::BaseDnNotFound {
            server,
            base_dn: base_dn.to_owned(),
        }),
        rc => Err(result_error(&server, "base DN check", rc, &result.text)),
    }
}

pub(super) fn result_error(
    server: &str,
    operation: &'static str,
    rc: u32,
    text: &str,
) -> DirectoryError {
    let server = server.to_owned();
    // Active Directory answers an anonymous search with operationsError rather than a refusal.
    let anonymous_refused = rc == 1
        && (text.contains("without authentication") || text.contains("bind must be completed"));
    match rc {
        50 => DirectoryError::InsufficientAccess {
            server,
            detail: text.to_owned(),
        },
        1 if anonymous_refused => DirectoryError::InsufficientAccess {
            server,
            detail: format!("anonymous reads are not allowed: {text}"),
        },
        8 | 13 => DirectoryError::StrongAuthRequired {
            server,
            detail: text.to_owned(),
        },
        3 => DirectoryError::Timeout {
            server,
            operation,
            seconds: 0,
        },
        // sizeLimitExceeded and adminLimitExceeded mean the answer is incomplete.
        rc => DirectoryError::Protocol {
            server,
            operation,
            detail: format!("result code {rc}: {text}"),
        },
    }
}

/// A paged subtree search: where, what, and the controls besides paging.
pub(super) struct Request<'a> {
    pub base: &'a str,
    pub filter: &'a str,
    pub attrs: Vec<String>,
    pub page_size: usize,
    pub controls: Vec<RawControl>,
}

/// One paged subtree search; `parse` turns each entry into an item. Entries are converted as they
/// arrive, so memory holds the parsed items, not the raw messages.
pub(super) async fn search<T>(
    conn: &mut Connection,
    request: Request<'_>,
    stats: &mut ReadStats,
    mut parse: impl FnMut(Entry) -> Result<T, DirectoryError>,
) -> Result<Vec<T>, DirectoryError> {
    let Request {
        base,
        filter,
        attrs,
        page_size,
        controls,
    } = request;
    let server = conn.server.clone();
    let op = |e| map_operation_error(&server, "search", e, conn.timeout);
    let adapters: Vec<Box<dyn Adapter<'_, String, Vec<String>>>> = vec![
        Box::new(EntriesOnly::new()),
        Box::new(PagedResults::new(page_size as i32)),
    ];
    let mut stream = conn
        .ldap
        .with_controls(controls)
        .with_timeout(conn.timeout)
        .streaming_search_with(adapters, base, LdapScope::Subtree, filter, attrs)
        .await
        .map_err(op)?;
    let mut items = Vec::new();
    while let Some(raw) = stream.next().await.map_err(op)? {
        stats.entries += 1;
        items.push(parse(taken_apart(raw, &server)?)?);
    }
    let result = stream.finish().await;
    stats.requests += items.len().div_ceil(page_size).max(1);
    match result.rc {
        0 => Ok(items),
        32 => Err(DirectoryError::BaseDnNotFound {
            server,
            base_dn: base.to_owned(),
        }),
        rc => Err(result_error(&server, "search", rc, &result.text)),
    }
}

/// Follows `member;range=…` until the server says `*` (the last range).
async fn fetch_member_ranges(
    conn: &mut Connection,
    group: &mut RawGroup,
    attr: &str,
    mut start: usize,
    step: Option<usize>,
    stats: &mut ReadStats,
) -> Result<(), DirectoryError> {
    let server = conn.server.clone();
    loop {
        let range = match step {
            Some(step) => format!("{attr};range={start}-{}", start + step - 1),
            None => format!("{attr};range={start}-*"),
        };
        let SearchResult(entries, result) = conn
            .ldap
            .with_timeout(conn.timeout)
            .search(
                &group.group.dn,
                LdapScope::Base,
                "(objectClass=*)",
                vec![range.as_str()],
            )
            .await
            .map_err(|e| map_operation_error(&server, "member range", e, conn.timeout))?;
        stats.requests += 1;
        if result.rc != 0 {
            return Err(result_error(
                &server,
                "member range",
                result.rc,
                &result.text,
            ));
        }
        let Some(raw) = entries.into_iter().next() else {
            return Err(DirectoryError::MalformedData {
                server,
                detail: format!(
                    "group {} vanished while its members were read",
                    group.group.dn
                ),
            });
        };
        stats.entries += 1;
        let (values, next) = taken_apart(raw, &server)?.take_members(attr);
        if values.is_empty() && next.is_some() {
            return Err(DirectoryError::MalformedData {
                server,
                detail: format!("an empty member range of {}", group.group.dn),
            });
        }
        group
            .members
            .extend(values.into_iter().map(|v| Member::new(v, MemberFormat::Dn)));
        match next {
            Some(n) => start = n,
            None => return Ok(()),
        }
    }
}

/// The entry in a search result message; a message that is not one is malformed data.
pub(super) fn taken_apart(raw: ResultEntry, server: &str) -> Result<Entry, DirectoryError> {
    Entry::from_message(raw).ok_or_else(|| DirectoryError::MalformedData {
        server: server.to_owned(),
        detail: "a search result entry that is not valid LDAP (or whose DN is not UTF-8)"
            .to_owned(),
    })
}

pub(super) fn parse_container(
    mut e: Entry,
    schema: &Schema,
    server: &str,
) -> Result<RawContainer, DirectoryError> {
    let dn = parse_dn(&e.dn, server)?;
    let [text_id] = e.take_texts([entry::text_id(&schema.id, schema.id_format)]);
    Ok(RawContainer {
        name: dn.name().unwrap_or_default().to_owned(),
        id: entry::id(&e, &schema.id, schema.id_format, text_id)
            .ok_or_else(|| missing(server, &e.dn, &schema.id))?,
        text: e.dn,
        dn,
    })
}

fn parse_dn(text: &str, server: &str) -> Result<Dn, DirectoryError> {
    Dn::parse(text).map_err(|e| DirectoryError::MalformedData {
        server: server.to_owned(),
        detail: e.to_string(),
    })
}

fn missing(server: &str, dn: &str, attr: &str) -> DirectoryError {
    DirectoryError::MalformedData {
        server: server.to_owned(),
        detail: format!("{dn} has no usable {attr}; fix the entry or narrow the filter"),
    }
}

pub(super) fn parse_user(
    mut e: Entry,
    schema: &Schema,
    now: SystemTime,
    server: &str,
) -> Result<RawUser, DirectoryError> {
    let dn = parse_dn(&e.dn, server)?;
    // What is read in place comes before the text values are moved out.
    let disabled = entry::is_disabled(&e, schema.disabled, now);
    let expires_on = entry::expires_on(&e, schema.disabled).filter(|_| !disabled);
    let sid = schema.sid.as_deref().and_then(|a| entry::sid(&e, a));
    let [text_id, name, display_name, email, phone, description, upn] = e.take_texts([
        entry::text_id(&schema.id, schema.id_format),
        &schema.user_name,
        &schema.display_name,
        &schema.email,
        &schema.phone,
        &schema.description,
        schema.upn.as_deref().unwrap_or_default(),
    ]);
    let user = User {
        id: entry::id(&e, &schema.id, schema.id_format, text_id)
            .ok_or_else(|| missing(server, &e.dn, &schema.id))?,
        name: name.ok_or_else(|| missing(server, &e.dn, &schema.user_name))?,
        display_name,
        email,
        phone,
        description,
        sid,
        upn,
        disabled,
        dn: e.dn,
    };
    Ok(RawUser {
        dn,
        user: Arc::new(user),
        expires_on,
    })
}

/// A group and, for a ranged member list, where the next range starts.
pub(super) fn parse_group(
    mut e: Entry,
    schema: &Schema,
    server: &str,
) -> Result<(RawGroup, Option<usize>), DirectoryError> {
    let dn = parse_dn(&e.dn, server)?;
    let sid = schema.sid.as_deref().and_then(|a| entry::sid(&e, a));
    let [text_id, name, description] = e.take_texts([
        entry::text_id(&schema.id, schema.id_format),
        &schema.group_name,
        &schema.description,
    ]);
    let name = name
        .or_else(|| dn.name().map(str::to_owned))
        .ok_or_else(|| missing(server, &e.dn, &schema.group_name))?;
    let mut members = Vec::new();
    let mut next = None;
    for attr in &schema.member {
        let (values, more) = e.take_members(attr);
        members.extend(
            values
                .into_iter()
                .map(|v| Member::new(v, schema.member_format)),
        );
        next = next.or(more);
    }
    let group = Group {
        id: entry::id(&e, &schema.id, schema.id_format, text_id)
            .ok_or_else(|| missing(server, &e.dn, &schema.id))?,
        description,
        sid,
        dn: e.dn,
        name,
        ..Default::default()
    };
    Ok((RawGroup { dn, group, members }, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_chain_filter_escapes_the_chosen_dns() {
        let f = in_chain_filter(&[
            r"CN=Tricky *)(uid\3D*,OU=G,DC=x".to_owned(),
            "CN=A,DC=x".to_owned(),
        ]);
        assert_eq!(
            f,
            r"(|(memberOf:1.2.840.113556.1.4.1941:=CN=Tricky \2a\29\28uid\5c3D\2a,OU=G,DC=x)(memberOf:1.2.840.113556.1.4.1941:=CN=A,DC=x))"
        );
        assert!(ldap3::parse_filter(&f).is_ok());
    }

    #[test]
    fn extra_filters_are_checked_and_anded() {
        assert_eq!(
            and_filter("(objectClass=user)", None).unwrap(),
            "(objectClass=user)"
        );
        assert_eq!(
            and_filter("(objectClass=user)", Some("  ")).unwrap(),
            "(objectClass=user)"
        );
        assert_eq!(
            and_filter("(a=1)", Some("department=IT")).unwrap(),
            "(&(a=1)(department=IT))"
        );
        assert_eq!(
            and_filter("(a=1)", Some("(|(b=2)(c=3))")).unwrap(),
            "(&(a=1)(|(b=2)(c=3)))"
        );
        let err = and_filter("(a=1)", Some("(b=2")).unwrap_err();
        assert_eq!(err.reason(), "InvalidSettings");
    }

    #[test]
    fn one_attribute_can_fill_several_fields() {
        use crate::api::{AttributeOverrides, DirectoryPreset};
        let schema = Schema::new(
            DirectoryPreset::Custom,
            &AttributeOverrides {
                id: Some("uid".into()),
                email: Some("mail".into()),
                upn: Some("MAIL".into()),
                description: Some("cn".into()),
                display_name: Some("cn".into()),
                ..Default::default()
            },
        );
        let e = Entry::new(
            "uid=jdoe,ou=People,dc=example,dc=org",
            &[
                ("uid", &["jdoe"]),
                ("cn", &["John Doe"]),
                ("mail", &["jdoe@x"]),
            ],
        );
        let raw = parse_user(e, &schema, SystemTime::now(), "ldap://x").expect("parses");
        let u = &raw.user;
        assert_eq!((u.id.as_str(), u.name.as_str()), ("jdoe", "jdoe"));
        assert_eq!(u.email.as_deref(), Some("jdoe@x"));
        assert_eq!(u.upn.as_deref(), Some("jdoe@x"));
        assert_eq!(u.description.as_deref(), Some("John Doe"));
        assert_eq!(u.display_name.as_deref(), Some("John Doe"));
    }

    #[test]
    fn an_enabled_account_keeps_the_day_it_expires_on() {
        use crate::api::{AttributeOverrides, DirectoryPreset};
        use std::time::{Duration, UNIX_EPOCH};
        let schema = Schema::new(DirectoryPreset::OpenLdap, &AttributeOverrides::default());
        let user = |shadow_expire: &str| {
            let e = Entry::new(
                "uid=jdoe,ou=People,dc=example,dc=org",
                &[
                    ("uid", &["jdoe"]),
                    ("entryUUID", &["u-1"]),
                    ("shadowExpire", &[shadow_expire]),
                ],
            );
            let now = UNIX_EPOCH + Duration::from_secs(20_000 * 86_400);
            let raw = parse_user(e, &schema, now, "ldap://x").expect("parses");
            (raw.user.disabled, raw.expires_on)
        };
        assert_eq!(user("20001"), (false, Some(20_001)));
        assert_eq!(user("20000"), (true, None));
        assert_eq!(user("-1"), (false, None));
    }
}
