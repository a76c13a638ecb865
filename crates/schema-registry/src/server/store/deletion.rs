//! Deleting subjects and versions, Confluent's way: a soft delete hides versions (they keep their numbers, ids
//! stay resolvable), a permanent delete removes only what was soft-deleted before.
//!
//! Invariant: a soft delete never frees a version number (the rows stay, numbering continues from the highest
//! row); only a permanent delete of the highest versions lets their numbers be given out again. Both run under
//! the subject's advisory lock, so they never interleave with a registration of the same subject.

use super::{Store, StoreError, VersionSpec, SUBJECT_LOCK_CLASS};

/// Outcome of a soft or permanent delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    /// These versions were deleted.
    Deleted(Vec<i32>),
    /// Nothing by that subject (or version) exists.
    NotFound,
    /// A soft delete of something already soft-deleted.
    AlreadySoftDeleted,
    /// A permanent delete of something still live.
    NotSoftDeletedFirst,
}

impl Store {
    /// Soft-deletes (or, if `permanent`, removes a soft-deleted) subject.
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Deletion, StoreError> {
        self.delete(subject, None, permanent).await
    }

    /// Soft-deletes (or, if `permanent`, removes a soft-deleted) version of a subject.
    pub async fn delete_version(
        &self,
        subject: &str,
        spec: VersionSpec,
        permanent: bool,
    ) -> Result<Deletion, StoreError> {
        self.delete(subject, Some(spec), permanent).await
    }

    async fn delete(&self, subject: &str, spec: Option<VersionSpec>, permanent: bool) -> Result<Deletion, StoreError> {
        let mut conn = self.pool.get().await?;
        let tx = conn.transaction().await?;
        tx.execute("select pg_advisory_xact_lock($1, hashtext($2))", &[&SUBJECT_LOCK_CLASS, &subject]).await?;
        // Which rows the request is about; `latest` means the highest live version, as in Confluent.
        let number = match spec {
            None => None,
            Some(VersionSpec::Number(n)) => Some(n),
            Some(VersionSpec::Latest) => {
                let row = tx
                    .query_one(
                        "select max(version) from schema_registry.subject_versions where subject = $1 and not deleted",
                        &[&subject],
                    )
                    .await?;
                match row.try_get::<_, Option<i32>>(0)? {
                    Some(n) => Some(n),
                    None => return Ok(Deletion::NotFound),
                }
            }
        };
        let rows = tx
            .query(
                "select version, deleted from schema_registry.subject_versions \
                 where subject = $1 and ($2::integer is null or version = $2) order by version",
                &[&subject, &number],
            )
            .await?;
        let mut live = Vec::new();
        let mut soft_deleted = Vec::new();
        for row in &rows {
            let version: i32 = row.try_get(0)?;
            if row.try_get(1)? {
                soft_deleted.push(version);
            } else {
                live.push(version);
            }
        }
        let outcome = match (permanent, live.is_empty(), soft_deleted.is_empty()) {
            (_, true, true) => Deletion::NotFound,
            (false, true, false) => Deletion::AlreadySoftDeleted,
            (false, false, _) => {
                tx.execute(
                    "update schema_registry.subject_versions set deleted = true \
                     where subject = $1 and ($2::integer is null or version = $2) and not deleted",
                    &[&subject, &number],
                )
                .await?;
                Deletion::Deleted(live)
            }
            (true, false, _) => Deletion::NotSoftDeletedFirst,
            (true, true, false) => {
                tx.execute(
                    "delete from schema_registry.subject_versions \
                     where subject = $1 and ($2::integer is null or version = $2) and deleted",
                    &[&subject, &number],
                )
                .await?;
                if number.is_none() {
                    tx.execute("delete from schema_registry.subject_config where subject = $1", &[&subject]).await?;
                }
                Deletion::Deleted(soft_deleted)
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}
