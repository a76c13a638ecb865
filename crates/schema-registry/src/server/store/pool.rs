//! A small connection pool: at most `max` PostgreSQL connections, opened on demand, reused while healthy.
//!
//! Invariant: a connection that has closed (server restart, network cut) is never handed out again; the next
//! checkout opens a fresh one, so the registry recovers from a database restart without being restarted itself.

use std::ops::{Deref, DerefMut};
use std::sync::{Mutex, PoisonError};

use tokio::sync::{Semaphore, SemaphorePermit};
use tokio_postgres::{Client, NoTls};

use super::StoreError;

/// Up to `max` connections to one database.
#[derive(Debug)]
pub(crate) struct Pool {
    url: String,
    idle: Mutex<Vec<Client>>,
    permits: Semaphore,
}

/// A checked-out connection; goes back to the pool on drop if it is still open.
pub(crate) struct Conn<'a> {
    client: Option<Client>,
    pool: &'a Pool,
    _permit: SemaphorePermit<'a>,
}

impl Pool {
    /// A pool for `url` holding at most `max` connections (at least one).
    pub(crate) fn new(url: &str, max: usize) -> Self {
        Pool { url: url.to_owned(), idle: Mutex::new(Vec::new()), permits: Semaphore::new(max.max(1)) }
    }

    /// A connection, waiting while `max` are in use.
    pub(crate) async fn get(&self) -> Result<Conn<'_>, StoreError> {
        let permit = self.permits.acquire().await.map_err(|_| StoreError::PoolClosed)?;
        let reused = {
            let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
            idle.retain(|client| !client.is_closed());
            idle.pop()
        };
        let client = match reused {
            Some(client) => client,
            None => self.connect().await?,
        };
        Ok(Conn { client: Some(client), pool: self, _permit: permit })
    }

    async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = tokio_postgres::connect(&self.url, NoTls).await.map_err(StoreError::Connect)?;
        // The connection task ends when the client is dropped or the server goes away; the client then reports
        // `is_closed` and the pool discards it.
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::warn!(error = %err, "registry database connection ended");
            }
        });
        Ok(client)
    }
}

impl Deref for Conn<'_> {
    type Target = Client;

    fn deref(&self) -> &Client {
        // Only `drop` takes the client out.
        self.client.as_ref().unwrap_or_else(|| unreachable!("connection used after drop"))
    }
}

impl DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().unwrap_or_else(|| unreachable!("connection used after drop"))
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            if !client.is_closed() {
                self.pool.idle.lock().unwrap_or_else(PoisonError::into_inner).push(client);
            }
        }
    }
}
