//! A component that exercises each host interface, driven by the host's integration tests.
//! Each path is one probe; answers are plain text so a failing test shows what happened.

use spin_sdk::http::{IntoResponse, Method, Request, Response};
use spin_sdk::http_component;

fn query(req: &Request, name: &str) -> Option<String> {
    req.query()
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| {
            v.replace("%2F", "/")
                .replace("%3A", ":")
                .replace("%40", "@")
        })
}

fn text(status: u16, body: impl Into<String>) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body.into())
        .build()
}

#[http_component]
async fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let path = req
        .header("spin-path-info")
        .and_then(|h| h.as_str())
        .unwrap_or("")
        .to_string();
    let route = req
        .header("spin-component-route")
        .and_then(|h| h.as_str())
        .unwrap_or("")
        .to_string();
    let probe = if path.is_empty() {
        route.clone()
    } else {
        path.clone()
    };
    Ok(match probe.as_str() {
        "/headers" | "/exact" => {
            let mut lines: Vec<String> = req
                .headers()
                .filter(|(k, _)| k.starts_with("spin-"))
                .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
                .collect();
            lines.sort();
            text(200, lines.join("\n"))
        }
        "/echo-body" => Response::builder()
            .status(200)
            .header("x-method", format!("{:?}", req.method()))
            .body(req.into_body())
            .build(),
        "/kv/set" => {
            let store = spin_sdk::key_value::Store::open_default()?;
            store.set(
                &query(&req, "key").unwrap_or_default(),
                query(&req, "value").unwrap_or_default().as_bytes(),
            )?;
            text(200, "ok")
        }
        "/kv/get" => match spin_sdk::key_value::Store::open_default() {
            Ok(store) => match store.get(&query(&req, "key").unwrap_or_default())? {
                Some(v) => text(200, String::from_utf8_lossy(&v)),
                None => text(404, "missing"),
            },
            Err(e) => text(403, format!("open failed: {e:?}")),
        },
        // wasi:keyvalue (Spin 3+): the same store as /kv/*, its atomics.
        "/wasi-kv/increment" => {
            use spin_sdk::wit::wasi::keyvalue::{atomics, store};
            let delta = query(&req, "delta").and_then(|d| d.parse().ok()).unwrap_or(1);
            let bucket = match store::open("default") {
                Ok(b) => b,
                Err(e) => return Ok(text(403, format!("open failed: {e:?}"))),
            };
            match atomics::increment(&bucket, &query(&req, "key").unwrap_or_default(), delta) {
                Ok(n) => text(200, n.to_string()),
                Err(e) => text(500, format!("increment failed: {e:?}")),
            }
        }
        // One compare-and-swap: `current`, then swap in `value` only if it still holds
        // `expect` (`-` for absent). `sleep_ms` between the two lets a test race a write in.
        "/wasi-kv/cas" => {
            use spin_sdk::wit::wasi::keyvalue::{atomics, store};
            let bucket = store::open("default").map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let key = query(&req, "key").unwrap_or_default();
            let cas = atomics::Cas::new(&bucket, &key).map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let current = cas.current().map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let seen = current
                .as_deref()
                .map_or("-".to_string(), |v| String::from_utf8_lossy(v).into_owned());
            if let Some(ms) = query(&req, "sleep_ms").and_then(|v| v.parse().ok()) {
                std::thread::sleep(std::time::Duration::from_millis(ms));
            }
            let value = query(&req, "value").unwrap_or_default();
            match atomics::swap(cas, value.as_bytes()) {
                Ok(()) => text(200, format!("swapped {seen}")),
                Err(atomics::CasError::CasFailed(fresh)) => {
                    let now = fresh.current().map_err(|e| anyhow::anyhow!("{e:?}"))?;
                    let now = now.map_or("-".to_string(), |v| String::from_utf8_lossy(&v).into_owned());
                    text(409, format!("cas-failed {seen} now {now}"))
                }
                Err(atomics::CasError::StoreError(e)) => text(500, format!("store error: {e:?}")),
            }
        }
        "/sqlite/commit" | "/sqlite/rollback" => {
            use spin_sdk::sqlite::{Connection, Value};
            let count = |c: &Connection| -> anyhow::Result<i64> {
                let r = c.execute("SELECT COUNT(*) AS n FROM t", &[])?;
                let n = r
                    .rows()
                    .next()
                    .and_then(|row| row.get::<i64>("n"))
                    .unwrap_or(-1);
                Ok(n)
            };
            let conn = Connection::open_default()?;
            conn.execute("CREATE TABLE IF NOT EXISTS t (x INTEGER)", &[])?;
            let before = count(&conn)?;
            let tx = Connection::open_default()?;
            tx.execute("BEGIN", &[])?;
            tx.execute("INSERT INTO t (x) VALUES (?)", &[Value::Integer(1)])?;
            tx.execute("INSERT INTO t (x) VALUES (?)", &[Value::Integer(2)])?;
            let inside = count(&tx)?;
            if probe == "/sqlite/commit" {
                tx.execute("COMMIT", &[])?;
            }
            drop(tx);
            let after = count(&conn)?;
            text(
                200,
                format!("before={before} inside={inside} after={after}"),
            )
        }
        // Whether a second `open` gets the connection the first one had: a TEMP table lives on
        // its connection only, so a fresh connection does not see it.
        "/sqlite/connection" => {
            use spin_sdk::sqlite::Connection;
            let first = Connection::open_default()?;
            first.execute("CREATE TEMP TABLE IF NOT EXISTS mine (x INTEGER)", &[])?;
            drop(first);
            let second = Connection::open_default()?;
            let seen = second.execute("SELECT x FROM temp.mine", &[]).is_ok();
            text(200, if seen { "reused" } else { "fresh" })
        }
        "/var" => match spin_sdk::variables::get(&query(&req, "name").unwrap_or_default()) {
            Ok(v) => text(200, v),
            Err(e) => text(404, format!("{e:?}")),
        },
        "/outbound" => {
            let url = query(&req, "url").unwrap_or_default();
            let outgoing = Request::builder().method(Method::Get).uri(url).build();
            match spin_sdk::http::send::<_, Response>(outgoing).await {
                Ok(r) => text(200, format!("status={}", r.status())),
                Err(e) => text(502, format!("refused: {e}")),
            }
        }
        "/redis" => {
            let addr = query(&req, "address").unwrap_or_default();
            match spin_sdk::redis::Connection::open(&addr) {
                Ok(c) => {
                    c.set("probe", &b"v1".to_vec())?;
                    let n = c.incr("probe-counter")?;
                    let v = c.get("probe")?.unwrap_or_default();
                    text(200, format!("get={} incr={n}", String::from_utf8_lossy(&v)))
                }
                Err(e) => text(403, format!("open failed: {e:?}")),
            }
        }
        "/mysql" => {
            use spin_sdk::mysql::{Connection, Decode, ParameterValue};
            let addr = query(&req, "address").unwrap_or_default();
            let conn = match Connection::open(&addr) {
                Ok(c) => c,
                Err(e) => return Ok(text(403, format!("open failed: {e:?}"))),
            };
            conn.execute("CREATE TABLE IF NOT EXISTS probe (id BIGINT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(64) NOT NULL, n BIGINT) CHARACTER SET utf8mb4", &[])?;
            conn.execute("START TRANSACTION", &[])?;
            conn.execute(
                "INSERT INTO probe (name, n) VALUES (?, ?)",
                &[
                    ParameterValue::Str("数据 🎬".into()),
                    ParameterValue::Int64(41),
                ],
            )?;
            conn.execute("COMMIT", &[])?;
            let rows = conn.query(
                "SELECT name, n + 1 AS n FROM probe ORDER BY id DESC LIMIT 1",
                &[],
            )?;
            let row = &rows.rows[0];
            let name = String::decode(&row[0])?;
            let n = i64::decode(&row[1])?;
            text(200, format!("name={name} n={n}"))
        }
        "/trap" => {
            #[allow(unconditional_panic)]
            let v = [1u8; 1][query(&req, "i").map(|s| s.len()).unwrap_or(5)];
            text(200, format!("{v}"))
        }
        "/spin" => {
            let mut x: u64 = 0;
            loop {
                x = std::hint::black_box(x.wrapping_add(1));
            }
        }
        "/alloc" => {
            let mib: usize = query(&req, "mib").and_then(|s| s.parse().ok()).unwrap_or(1);
            let mut v: Vec<u8> = Vec::new();
            if v.try_reserve_exact(mib << 20).is_err() {
                return Ok(text(507, "allocation refused"));
            }
            v.resize(mib << 20, 1);
            text(200, format!("allocated {}", v.len()))
        }
        other => text(404, format!("no probe {other:?}")),
    })
}
