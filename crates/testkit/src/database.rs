//! A disposable database per test, cloned from the `bb_template` database of the local stack.
//!
//! Dropping a [`TestDatabase`] terminates its sessions, drops the replication slots in it (an abandoned slot
//! would make the server retain WAL for ever) and drops the database.

use anyhow::{bail, Context, Result};
use tokio_postgres::{Client, NoTls};

use crate::{unique_name, Stack};

/// A database of its own for one test, with the booking schema and sample data loaded.
#[derive(Debug)]
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl TestDatabase {
    /// Clones `bb_template` into a fresh database.
    pub async fn create() -> Result<Self> {
        Self::create_from("bb_template").await
    }

    /// Creates an empty database (no booking tables).
    pub async fn create_empty() -> Result<Self> {
        Self::create_from("template0").await
    }

    async fn create_from(template: &str) -> Result<Self> {
        let stack = Stack::from_env();
        let admin = connect_url(&stack.database_url).await?;
        let name = unique_name("t");
        // Two clones of the same template at once can collide on the template's lock: retry a few times.
        let mut attempt = 0;
        loop {
            match admin.batch_execute(&format!("create database {name} template {template}")).await {
                Ok(()) => break,
                Err(err) if attempt < 20 => {
                    attempt += 1;
                    let _ = err;
                    tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
                }
                Err(err) => return Err(err).context(format!("creating test database from {template}")),
            }
        }
        let url = database_url(&stack.database_url, &name)?;
        Ok(TestDatabase { name, url, admin_url: stack.database_url })
    }

    /// The database's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A connection URL for the database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The connection settings of the database, as the stages take them.
    pub fn settings(&self) -> tokio_postgres::Config {
        settings(&self.url)
    }

    /// Everything a stage needs to reach the stack (`ROOMSYNC_TEST_*`) and this database, with topics under
    /// `prefix`.
    pub fn connections(&self, prefix: &str) -> streams::Connections {
        let stack = crate::Stack::from_env();
        let mut connections =
            streams::Connections::new(streams::KafkaSettings::new(stack.kafka), stack.registry_url, self.settings());
        connections.topics = vocabulary::topics::Topics::new(prefix);
        connections
    }

    /// Opens a new connection to the database.
    pub async fn connect(&self) -> Result<Client> {
        connect_url(&self.url).await
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let name = self.name.clone();
        let admin_url = self.admin_url.clone();
        // Drop runs inside the test's runtime: do the async clean-up on a thread of its own and wait for it.
        let cleanup = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                return;
            };
            runtime.block_on(async move {
                let Ok(admin) = connect_url(&admin_url).await else { return };
                let _ = admin
                    .execute(
                        "select pg_terminate_backend(active_pid) from pg_replication_slots \
                         where database = $1 and active_pid is not null",
                        &[&name],
                    )
                    .await;
                for _ in 0..50 {
                    let dropped = admin
                        .query(
                            "select pg_drop_replication_slot(slot_name) from pg_replication_slots \
                             where database = $1 and not active",
                            &[&name],
                        )
                        .await;
                    let left = admin
                        .query_one("select count(*) from pg_replication_slots where database = $1", &[&name])
                        .await
                        .map(|row| row.get::<_, i64>(0))
                        .unwrap_or(0);
                    if dropped.is_ok() && left == 0 {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                let _ = admin.batch_execute(&format!("drop database if exists {name} with (force)")).await;
            });
        });
        let _ = cleanup.join();
    }
}

/// Connects and drives the connection on the current runtime.
pub(crate) async fn connect_url(url: &str) -> Result<Client> {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.with_context(|| {
        format!("PostgreSQL of the test stack is not reachable at {url}: start it with `scripts/stack up`")
    })?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// The admin URL with its database replaced.
fn database_url(admin_url: &str, database: &str) -> Result<String> {
    let Some((base, _db)) = admin_url.rsplit_once('/') else {
        bail!("ROOMSYNC_TEST_DATABASE_URL must look like postgres://user@host:port/database, got {admin_url}");
    };
    Ok(format!("{base}/{database}"))
}

/// The connection settings of `url`, a URL this test harness made (a malformed one is a bug in the harness).
pub fn settings(url: &str) -> tokio_postgres::Config {
    match url.parse() {
        Ok(settings) => settings,
        Err(err) => panic!("the test database URL {url} does not parse: {err}"),
    }
}
