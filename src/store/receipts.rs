//! Receipts of the WeChat channel (migration 0009): keys recorded once across every replica,
//! for de-duplicating WeChat's retries and refusing replayed requests.

use sqlx::Row;

use super::{Store, StoreError, now_ms};

impl Store {
    /// Records `id` with `value` unless it is already recorded: `None` the first time, else
    /// the value recorded first (atomic across connections and replicas).
    pub async fn claim_receipt(&self, id: &str, value: &str) -> Result<Option<String>, StoreError> {
        let done = sqlx::query(
            "INSERT INTO wechat_receipts (id, value, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(id)
        .bind(value)
        .bind(now_ms())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() > 0 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT value FROM wechat_receipts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        // deleted in between by a prune: still seen before
        Ok(Some(row.map(|r| r.get::<String, _>(0)).unwrap_or_default()))
    }

    /// Deletes receipts recorded more than `age_ms` ago; returns how many.
    pub async fn prune_receipts(&self, age_ms: i64) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM wechat_receipts WHERE created_at < $1")
            .bind(now_ms().saturating_sub(age_ms))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
