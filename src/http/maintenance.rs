//! Admin API, maintenance: delete a metric, stream a backup, run a compaction round, and the
//! journal's status. Every handler takes an `AdminToken`.

use super::reply::{json, ApiError, Reply};
use super::route::AdminToken;
use crate::auth;
use crate::journal::Fsync;
use crate::service::Maintenance;
use bytes::Bytes;
use hyper::StatusCode;

/// `DELETE /api/v1/projects/{p}/metrics/{m}`: the metric and every sample acknowledged
/// before the request.
pub fn delete_metric(
    maintenance: &Maintenance,
    _: AdminToken,
    project: &str,
    metric: &str,
) -> Result<Reply, ApiError> {
    if maintenance.store.project(project)?.is_none() {
        return Err(ApiError::NotFound(format!("project {project:?} not found")));
    }
    match maintenance.delete_metric(project, metric) {
        Ok(true) => Ok(json(
            StatusCode::OK,
            &serde_json::json!({"deleted": true, "projectId": project, "metricId": metric}),
        )),
        Ok(false) => Err(ApiError::NotFound(format!(
            "metric {metric:?} not found in project {project:?}"
        ))),
        Err(e) => Err(ApiError::Unavailable(format!(
            "could not delete the metric, nothing was removed; retry later ({e})"
        ))),
    }
}

/// Bytes per chunk when streaming a backup file out.
const BACKUP_CHUNK_BYTES: usize = 256 << 10;

/// `POST /api/v1/admin/backup`: a consistent copy of the store (see `Maintenance::backup_to`),
/// streamed as the bytes of a store file. Restore by starting `stathook serve` on a data dir
/// holding it as `stathook.redb`.
pub async fn backup(maintenance: &Maintenance, _: AdminToken) -> Result<Reply, ApiError> {
    let dir = maintenance.backup_tmp_dir.clone();
    let path = dir.join(format!("{}.redb", auth::new_id("backup-")));
    let (a, p) = (maintenance.clone(), path.clone());
    let made = tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(p.parent().expect("BUG: backup path has a parent"))
            .map_err(|e| format!("create {}: {e}", p.display()))?;
        let stats = a.backup_to(&p)?;
        let file = std::fs::File::open(&p).map_err(|e| format!("open {}: {e}", p.display()))?;
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        // Unlinked now: the open handle keeps the bytes until the stream ends or breaks.
        let _ = std::fs::remove_file(&p);
        Ok::<_, String>((stats, file, len))
    })
    .await
    .map_err(|e| ApiError::Internal(format!("BUG: backup task failed: {e}")))?;
    let (stats, mut file, len) = made.map_err(|e| {
        let _ = std::fs::remove_file(&path);
        ApiError::Unavailable(format!("backup failed: {e}"))
    })?;
    tracing::info!(
        bytes = len,
        segments = stats.segments,
        metrics = stats.metrics,
        "backup written"
    );
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut buf = vec![0u8; BACKUP_CHUNK_BYTES];
        loop {
            match file.read(&mut buf) {
                Ok(0) => return,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    let mut reply = super::reply::streamed("application/octet-stream", rx);
    let h = reply.headers_mut();
    h.insert(hyper::header::CONTENT_LENGTH, len.into());
    let summary = format!(
        "projects={} keys={} metrics={} segments={}",
        stats.projects, stats.keys, stats.metrics, stats.segments
    );
    if let Ok(v) = hyper::header::HeaderValue::from_str(&summary) {
        h.insert("x-stathook-backup", v);
    }
    Ok(reply)
}

/// `POST /api/v1/admin/compact`: one compaction round now (it also runs on its own every
/// `--compact-interval-secs`). Blocks until the round has committed.
pub fn compact(maintenance: &Maintenance, _: AdminToken) -> Result<Reply, ApiError> {
    let s = maintenance
        .compact_now()
        .map_err(|e| ApiError::Unavailable(format!("compaction failed, nothing changed: {e}")))?;
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"generation": s.generation, "metrics": s.metrics,
            "samples": s.samples, "segmentsWritten": s.segments_written}),
    ))
}

/// The journal's sync mode, whether its appends bypass the page cache, and what the flusher
/// has done since the start: with `--fsync interval`, `syncs` far below `frames` is the
/// point; with `always` they are equal.
pub fn journal_status(maintenance: &Maintenance, _: AdminToken) -> Result<Reply, ApiError> {
    let s = maintenance.journal.status();
    let (mode, interval_ms) = match s.fsync {
        Fsync::Always => ("always", None),
        Fsync::Interval(every) => ("interval", Some(every.as_millis() as u64)),
    };
    Ok(json(
        StatusCode::OK,
        &serde_json::json!({"fsync": mode, "fsyncIntervalMs": interval_ms,
            "directIo": s.direct, "generation": s.generation, "frames": s.frames,
            "syncs": s.syncs}),
    ))
}
