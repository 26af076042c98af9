//! Search primitives both the full read and the change feeds use: the `Query` a task's settings
//! make, paged subtree searches (RFC 2696), Active Directory's ranged member retrieval, and result
//! codes mapped to the reasons of [`DirectoryError`].

use std::time::SystemTime;

use ldap3::adapters::{Adapter, EntriesOnly, PagedResults};
use ldap3::controls::RawControl;
use ldap3::{Scope as LdapScope, SearchResult};

use super::assemble::{Member, RawContainer, RawGroup, RawUser, Scope};
use super::connect::{Connection, map_operation_error};
use super::dn::Dn;
use super::entry::Entry;
use super::error::DirectoryError;
use super::parse::{parse_container, parse_group, parse_user, taken_apart, taken_apart_whole};
use super::preset::{MemberFormat, Schema};
use super::snapshot::{BadEntry, ReadStats};
use crate::api::{DirectorySpec, UserAttribute};

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
    pub limits: Limits,
    /// Active Directory member lists may come in ranges.
    pub ranged: bool,
    pub member_range: Option<usize>,
    /// The user filter depends on group membership, which changes no user entry on Active
    /// Directory (memberOf is a back link): such users cannot be read incrementally there.
    pub membership_filtered: bool,
}

/// What one read may hold, from the task's `directory.max*` settings: past any of them the read
/// ends with `LimitExceeded`, naming the limit and the entry.
#[derive(Clone, Copy, Debug)]
pub(super) struct Limits {
    /// Entries of the whole read.
    pub entries: usize,
    /// Values of one attribute of one entry, ranges of a member list together.
    pub values_per_attribute: usize,
    /// Bytes of one value.
    pub value_bytes: usize,
}

impl Limits {
    fn of(spec: &DirectorySpec) -> Limits {
        let at_least_one = |n: i64| usize::try_from(n.max(1)).unwrap_or(usize::MAX);
        Limits {
            entries: at_least_one(spec.max_entries),
            values_per_attribute: at_least_one(spec.max_values_per_attribute),
            value_bytes: at_least_one(spec.max_value_bytes),
        }
    }

    /// The `count`-th entry of a read from `server`, as received: `LimitExceeded` when it goes
    /// past a limit.
    pub fn check(
        &self,
        entry: &Result<Entry, BadEntry>,
        count: usize,
        server: &str,
    ) -> Result<(), DirectoryError> {
        let exceeded = match entry {
            _ if count > self.entries => Some(("directory.maxEntries", self.entries)),
            Ok(entry) => self.exceeded_by(entry),
            Err(_) => None,
        };
        match exceeded {
            None => Ok(()),
            Some((limit, value)) => Err(DirectoryError::LimitExceeded {
                server: server.to_owned(),
                limit,
                value,
                entry: entry
                    .as_ref()
                    .map_or_else(|_| "an unreadable entry".to_owned(), |e| e.dn.clone()),
            }),
        }
    }

    /// The limit `entry` goes past, with its value.
    pub fn exceeded_by(&self, entry: &Entry) -> Option<(&'static str, usize)> {
        let (values, bytes) = entry.widest();
        if values > self.values_per_attribute {
            Some(("directory.maxValuesPerAttribute", self.values_per_attribute))
        } else if bytes > self.value_bytes {
            Some(("directory.maxValueBytes", self.value_bytes))
        } else {
            None
        }
    }
}

/// builtinDomain is CN=Builtin on Active Directory, home of the built-in groups.
pub(super) const CONTAINER_FILTER: &str =
    "(|(objectClass=organizationalUnit)(objectClass=container)(objectClass=builtinDomain))";

/// `directory.userAttributes`, checked: field names a lower-case letter then letters and digits,
/// attribute names a letter then letters, digits and hyphens (as the CRD's rule says).
fn extra_fields(spec: &DirectorySpec) -> Result<Vec<(String, String)>, DirectoryError> {
    let field_ok = |f: &str| {
        f.len() <= 63
            && f.starts_with(|c: char| c.is_ascii_lowercase())
            && f.chars().all(|c| c.is_ascii_alphanumeric())
    };
    let attribute_ok = |a: &str| {
        a.len() <= 128
            && a.starts_with(|c: char| c.is_ascii_alphabetic())
            && a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    spec.user_attributes
        .iter()
        .map(|UserAttribute { field, attribute }| {
            if field_ok(field) && attribute_ok(attribute) {
                Ok((field.clone(), attribute.clone()))
            } else {
                Err(DirectoryError::InvalidSettings(format!(
                    "directory.userAttributes.{field}: {attribute:?} is not a field name mapped to an attribute name"
                )))
            }
        })
        .collect()
}

/// Active Directory marks the objects a domain cannot work without (built-in groups, krbtgt, the
/// Administrator account) with isCriticalSystemObject.
const NOT_SYSTEM_OBJECT: &str = "(!(isCriticalSystemObject=TRUE))";

/// Checks the task's directory settings before any I/O, exactly as building its query does (a read
/// builds one before its first request): the base DN, the chosen groups and the excludes must parse
/// as DNs, and the extra user and group filters must be valid LDAP filters. The error names the
/// field, e.g. `directory.groups[2]: …`.
pub fn check_spec(spec: &DirectorySpec) -> Result<(), DirectoryError> {
    Query::new(spec, None).map(drop)
}

impl Query {
    /// The query for the task's settings; every check of them is here (see [`check_spec`]).
    pub fn new(spec: &DirectorySpec, member_range: Option<usize>) -> Result<Query, DirectoryError> {
        let mut schema = Schema::new(spec.preset.unwrap_or_default(), &spec.attributes);
        schema.extra = extra_fields(spec)?;
        let scope = scope(spec, &schema)?;
        let mut user_filter = and_filter(&schema.user_filter, spec.user_filter.as_deref())
            .map_err(in_field("directory.userFilter"))?;
        if schema.active_directory && !spec.groups.is_empty() {
            // Active Directory names the transitive members of the chosen groups itself, so only
            // those users are read instead of everything under the base DN.
            user_filter = format!("(&{user_filter}{})", in_chain_filter(&spec.groups));
        }
        let mut group_filter = and_filter(&schema.group_filter, spec.group_filter.as_deref())
            .map_err(in_field("directory.groupFilter"))?;
        if schema.active_directory && !spec.include_system_objects {
            // The domain's own accounts and groups (krbtgt, Administrators, Schema Admins …) are
            // not the organisation's people and teams.
            user_filter = format!("(&{user_filter}{NOT_SYSTEM_OBJECT})");
            group_filter = format!("(&{group_filter}{NOT_SYSTEM_OBJECT})");
        }
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
        if let (true, Some(step)) = (ranged, member_range) {
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
            limits: Limits::of(spec),
            ranged,
            member_range,
            membership_filtered,
        })
    }

    pub fn container_attrs(&self) -> Vec<String> {
        vec![self.schema.id.clone()]
    }
}

fn scope(spec: &DirectorySpec, schema: &Schema) -> Result<Scope, DirectoryError> {
    Ok(Scope {
        base: setting_dn("directory.baseDN", &spec.base_dn)?,
        groups: setting_dns("directory.groups", &spec.groups)?,
        excludes: setting_dns("directory.excludes", &spec.excludes)?,
        ignore_disabled_users: spec.ignore_disabled_users,
        nested_groups: spec.nested_groups,
        member_format: schema.member_format,
        max_memberships: usize::try_from(spec.max_memberships.max(1)).unwrap_or(usize::MAX),
    })
}

/// A DN the task gives; `field` names it in the error.
fn setting_dn(field: &str, text: &str) -> Result<Dn, DirectoryError> {
    Dn::parse(text).map_err(|e| DirectoryError::InvalidSettings(format!("{field}: {e}")))
}

/// A list of DNs the task gives; the error names the field and the position in it.
fn setting_dns(field: &str, texts: &[String]) -> Result<Vec<Dn>, DirectoryError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, text)| setting_dn(&format!("{field}[{i}]"), text))
        .collect()
}

/// Puts the name of the task's field in front of the message of an invalid setting.
fn in_field(field: &'static str) -> impl Fn(DirectoryError) -> DirectoryError {
    move |e| match e {
        DirectoryError::InvalidSettings(detail) => {
            DirectoryError::InvalidSettings(format!("{field}: {detail}"))
        }
        other => other,
    }
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

/// `BaseDnNotFound` unless the base DN exists; a read checks this before anything else it asks.
pub(super) async fn check_base(conn: &mut Connection, base_dn: &str) -> Result<(), DirectoryError> {
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
    let now = SystemTime::now();
    let users = search(
        conn,
        Request {
            base: &q.base_dn,
            filter: &narrowed(&q.user_filter),
            attrs: q.user_attrs.clone(),
            page_size: q.page_size,
            controls: Vec::new(),
            limits: q.limits,
        },
        stats,
        |e| parse_user(e, &q.schema, now),
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
            limits: q.limits,
        },
        stats,
        |e| parse_group(e, &q.schema),
    )
    .await?;
    if q.ranged {
        for (group, next) in groups.iter_mut() {
            if let Some(start) = next.take() {
                fetch_member_ranges(conn, group, q, start, stats).await?;
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
            limits: q.limits,
        },
        stats,
        |e| parse_container(e, &q.schema),
    )
    .await?;
    Ok((users, groups, containers))
}

/// The error a result code other than success stands for.
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
    /// Bounds of the whole read, this search's entries and the earlier ones' together.
    pub limits: Limits,
}

/// One paged subtree search; `parse` turns each entry into an item. Entries are converted as they
/// arrive, so memory holds the parsed items, not the raw messages. An entry that cannot be used is
/// counted in `stats.unreadable` and left out.
pub(super) async fn search<T>(
    conn: &mut Connection,
    request: Request<'_>,
    stats: &mut ReadStats,
    mut parse: impl FnMut(Entry) -> Result<T, BadEntry>,
) -> Result<Vec<T>, DirectoryError> {
    let Request {
        base,
        filter,
        attrs,
        page_size,
        controls,
        limits,
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
    let progress = conn.progress.clone();
    while let Some(raw) = stream.next().await.map_err(op)? {
        stats.entries += 1;
        if let Some(progress) = &progress {
            progress.entry();
        }
        let entry = taken_apart(raw);
        limits.check(&entry, stats.entries, &server)?;
        match entry.and_then(&mut parse) {
            Ok(item) => items.push(item),
            Err(bad) => stats.unreadable.record(bad),
        }
    }
    let result = stream.finish().await;
    let requests = items.len().div_ceil(page_size).max(1);
    stats.requests += requests;
    if let Some(progress) = &progress {
        progress.requests(requests);
    }
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
    q: &Query,
    mut start: usize,
    stats: &mut ReadStats,
) -> Result<(), DirectoryError> {
    let (attr, step, limits) = (q.schema.member[0].as_str(), q.member_range, q.limits);
    let server = conn.server.clone();
    let malformed = |detail: String| DirectoryError::MalformedData {
        server: server.clone(),
        detail,
    };
    if start == usize::MAX {
        return Err(malformed(unending_range(&group.group.dn)));
    }
    loop {
        let range = match step {
            Some(step) => format!(
                "{attr};range={start}-{}",
                start.saturating_add(step.saturating_sub(1))
            ),
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
        let (values, next) = taken_apart_whole(raw, &server)?.take_members(attr);
        if values.is_empty() && next.is_some() {
            return Err(DirectoryError::MalformedData {
                server,
                detail: format!("an empty member range of {}", group.group.dn),
            });
        }
        group
            .members
            .extend(values.into_iter().map(|v| Member::new(v, MemberFormat::Dn)));
        if group.members.len() > limits.values_per_attribute {
            return Err(DirectoryError::LimitExceeded {
                server,
                limit: "directory.maxValuesPerAttribute",
                value: limits.values_per_attribute,
                entry: group.group.dn.clone(),
            });
        }
        match next_range_start(&group.group.dn, start, next) {
            Ok(Some(n)) => start = n,
            Ok(None) => return Ok(()),
            Err(detail) => return Err(malformed(detail)),
        }
    }
}

/// Where the range after the one that started at `start` starts, `None` when that was the last:
/// a server's ranges must move forward, or the read would never end.
fn next_range_start(
    group: &str,
    start: usize,
    next: Option<usize>,
) -> Result<Option<usize>, String> {
    match next {
        None => Ok(None),
        Some(usize::MAX) => Err(unending_range(group)),
        Some(n) if n <= start => Err(format!(
            "the member ranges of {group} do not advance past {start}"
        )),
        Some(n) => Ok(Some(n)),
    }
}

fn unending_range(group: &str) -> String {
    format!("a member range of {group} ends where no range can follow")
}

#[cfg(test)]
mod tests;
