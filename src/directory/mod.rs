//! Directory access: everything that speaks LDAP, and nothing else.
//!
//! The modules from the bottom up; each uses only modules listed before it:
//!
//! - [`error`]: the layer's errors, each with a fixed reason for conditions and metrics.
//! - [`dn`]: distinguished names, compared as a directory compares them.
//! - [`id_format`]: text forms of binary ids (objectGUID, objectSid, entryUUID).
//! - [`preset`]: each kind of directory's classes, filters and attributes, and the task's
//!   overrides.
//! - [`snapshot`]: what a read found, in the form the planner consumes.
//! - [`tls`], [`connect`]: the TLS configuration; opening and binding a connection.
//! - [`settings`]: a task's `server` section and Secrets made into connection settings.
//! - [`entry`]: attribute values taken out of a search result entry.
//! - [`assemble`]: entries scoped and resolved into a snapshot (pure).
//! - [`kept`]: the entries a run keeps for the next, and a feed's changes applied to them (pure).
//! - [`parse`]: search entries made into user, group and container records.
//! - [`search`]: the query a task makes (checked by [`search::check_spec`]), paged and ranged
//!   searches, result codes.
//! - [`delta`]: change feeds (syncrepl, uSNChanged): a position, and what changed since one.
//! - [`push`]: a search the server keeps open to say that something changed.
//! - [`root_dse`]: what a server says of itself (vendor, naming contexts, change feed).
//! - [`read`]: a task's read, of everything or of the changes, and what it keeps.
//! - [`reader_thread`]: a read on a thread of its own.
//! - [`session`]: a task's reads on one thread that keeps their connection bound between them.

pub mod assemble;
pub mod connect;
pub mod delta;
pub mod dn;
pub mod entry;
pub mod error;
pub mod id_format;
pub mod kept;
pub mod parse;
pub mod preset;
pub mod progress;
pub mod push;
pub mod read;
pub mod reader_thread;
pub mod root_dse;
pub mod search;
pub mod session;
pub mod settings;
pub mod snapshot;
pub mod tls;
