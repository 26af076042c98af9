//! Directory access: everything that speaks LDAP, and nothing else.

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
pub mod read;
pub mod reader_thread;
pub mod search;
pub mod settings;
pub mod snapshot;
pub mod tls;
