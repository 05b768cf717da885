//! `--metrics-listen`: Prometheus text at `GET /metrics` on a listener of its own, never the
//! app's (Spin serves nothing but the app and `/.well-known/spin/*` on the app's port, so neither
//! does this host), and the TikSpin job backlog read at scrape time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use super::Metrics;

/// The content type of the Prometheus text format this renders.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// States the app's jobs move through (crates/core/src/jobs.rs); always reported, 0 when none.
const JOB_STATES: [&str; 4] = ["pending", "running", "dead", "done"];

/// Refuses a metrics address that is the app's (the same port on the same or a wildcard
/// address): the app's port serves the app only.
pub fn check_address(metrics: SocketAddr, app: SocketAddr) -> Result<()> {
    let overlaps = metrics.port() == app.port()
        && (metrics.ip() == app.ip() || metrics.ip().is_unspecified() || app.ip().is_unspecified());
    if overlaps && metrics.port() != 0 {
        bail!(
            "--metrics-listen {metrics}: that is the app's address ({app}); metrics are served on a listener of their own"
        );
    }
    Ok(())
}

pub async fn bind(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .with_context(|| format!("--metrics-listen: cannot listen on {addr}"))
}

pub async fn serve(
    metrics: Arc<Metrics>,
    listener: TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> Result<()> {
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            _ = shutdown.changed() => return Ok(()),
        };
        let metrics = metrics.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                let metrics = metrics.clone();
                async move { Ok::<_, Infallible>(answer(&metrics, &req).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

async fn answer<B>(metrics: &Arc<Metrics>, req: &http::Request<B>) -> Response<Full<Bytes>> {
    let reply = |status: StatusCode, body: String, content_type: &str| {
        let mut r = Response::new(Full::new(Bytes::from(body)));
        *r.status_mut() = status;
        r.headers_mut()
            .insert(http::header::CONTENT_TYPE, content_type.parse().unwrap());
        r
    };
    if req.uri().path() != "/metrics" {
        return reply(StatusCode::NOT_FOUND, "not found: try /metrics\n".into(), "text/plain");
    }
    if req.method() != http::Method::GET && req.method() != http::Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, "GET only\n".into(), "text/plain");
    }
    // Rendering reads the jobs table: off the async workers.
    let m = metrics.clone();
    match tokio::task::spawn_blocking(move || m.render()).await {
        Ok(text) => reply(StatusCode::OK, text, CONTENT_TYPE),
        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n"), "text/plain"),
    }
}

/// `SELECT state, COUNT(*) FROM jobs GROUP BY state` on a read-only connection that waits at
/// most 250 ms for a writer's lock. `None` when the database has no `jobs` table: not created
/// yet, or the app keeps its jobs elsewhere (MySQL), where zeros would be a lie.
pub fn job_backlog(db: &Path) -> Result<Option<Vec<(String, u64)>>> {
    let mut counts: Vec<(String, u64)> = JOB_STATES.iter().map(|s| (s.to_string(), 0)).collect();
    if !db.exists() {
        return Ok(None);
    }
    let conn = rusqlite::Connection::open_with_flags(
        db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {}", db.display()))?;
    conn.busy_timeout(Duration::from_millis(250))?;
    let table: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'jobs'",
            [],
            |r| r.get(0),
        )
        .ok();
    if table.is_none() {
        return Ok(None);
    }
    let mut stmt = conn.prepare("SELECT state, COUNT(*) FROM jobs GROUP BY state")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    for row in rows {
        let (state, n) = row?;
        let n = u64::try_from(n).unwrap_or(0);
        match counts.iter_mut().find(|(s, _)| *s == state) {
            Some(slot) => slot.1 = n,
            None => counts.push((state, n)),
        }
    }
    Ok(Some(counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_apps_own_address_is_refused() {
        let app: SocketAddr = "127.0.0.1:3000".parse().unwrap();
        assert!(check_address("127.0.0.1:3000".parse().unwrap(), app).is_err());
        assert!(check_address("0.0.0.0:3000".parse().unwrap(), app).is_err());
        assert!(check_address("127.0.0.1:3000".parse().unwrap(), "0.0.0.0:3000".parse().unwrap()).is_err());
        assert!(check_address("127.0.0.1:9000".parse().unwrap(), app).is_ok());
        assert!(check_address("127.0.0.2:3000".parse().unwrap(), app).is_ok());
    }

    #[test]
    fn the_backlog_counts_jobs_by_state_and_nothing_without_a_table() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("db.sqlite");
        assert_eq!(job_backlog(&db).unwrap(), None);
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch("CREATE TABLE other (x INTEGER)").unwrap();
        assert_eq!(job_backlog(&db).unwrap(), None);
        conn.execute_batch("CREATE TABLE jobs (id INTEGER PRIMARY KEY, state TEXT NOT NULL)")
            .unwrap();
        assert!(job_backlog(&db).unwrap().unwrap().iter().all(|(_, n)| *n == 0));
        conn.execute_batch(
            "INSERT INTO jobs (state) VALUES ('pending'), ('pending'), ('dead'), ('done');",
        )
        .unwrap();
        let got = job_backlog(&db).unwrap().unwrap();
        assert_eq!(
            got,
            vec![
                ("pending".into(), 2),
                ("running".into(), 0),
                ("dead".into(), 1),
                ("done".into(), 1)
            ]
        );
    }
}
