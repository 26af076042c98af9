//! A connection's own check, apart from any task: its Secrets resolved where its owner keeps them,
//! a bind to the first server that answers, and what that server's root DSE offers. The operator
//! checks every connection when it is created or changed and then on an interval; [`report`] turns
//! the outcome into the connection's status.

pub mod report;

use super::resolve::{
    Connection, Given, Origin, Policy, References, ResolveError, connection_namespace, material,
};
use super::validate::{InvalidSpec, server as check_server};
use crate::directory::connect::connect;
use crate::directory::error::DirectoryError;
use crate::directory::reader_thread::on_reader_thread;
use crate::directory::root_dse::{Offer, inspect};
use crate::directory::settings::server_settings;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("{0}")]
    Invalid(InvalidSpec),
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    #[error(transparent)]
    Directory(#[from] DirectoryError),
}

impl CheckError {
    pub fn reason(&self) -> &'static str {
        match self {
            CheckError::Invalid(_) => "InvalidSpec",
            CheckError::Resolve(e) => e.reason(),
            CheckError::Directory(e) => e.reason(),
        }
    }
}

/// A check that went through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passed {
    /// The URL that answered.
    pub url: String,
    pub offer: Offer,
    /// The connection names no credentials: the bind was anonymous.
    pub anonymous: bool,
}

/// Checks `connection`: resolve, bind, read the root DSE.
pub async fn check(
    connection: &Connection,
    references: &impl References,
    policy: &Policy,
) -> Result<Passed, CheckError> {
    check_server(&connection.server, "").map_err(CheckError::Invalid)?;
    let origin = Origin {
        server: connection.server.clone(),
        namespace: connection_namespace(connection, policy),
        inline: false,
        via: None,
    };
    let material = material(&origin, references, Given::default(), policy).await?;
    let anonymous = material.credentials.is_none();
    let settings = server_settings(&connection.server, material)?;
    let first_url = settings.urls.first().cloned().unwrap_or_default();
    let (url, offer) = on_reader_thread(&first_url, async move {
        let mut conn = connect(&settings).await?;
        let offer = inspect(&mut conn).await?;
        let (server, timeout) = (conn.server.clone(), conn.timeout);
        conn.close(timeout).await;
        Ok(((server, offer), ()))
    })
    .await?;
    Ok(Passed {
        url,
        offer,
        anonymous,
    })
}
