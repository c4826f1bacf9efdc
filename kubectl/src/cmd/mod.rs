//! The commands, and the context they share: the connection (opened on first use, so
//! `config` and `version --client` never touch the network), discovery, and the output streams.

pub mod apply;
pub mod apply_migrate;
pub mod attach;
pub mod auth;
pub mod completion;
pub mod config;
pub mod cp;
pub mod create;
pub mod delete;
pub mod describe;
pub mod diff;
pub mod drain;
pub mod edit;
pub mod exec;
pub mod explain;
pub mod explain_v2;
pub mod expose;
pub mod get;
pub mod info;
pub mod label;
pub mod logs;
pub mod objects;
pub mod patch;
pub mod port_forward;
pub mod prune;
pub mod remote;
pub mod replace;
pub mod rollout;
pub mod run;
pub mod scale;
pub mod select;
pub mod set;
pub mod sort;
pub mod terminal;
pub mod top;
pub mod wait;

use std::io::Write;
use std::sync::Arc;

use crate::connection::{Connection, ConnectionFlags};
use crate::discovery::Discovery;
use crate::error::Error;

/// What every command runs with.
pub struct Context {
    pub flags: ConnectionFlags,
    connection: Option<Connection>,
    discovery: Option<Arc<Discovery>>,
    stdout: Box<dyn Write + Send>,
    stderr: Box<dyn Write + Send>,
}

impl Context {
    /// A context writing to the process's stdout and stderr.
    pub fn new(flags: ConnectionFlags) -> Self {
        Self::with_output(flags, Box::new(std::io::stdout()), Box::new(std::io::stderr()))
    }

    /// A context writing to the given streams.
    pub fn with_output(flags: ConnectionFlags, stdout: Box<dyn Write + Send>, stderr: Box<dyn Write + Send>) -> Self {
        Self {
            flags,
            connection: None,
            discovery: None,
            stdout,
            stderr,
        }
    }

    /// The connection, opened on first use.
    pub async fn connection(&mut self) -> Result<&Connection, Error> {
        if self.connection.is_none() {
            self.connection = Some(Connection::open(&self.flags).await?);
        }
        Ok(self.connection.as_ref().expect("opened above"))
    }

    /// A clone of the client.
    pub async fn client(&mut self) -> Result<kube::Client, Error> {
        Ok(self.connection().await?.client.clone())
    }

    /// The namespace commands default to.
    pub async fn namespace(&mut self) -> Result<String, Error> {
        Ok(self.connection().await?.namespace.clone())
    }

    /// What the server serves, fetched on first use.
    pub async fn discovery(&mut self) -> Result<Arc<Discovery>, Error> {
        if let Some(discovery) = &self.discovery {
            return Ok(discovery.clone());
        }
        let client = self.client().await?;
        let discovery = Arc::new(Discovery::fetch(&client).await?);
        self.discovery = Some(discovery.clone());
        Ok(discovery)
    }

    /// Writes to stdout (flushed, so streams show up as they come).
    pub fn out(&mut self, text: &str) {
        let _ = self.stdout.write_all(text.as_bytes());
        let _ = self.stdout.flush();
    }

    /// Writes to stderr.
    pub fn err(&mut self, text: &str) {
        let _ = self.stderr.write_all(text.as_bytes());
        let _ = self.stderr.flush();
    }
}
