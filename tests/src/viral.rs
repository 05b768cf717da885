//! The viral video (issue 20): every connection liking and unliking the same video at once,
//! against a fresh host on SQLite or MariaDB. Reports latency and throughput, and checks what
//! must hold however hot the row: every request answered `status_code` 0, the video's count
//! equal to the users whose last action was a like, and every denormalised counter equal to its
//! rows ([`crate::seed::check`]). `bench/viral` runs it at length; `tests/tests/viral.rs`
//! briefly in CI.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tikspin_core::ports::Sql;
use tikspin_core::testing::SqliteSql;

use crate::api::{envelope, expect_ok, publish_form, query, register, User};
use crate::client::Client;
use crate::fixtures::fixture_bytes;
use crate::harness::{HostConfig, TestHost};
use crate::seed::mysql::MysqlSql;
use crate::servers::MariaDb;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    MariaDb,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "SQLite",
            Backend::MariaDb => "MariaDB",
        }
    }
}

#[derive(Clone, Debug)]
pub struct ViralOptions {
    pub backend: Backend,
    pub connections: usize,
    pub duration: Duration,
    /// Extra `tikspin up` arguments (e.g. `--fast`).
    pub host_args: Vec<String>,
}

#[derive(Debug, Default)]
pub struct ViralReport {
    pub requests: usize,
    pub elapsed: Duration,
    /// Latencies of the like and unlike requests, sorted.
    pub latencies: Vec<Duration>,
    /// Every request that did not answer `status_code` 0, and every count that did not add up.
    pub errors: Vec<String>,
    /// Counters that differ from their rows, after the run.
    pub drift: Vec<String>,
}

impl ViralReport {
    pub fn percentile(&self, p: f64) -> Duration {
        if self.latencies.is_empty() {
            return Duration::ZERO;
        }
        let i = ((self.latencies.len() as f64 * p).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[i - 1]
    }

    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn print(&self, opts: &ViralOptions) {
        println!(
            "viral video, {}, {} connections, {:.0} s{}: {} likes/unlikes, {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; {} errors, {} drifted counters",
            opts.backend.name(),
            opts.connections,
            self.elapsed.as_secs_f64(),
            if opts.host_args.is_empty() { String::new() } else { format!(" ({})", opts.host_args.join(" ")) },
            self.requests,
            self.per_second(),
            ms(self.percentile(0.50)),
            ms(self.percentile(0.99)),
            ms(self.latencies.last().copied().unwrap_or_default()),
            self.errors.len(),
            self.drift.len(),
        );
        for e in self.errors.iter().chain(&self.drift).take(20) {
            println!("  {e}");
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn run(opts: &ViralOptions) -> ViralReport {
    let db = (opts.backend == Backend::MariaDb).then(|| MariaDb::start().expect("mariadb"));
    let mut variables = vec![("seed_welcome_video".to_string(), "false".to_string())];
    if let Some(db) = &db {
        variables.push(("database_url".into(), db.url()));
        variables.push(("database_host".into(), format!("mysql://127.0.0.1:{}", db.port)));
    }
    let host = TestHost::start(HostConfig {
        variables,
        extra_args: opts.host_args.clone(),
        ..Default::default()
    });
    let c = &host.client;
    let author = register(c, "viral-author");
    let video_id = publish_clip(c, &author);
    // Registering costs an argon2id hash each: in parallel, so 64 users take seconds.
    let users: Vec<User> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..opts.connections)
            .map(|_| s.spawn(|| register(&Client::new(&c.base), "viral-fan")))
            .collect();
        handles.into_iter().map(|h| h.join().expect("register")).collect()
    });

    let stop = AtomicBool::new(false);
    let report = Mutex::new(ViralReport::default());
    let started = Instant::now();
    // Each connection alternates like and unlike; the even ones end on a like, so the count
    // the video must end with is known whatever the interleaving.
    let liked_at_end: usize = std::thread::scope(|s| {
        let handles: Vec<_> = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let (stop, report, base) = (&stop, &report, c.base.clone());
                s.spawn(move || fan(&Client::new(&base), u, video_id, i % 2 == 0, stop, report))
            })
            .collect();
        std::thread::sleep(opts.duration);
        stop.store(true, Ordering::SeqCst);
        handles.into_iter().map(|h| h.join().expect("fan") as usize).sum()
    });
    let mut report = report.into_inner().unwrap();
    report.elapsed = started.elapsed();
    report.latencies.sort();

    let count = video_count(c, &author, video_id);
    if count != Some(liked_at_end as i64) {
        report.errors.push(format!(
            "video {video_id}: favorite_count {count:?}, but {liked_at_end} users like it"
        ));
    }
    let sql: Box<dyn Sql> = match &db {
        Some(db) => Box::new(MysqlSql::connect(&db.url()).expect("connect to MariaDB")),
        None => Box::new(
            SqliteSql::open(&host.state_path().join("sqlite_db.db")).expect("open the state"),
        ),
    };
    report.drift = crate::seed::check(sql.as_ref()).unwrap_or_else(|e| vec![format!("check failed: {e}")]);
    report
}

/// One connection's loop; returns whether its user likes the video at the end.
fn fan(
    c: &Client,
    u: &User,
    video_id: i64,
    end_liked: bool,
    stop: &AtomicBool,
    report: &Mutex<ViralReport>,
) -> bool {
    let (mut latencies, mut errors) = (Vec::new(), Vec::new());
    let mut liked = false;
    loop {
        let finishing = stop.load(Ordering::SeqCst);
        if finishing && liked == end_liked {
            break;
        }
        let action = if liked { "2" } else { "1" };
        let path = format!(
            "/douyin/favorite/action/?{}",
            query(&[
                ("token", &u.token),
                ("video_id", &video_id.to_string()),
                ("action_type", action),
            ])
        );
        let t = Instant::now();
        let r = c.post_empty(&path);
        latencies.push(t.elapsed());
        let v = envelope(r);
        if v["status_code"] == 0 {
            liked = !liked;
        } else {
            errors.push(format!("user {} action {action}: {v}", u.id));
            if finishing {
                // Do not spin on a failing request at the end: the count check reports it.
                break;
            }
        }
    }
    let mut r = report.lock().unwrap();
    r.requests += latencies.len();
    r.latencies.extend(latencies);
    r.errors.extend(errors);
    liked
}

fn publish_clip(c: &Client, author: &User) -> i64 {
    let clip = fixture_bytes("landscape-2s-noaudio.mp4");
    let (ct, body) = publish_form("tikspin-viral", &author.token, "the viral one", "v.mp4", &clip);
    expect_ok(&envelope(c.post("/douyin/publish/action/", &ct, &body)));
    let list = publish_list(c, author);
    expect_ok(&list)["video_list"][0]["id"].as_i64().expect("the published video")
}

fn video_count(c: &Client, author: &User, video_id: i64) -> Option<i64> {
    publish_list(c, author)["video_list"]
        .as_array()?
        .iter()
        .find(|v| v["id"] == video_id)?["favorite_count"]
        .as_i64()
}

fn publish_list(c: &Client, author: &User) -> serde_json::Value {
    envelope(c.get(&format!(
        "/douyin/publish/list/?{}",
        query(&[("token", &author.token), ("user_id", &author.id.to_string())])
    )))
}
