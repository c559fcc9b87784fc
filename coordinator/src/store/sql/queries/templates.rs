//! Templates: versions (a new version per new digest), aliases, and the lookups by version,
//! alias or newest.

use std::collections::BTreeMap;

use sqlstore::row::{corrupt, get, to_i64, to_u32};
use sqlstore::{is_fk_violation, is_unique_violation};

use super::{begin, map_err, not_found, template_from_row, Conn, DbRow};
use crate::model::{NewTemplate, TemplateRecord, TemplateRef};
use crate::store::{StoreError, StoreResult};

async fn aliases_of(
    c: &mut Conn,
    tenant_id: &str,
    name: &str,
    version: u32,
) -> StoreResult<Vec<String>> {
    let rows = sqlx::query(
        "SELECT alias FROM template_aliases WHERE tenant_id = $1 AND name = $2 AND version = $3 \
         ORDER BY alias",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(i64::from(version))
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    Ok(rows
        .iter()
        .map(|r| get(r, "alias"))
        .collect::<Result<_, _>>()?)
}

/// A template row with its aliases filled in.
async fn with_aliases(c: &mut Conn, row: Option<DbRow>) -> StoreResult<Option<TemplateRecord>> {
    let Some(row) = row else { return Ok(None) };
    let mut rec = template_from_row(&row)?;
    rec.aliases = aliases_of(c, &rec.tenant_id, &rec.name, rec.version).await?;
    Ok(Some(rec))
}

/// [`Store::insert_template`](crate::store::Store::insert_template): a concurrent insert of the
/// same name can take the version (or digest) first; the second try then sees it.
pub(super) async fn insert(c: &mut Conn, new: &NewTemplate) -> StoreResult<(TemplateRecord, bool)> {
    for _ in 0..2 {
        if let Some(done) = try_insert_template(c, new).await? {
            return Ok(done);
        }
    }
    Err(StoreError::Unavailable(format!(
        "template {} is being uploaded concurrently; retry",
        new.name
    )))
}

/// One try of [`insert`]; None when a concurrent insert won a unique key.
async fn try_insert_template(
    c: &mut Conn,
    new: &NewTemplate,
) -> StoreResult<Option<(TemplateRecord, bool)>> {
    let mut tx = begin(c).await?;
    let existing = sqlx::query(concat!(
        "SELECT ",
        template_cols!(),
        " FROM templates WHERE tenant_id = $1 AND name = $2 AND digest = $3"
    ))
    .bind(&new.tenant_id)
    .bind(&new.name)
    .bind(&new.digest)
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_err)?;
    if let Some(rec) = with_aliases(&mut tx, existing).await? {
        return Ok(Some((rec, false)));
    }
    let row = sqlx::query(
        "SELECT CAST(coalesce(max(version), 0) + 1 AS BIGINT) AS next FROM templates \
         WHERE tenant_id = $1 AND name = $2",
    )
    .bind(&new.tenant_id)
    .bind(&new.name)
    .fetch_one(&mut *tx)
    .await
    .map_err(map_err)?;
    let version = to_u32(get(&row, "next")?, "version")?;
    let inserted = sqlx::query(
        "INSERT INTO templates (tenant_id, name, version, digest, size_bytes, manifest_json, \
         blob_key, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&new.tenant_id)
    .bind(&new.name)
    .bind(i64::from(version))
    .bind(&new.digest)
    .bind(to_i64(new.size_bytes, "template size")?)
    .bind(&new.manifest_json)
    .bind(&new.blob_key)
    .bind(new.created_ms)
    .execute(&mut *tx)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if is_unique_violation(&e) => return Ok(None),
        Err(e) if is_fk_violation(&e) => {
            return Err(not_found(format!("tenant {}", new.tenant_id)))
        }
        Err(e) => return Err(map_err(e)),
    }
    tx.commit().await.map_err(map_err)?;
    Ok(Some((
        TemplateRecord {
            tenant_id: new.tenant_id.clone(),
            name: new.name.clone(),
            version,
            digest: new.digest.clone(),
            size_bytes: new.size_bytes,
            manifest_json: new.manifest_json.clone(),
            blob_key: new.blob_key.clone(),
            created_ms: new.created_ms,
            aliases: Vec::new(),
        },
        true,
    )))
}

pub(super) async fn set_alias(
    c: &mut Conn,
    tenant_id: &str,
    name: &str,
    alias: &str,
    version: u32,
) -> StoreResult<TemplateRecord> {
    let mut tx = begin(c).await?;
    let row = sqlx::query(concat!(
        "SELECT ",
        template_cols!(),
        " FROM templates WHERE tenant_id = $1 AND name = $2 AND version = $3"
    ))
    .bind(tenant_id)
    .bind(name)
    .bind(i64::from(version))
    .fetch_optional(&mut *tx)
    .await
    .map_err(map_err)?;
    let Some(row) = row else {
        return Err(not_found(format!("template {name}@{version}")));
    };
    sqlx::query(
        "INSERT INTO template_aliases (tenant_id, name, alias, version) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, name, alias) DO UPDATE SET version = excluded.version",
    )
    .bind(tenant_id)
    .bind(name)
    .bind(alias)
    .bind(i64::from(version))
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    let rec = with_aliases(&mut tx, Some(row))
        .await?
        .ok_or_else(|| corrupt("template vanished"))?;
    tx.commit().await.map_err(map_err)?;
    Ok(rec)
}

/// A template version by reference, with its aliases.
pub(super) async fn find(
    c: &mut Conn,
    tenant_id: &str,
    r: &TemplateRef,
) -> StoreResult<Option<TemplateRecord>> {
    let row = match r {
        TemplateRef::Latest(name) => sqlx::query(concat!(
            "SELECT ",
            template_cols!(),
            " FROM templates WHERE tenant_id = $1 AND name = $2 \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(tenant_id)
        .bind(name)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?,
        TemplateRef::Version(name, version) => sqlx::query(concat!(
            "SELECT ",
            template_cols!(),
            " FROM templates WHERE tenant_id = $1 AND name = $2 AND version = $3"
        ))
        .bind(tenant_id)
        .bind(name)
        .bind(i64::from(*version))
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?,
        TemplateRef::Alias(name, alias) => sqlx::query(concat!(
            "SELECT ",
            template_cols!(),
            " FROM templates WHERE tenant_id = $1 AND name = $2 AND version = \
             (SELECT a.version FROM template_aliases a \
             WHERE a.tenant_id = $1 AND a.name = $2 AND a.alias = $3)"
        ))
        .bind(tenant_id)
        .bind(name)
        .bind(alias)
        .fetch_optional(&mut *c)
        .await
        .map_err(map_err)?,
    };
    with_aliases(c, row).await
}

/// Newest version of each template name, ordered by name, names after `after`.
pub(super) async fn list(
    c: &mut Conn,
    tenant_id: &str,
    after: Option<&str>,
    limit: u32,
) -> StoreResult<Vec<TemplateRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        template_cols!(),
        " FROM templates t WHERE tenant_id = $1 AND name > $2 AND version = \
         (SELECT max(m.version) FROM templates m \
         WHERE m.tenant_id = t.tenant_id AND m.name = t.name) \
         ORDER BY name LIMIT $3"
    ))
    .bind(tenant_id)
    .bind(after.unwrap_or(""))
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await
    .map_err(map_err)?;
    let mut records = rows
        .iter()
        .map(template_from_row)
        .collect::<StoreResult<Vec<_>>>()?;
    if let (Some(first), Some(last)) = (records.first(), records.last()) {
        let aliases = sqlx::query(
            "SELECT name, version, alias FROM template_aliases \
             WHERE tenant_id = $1 AND name >= $2 AND name <= $3 ORDER BY alias",
        )
        .bind(tenant_id)
        .bind(first.name.clone())
        .bind(last.name.clone())
        .fetch_all(&mut *c)
        .await
        .map_err(map_err)?;
        let mut by_version: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
        for row in &aliases {
            by_version
                .entry((get(row, "name")?, get(row, "version")?))
                .or_default()
                .push(get(row, "alias")?);
        }
        for rec in &mut records {
            if let Some(list) = by_version.remove(&(rec.name.clone(), i64::from(rec.version))) {
                rec.aliases = list;
            }
        }
    }
    Ok(records)
}
