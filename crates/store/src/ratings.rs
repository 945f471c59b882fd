//! API ratings (AM database): one 1–5 rating per user and API, shown in the Developer
//! Portal.

use crate::db::{on_pool, on_tx};
use crate::{Database, Result};
use tollgate_model::EpochMillis;

/// A rating as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RatingRow {
    /// Id.
    pub id: String,
    /// The rated API.
    pub api_id: String,
    /// Who rated it.
    pub username: String,
    /// 1 to 5.
    pub rating: i32,
}
crate::db::from_row!(RatingRow {
    id,
    api_id,
    username,
    rating
});

/// Sets `username`'s rating of an API, replacing an earlier one; returns the stored row.
pub async fn upsert(db: &Database, api_id: &str, username: &str, rating: i32, at: EpochMillis) -> Result<RatingRow> {
    let mut tx = db.begin().await?;
    let row: RatingRow = on_tx!(&mut tx, |c| sqlx::query_as(
        "INSERT INTO api_ratings (id, api_id, username, rating, created_at) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (api_id, username) DO UPDATE SET rating = excluded.rating \
         RETURNING id, api_id, username, rating"
    )
    .bind(uuid::Uuid::now_v7().to_string())
    .bind(api_id)
    .bind(username)
    .bind(rating)
    .bind(at)
    .fetch_one(c)
    .await)?;
    tx.commit().await?;
    Ok(row)
}

/// An API's ratings, oldest first.
pub async fn list(db: &Database, api_id: &str) -> Result<Vec<RatingRow>> {
    Ok(on_pool!(db.reader(), |p| sqlx::query_as(
        "SELECT id, api_id, username, rating FROM api_ratings WHERE api_id = $1 ORDER BY created_at, id"
    )
    .bind(api_id)
    .fetch_all(p)
    .await)?)
}
