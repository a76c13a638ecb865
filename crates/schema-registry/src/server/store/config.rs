//! Compatibility configuration: a level per subject, one global level, BACKWARD when neither is set.

use tokio_postgres::GenericClient;

use super::{Store, StoreError};
use crate::server::compatibility::Level;

impl Store {
    /// The compatibility level set for `subject`, or the global one for `None`; `None` if none was set.
    pub async fn config(&self, subject: Option<&str>) -> Result<Option<Level>, StoreError> {
        let conn = self.pool.get().await?;
        let row = match subject {
            Some(subject) => {
                conn.query_opt(
                    "select compatibility from schema_registry.subject_config where subject = $1",
                    &[&subject],
                )
                .await?
            }
            None => conn.query_opt("select compatibility from schema_registry.global_config", &[]).await?,
        };
        match row {
            Some(row) => parse_level(&row.try_get::<_, String>(0)?).map(Some),
            None => Ok(None),
        }
    }

    /// The level that applies to `subject`: its own, else the global one, else BACKWARD.
    pub async fn effective_level(&self, subject: &str) -> Result<Level, StoreError> {
        effective_level(&*self.pool.get().await?, subject).await
    }

    /// Sets the level for `subject`, or the global one for `None`.
    pub async fn set_config(&self, subject: Option<&str>, level: Level) -> Result<(), StoreError> {
        let conn = self.pool.get().await?;
        let level = level.to_string();
        match subject {
            Some(subject) => {
                conn.execute(
                    "insert into schema_registry.subject_config (subject, compatibility) values ($1, $2) \
                     on conflict (subject) do update set compatibility = excluded.compatibility",
                    &[&subject, &level],
                )
                .await?
            }
            None => {
                conn.execute(
                    "insert into schema_registry.global_config (compatibility) values ($1) \
                     on conflict (only_row) do update set compatibility = excluded.compatibility",
                    &[&level],
                )
                .await?
            }
        };
        Ok(())
    }

    /// Removes the level set for `subject` (or the global one); returns what it was.
    pub async fn delete_config(&self, subject: Option<&str>) -> Result<Option<Level>, StoreError> {
        let conn = self.pool.get().await?;
        let row = match subject {
            Some(subject) => {
                conn.query_opt(
                    "delete from schema_registry.subject_config where subject = $1 returning compatibility",
                    &[&subject],
                )
                .await?
            }
            None => conn.query_opt("delete from schema_registry.global_config returning compatibility", &[]).await?,
        };
        match row {
            Some(row) => parse_level(&row.try_get::<_, String>(0)?).map(Some),
            None => Ok(None),
        }
    }
}

/// The level that applies to `subject`: its own, else the global one, else BACKWARD.
pub(super) async fn effective_level<C: GenericClient>(client: &C, subject: &str) -> Result<Level, StoreError> {
    let row = client
        .query_one(
            "select coalesce((select compatibility from schema_registry.subject_config where subject = $1), \
             (select compatibility from schema_registry.global_config))",
            &[&subject],
        )
        .await?;
    match row.try_get::<_, Option<String>>(0)? {
        Some(name) => parse_level(&name),
        None => Ok(Level::default()),
    }
}

fn parse_level(name: &str) -> Result<Level, StoreError> {
    name.parse().map_err(|_| StoreError::Corrupt(format!("unknown compatibility level {name:?} in config")))
}
