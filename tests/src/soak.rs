//! The soak: a mixed, realistic load against one host for a configurable time, then what a
//! long run must show — memory flat, no error, no counter drifting from its rows.
//!
//! Run it with `bench/soak` (10 minutes by default); `tests/tests/soak.rs` runs a short one in
//! CI. Each client thread owns its users, so every action it takes has a known right answer
//! (a like it has not given yet, a comment of its own to delete): any non-zero `status_code`,
//! non-200 status or transport error is an error, never "expected under load".
//!
//! The host serves the embedded layout (`spin.toml`) on a fresh state directory, so the final
//! check reads the SQLite file directly and compares every counter column with its rows.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::api::{multipart, query, unique_name, Part};
use crate::harness::{HostConfig, TestHost};

/// What to run.
#[derive(Clone, Debug)]
pub struct SoakOptions {
    /// Length of the measured load (after the warm-up).
    pub duration: Duration,
    /// Load before the "warm" memory sample. Long enough for the pooling allocator to have
    /// touched the slots the load's peak concurrency needs: each slot an instance has used keeps
    /// 2 MiB of linear memory and 512 KiB of tables resident (Spin's defaults), and new peaks
    /// are reached for minutes. Measured with 8 clients: 126 MiB at 20 s, 155 MiB at 2 min,
    /// then 162–168 MiB for the next ten minutes.
    pub warmup: Duration,
    /// Client threads (each owns [`USERS_PER_CLIENT`] users).
    pub clients: usize,
    /// Latency windows reported over the run.
    pub windows: usize,
    /// Seconds between uploads across all clients (uploads are the heaviest request).
    pub upload_every: Duration,
}

impl Default for SoakOptions {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(600),
            warmup: Duration::from_secs(180),
            clients: 8,
            windows: 10,
            upload_every: Duration::from_secs(10),
        }
    }
}

const USERS_PER_CLIENT: usize = 3;
/// Videos published before the load starts, so likes and comments have somewhere to go.
const SEED_VIDEOS: usize = 6;

/// Per-endpoint latencies of one time window, in ms.
#[derive(Default, Debug, Clone)]
pub struct Window {
    pub samples: BTreeMap<&'static str, Vec<f64>>,
}

impl Window {
    /// (endpoint, requests, p50 ms, p99 ms), sorted by endpoint.
    pub fn summary(&self) -> Vec<(&'static str, usize, f64, f64)> {
        self.samples
            .iter()
            .map(|(k, v)| {
                let mut v = v.clone();
                v.sort_by(|a, b| a.total_cmp(b));
                let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
                (*k, v.len(), at(0.50), at(0.99))
            })
            .collect()
    }
}

/// What a soak found.
#[derive(Debug)]
pub struct SoakReport {
    /// Host resident memory (KiB): after the warm-up, and at the end.
    pub rss_warm_kib: u64,
    pub rss_end_kib: u64,
    /// Resident memory sampled at the end of each window (KiB).
    pub rss_kib: Vec<u64>,
    pub windows: Vec<Window>,
    pub requests: usize,
    /// Every failed request, with what came back.
    pub errors: Vec<String>,
    /// Counters that differ from their rows: `table.column (id): counter vs rows`.
    pub drift: Vec<String>,
}

impl SoakReport {
    /// Relative growth of resident memory from the warm sample to the end.
    pub fn rss_growth(&self) -> f64 {
        self.rss_end_kib as f64 / self.rss_warm_kib.max(1) as f64 - 1.0
    }

    pub fn print(&self) {
        println!("soak: {} requests", self.requests);
        for (i, w) in self.windows.iter().enumerate() {
            println!(
                "window {:>2} (rss {} KiB):",
                i + 1,
                self.rss_kib.get(i).copied().unwrap_or(0)
            );
            for (name, n, p50, p99) in w.summary() {
                println!("  {name:<16} {n:>7} req   p50 {p50:>8.2} ms   p99 {p99:>8.2} ms");
            }
        }
        println!(
            "rss: warm {} KiB, end {} KiB ({:+.1}%)",
            self.rss_warm_kib,
            self.rss_end_kib,
            100.0 * self.rss_growth()
        );
        println!("errors: {}", self.errors.len());
        for e in self.errors.iter().take(20) {
            println!("  {e}");
        }
        println!("counter drift: {}", self.drift.len());
        for d in self.drift.iter().take(20) {
            println!("  {d}");
        }
    }
}

/// A failed request: transport error, non-200, or a non-zero `status_code`.
type Outcome = Result<Value, String>;

struct Api {
    base: String,
    agent: ureq::Agent,
}

impl Api {
    fn new(base: &str) -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .new_agent();
        Self {
            base: base.to_string(),
            agent,
        }
    }

    fn check(what: &str, r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Outcome {
        let mut r = r.map_err(|e| format!("{what}: {e}"))?;
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{what}: reading the body: {e}"))?;
        if status != 200 {
            return Err(format!("{what}: HTTP {status}: {body:.200}"));
        }
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| format!("{what}: not JSON ({e}): {body:.200}"))?;
        if v["status_code"] != 0 {
            return Err(format!("{what}: {v}"));
        }
        Ok(v)
    }

    fn get(&self, path: &str) -> Outcome {
        Self::check(path, self.agent.get(format!("{}{path}", self.base)).call())
    }

    fn post(&self, path: &str) -> Outcome {
        Self::check(
            path,
            self.agent.post(format!("{}{path}", self.base)).send_empty(),
        )
    }

    /// GET `path?pairs` (values percent-encoded).
    fn get_q(&self, path: &str, pairs: &[(&str, &str)]) -> Outcome {
        self.get(&format!("{path}?{}", query(pairs)))
    }

    /// POST `path?pairs` with no body, as the client sends its actions.
    fn post_q(&self, path: &str, pairs: &[(&str, &str)]) -> Outcome {
        self.post(&format!("{path}?{}", query(pairs)))
    }

    fn post_body(&self, path: &str, content_type: &str, body: &[u8]) -> Outcome {
        Self::check(
            path,
            self.agent
                .post(format!("{}{path}", self.base))
                .header("content-type", content_type)
                .send(body),
        )
    }
}

#[derive(Clone)]
struct SoakUser {
    id: i64,
    token: String,
}

fn register(api: &Api) -> Result<SoakUser, String> {
    let v = api.post_q(
        "/douyin/user/register/",
        &[
            ("username", &unique_name("soak")),
            ("password", "secret123"),
        ],
    )?;
    Ok(SoakUser {
        id: v["user_id"].as_i64().ok_or("no user_id")?,
        token: v["token"].as_str().ok_or("no token")?.to_string(),
    })
}

fn publish(api: &Api, user: &SoakUser, clip: &[u8], title: &str) -> Outcome {
    let (ct, body) = multipart(
        "soak-boundary",
        &[
            Part::Text("token", &user.token),
            Part::Text("title", title),
            Part::File("clip.mp4", clip),
        ],
    );
    api.post_body("/douyin/publish/action/", &ct, &body)
}

/// Resident memory of `pid` in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// What the load threads share: which window they are in, and the results.
struct Shared {
    started: Instant,
    window_len: Duration,
    warmup: Duration,
    windows: Mutex<Vec<Window>>,
    errors: Mutex<Vec<String>>,
    requests: Mutex<usize>,
    stop: AtomicBool,
    last_upload: Mutex<Instant>,
}

impl Shared {
    fn record(&self, endpoint: &'static str, took: Duration, outcome: &Outcome) {
        *self.requests.lock().unwrap() += 1;
        if let Err(e) = outcome {
            self.errors.lock().unwrap().push(e.clone());
        }
        // Warm-up requests count for errors, not for the latency windows.
        let Some(t) = self.started.elapsed().checked_sub(self.warmup) else {
            return;
        };
        let i = (t.as_secs_f64() / self.window_len.as_secs_f64()) as usize;
        let mut windows = self.windows.lock().unwrap();
        if let Some(w) = windows.get_mut(i) {
            w.samples
                .entry(endpoint)
                .or_default()
                .push(took.as_secs_f64() * 1000.0);
        }
    }
}

/// One client: its own users, likes, comments and follows, so every action's answer is known.
struct ClientLoad {
    api: Api,
    users: Vec<SoakUser>,
    others: Vec<SoakUser>,
    videos: Arc<Mutex<Vec<i64>>>,
    liked: HashSet<(usize, i64)>,
    comments: Vec<(usize, i64, i64)>,
    following: HashSet<(usize, i64)>,
    clip: Arc<Vec<u8>>,
    rng: u64,
    upload_every: Duration,
}

impl ClientLoad {
    fn next(&mut self, n: usize) -> usize {
        // xorshift: reproducible enough, no dependency.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % n as u64) as usize
    }

    fn timed(
        &self,
        shared: &Shared,
        endpoint: &'static str,
        f: impl FnOnce(&Api) -> Outcome,
    ) -> Outcome {
        let t = Instant::now();
        let outcome = f(&self.api);
        shared.record(endpoint, t.elapsed(), &outcome);
        outcome
    }

    fn step(&mut self, shared: &Shared) {
        let u = self.next(self.users.len());
        let user = self.users[u].clone();
        let videos = self.videos.lock().unwrap().clone();
        let video = videos[self.next(videos.len())];
        let token = user.token.clone();
        let due_upload = {
            let mut last = shared.last_upload.lock().unwrap();
            if last.elapsed() >= self.upload_every {
                *last = Instant::now();
                true
            } else {
                false
            }
        };
        if due_upload {
            let clip = self.clip.clone();
            if self
                .timed(shared, "publish", |api| publish(api, &user, &clip, "soak"))
                .is_ok()
            {
                // Its id comes from the author's list; the video joins the pool once listed.
                let list = self.timed(shared, "publish_list", |api| {
                    api.get_q(
                        "/douyin/publish/list/",
                        &[("user_id", &user.id.to_string()), ("token", &token)],
                    )
                });
                if let Some(id) = list.ok().and_then(|v| v["video_list"][0]["id"].as_i64()) {
                    self.videos.lock().unwrap().push(id);
                }
            }
            return;
        }
        match self.next(100) {
            0..=29 => {
                let with_token = self.next(2) == 0;
                let _ = self.timed(shared, "feed", |api| {
                    if with_token {
                        api.get_q("/douyin/feed/", &[("token", &token)])
                    } else {
                        api.get("/douyin/feed/")
                    }
                });
            }
            30..=39 => {
                let _ = self.timed(shared, "user", |api| {
                    api.get_q(
                        "/douyin/user/",
                        &[("user_id", &user.id.to_string()), ("token", &token)],
                    )
                });
            }
            40..=54 => {
                let liked = self.liked.contains(&(u, video));
                let action = if liked { "2" } else { "1" };
                let ok = self
                    .timed(shared, "favorite_action", |api| {
                        api.post_q(
                            "/douyin/favorite/action/",
                            &[
                                ("token", &token),
                                ("video_id", &video.to_string()),
                                ("action_type", action),
                            ],
                        )
                    })
                    .is_ok();
                if ok && liked {
                    self.liked.remove(&(u, video));
                } else if ok {
                    self.liked.insert((u, video));
                }
            }
            55..=64 => {
                // Add a comment, or delete one of this user's own.
                let own = self.comments.iter().position(|(cu, _, _)| *cu == u);
                match own {
                    Some(i) if self.next(2) == 0 => {
                        let (_, v, c) = self.comments.remove(i);
                        let _ = self.timed(shared, "comment_action", |api| {
                            api.post_q(
                                "/douyin/comment/action/",
                                &[
                                    ("token", &token),
                                    ("video_id", &v.to_string()),
                                    ("action_type", "2"),
                                    ("comment_id", &c.to_string()),
                                ],
                            )
                        });
                    }
                    _ => {
                        let added = self.timed(shared, "comment_action", |api| {
                            api.post_q(
                                "/douyin/comment/action/",
                                &[
                                    ("token", &token),
                                    ("video_id", &video.to_string()),
                                    ("action_type", "1"),
                                    ("comment_text", "a soak comment"),
                                ],
                            )
                        });
                        if let Some(id) = added.ok().and_then(|v| v["comment"]["id"].as_i64()) {
                            self.comments.push((u, video, id));
                        }
                    }
                }
            }
            65..=72 => {
                let _ = self.timed(shared, "comment_list", |api| {
                    api.get_q(
                        "/douyin/comment/list/",
                        &[("token", &token), ("video_id", &video.to_string())],
                    )
                });
            }
            73..=82 => {
                let pick = self.next(self.others.len());
                let other = self.others[pick].id;
                let follows = self.following.contains(&(u, other));
                let ok = self
                    .timed(shared, "relation_action", |api| {
                        api.post_q(
                            "/douyin/relation/action/",
                            &[
                                ("token", &token),
                                ("to_user_id", &other.to_string()),
                                ("action_type", if follows { "2" } else { "1" }),
                            ],
                        )
                    })
                    .is_ok();
                if ok && follows {
                    self.following.remove(&(u, other));
                } else if ok {
                    self.following.insert((u, other));
                }
            }
            83..=89 => {
                let _ = self.timed(shared, "friend_list", |api| {
                    api.get_q(
                        "/douyin/relation/friend/list/",
                        &[("user_id", &user.id.to_string()), ("token", &token)],
                    )
                });
            }
            90..=94 => {
                let pick = self.next(self.others.len());
                let other = self.others[pick].id;
                let _ = self.timed(shared, "message_action", |api| {
                    api.post_q(
                        "/douyin/message/action/",
                        &[
                            ("token", &token),
                            ("to_user_id", &other.to_string()),
                            ("action_type", "1"),
                            ("content", "soak"),
                        ],
                    )
                });
            }
            _ => {
                let pick = self.next(self.others.len());
                let other = self.others[pick].id;
                let _ = self.timed(shared, "message_chat", |api| {
                    api.get_q(
                        "/douyin/message/chat/",
                        &[
                            ("token", &token),
                            ("to_user_id", &other.to_string()),
                            ("pre_msg_time", "0"),
                        ],
                    )
                });
            }
        }
    }
}

/// Every counter column compared with its rows; one line per mismatch.
pub fn counter_drift(db: &rusqlite::Connection) -> Vec<String> {
    let checks: [(&str, &str); 7] = [
        (
            "users.follow_count",
            "SELECT id, follow_count, (SELECT COUNT(*) FROM follows f WHERE f.follower_id = u.id) FROM users u",
        ),
        (
            "users.follower_count",
            "SELECT id, follower_count, (SELECT COUNT(*) FROM follows f WHERE f.followee_id = u.id) FROM users u",
        ),
        (
            "users.favorite_count",
            "SELECT id, favorite_count, (SELECT COUNT(*) FROM favorites f WHERE f.user_id = u.id) FROM users u",
        ),
        (
            "users.work_count",
            "SELECT id, work_count, (SELECT COUNT(*) FROM videos v WHERE v.author_id = u.id) FROM users u",
        ),
        (
            "users.total_favorited",
            "SELECT id, total_favorited, (SELECT COUNT(*) FROM favorites f JOIN videos v ON v.id = f.video_id WHERE v.author_id = u.id) FROM users u",
        ),
        (
            "videos.favorite_count",
            "SELECT id, favorite_count, (SELECT COUNT(*) FROM favorites f WHERE f.video_id = v.id) FROM videos v",
        ),
        (
            "videos.comment_count",
            "SELECT id, comment_count, (SELECT COUNT(*) FROM comments c WHERE c.video_id = v.id) FROM videos v",
        ),
    ];
    let mut drift = Vec::new();
    for (what, sql) in checks {
        let mut st = db.prepare(sql).unwrap_or_else(|e| panic!("{what}: {e}"));
        let rows = st
            .query_map([], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })
            .unwrap();
        for row in rows {
            let (id, counter, actual) = row.unwrap();
            if counter != actual {
                drift.push(format!("{what} ({id}): {counter} vs {actual} rows"));
            }
        }
    }
    drift
}

/// Starts a host, runs the load, and checks the state.
pub fn run(opts: &SoakOptions) -> SoakReport {
    let host = TestHost::start(HostConfig::default());
    let pid = host.pid().expect("a local host");
    let base = host.client.base.clone();
    let clip = Arc::new(crate::fixtures::fixture_bytes(
        crate::fixtures::LANDSCAPE.name,
    ));

    // Users and the first videos.
    let setup = Api::new(&base);
    let all: Vec<SoakUser> = (0..opts.clients * USERS_PER_CLIENT)
        .map(|_| register(&setup).expect("register a soak user"))
        .collect();
    for (i, u) in all.iter().take(SEED_VIDEOS).enumerate() {
        publish(&setup, u, &clip, &format!("soak seed {i}")).expect("publish a seed video");
    }
    let feed = setup.get("/douyin/feed/").expect("the feed");
    let seeded: Vec<i64> = feed["video_list"]
        .as_array()
        .map(|l| l.iter().filter_map(|v| v["id"].as_i64()).collect())
        .unwrap_or_default();
    assert!(!seeded.is_empty(), "no videos to soak with: {feed}");
    let videos = Arc::new(Mutex::new(seeded));

    let window_len = opts.duration / opts.windows.max(1) as u32;
    let shared = Arc::new(Shared {
        started: Instant::now(),
        window_len,
        warmup: opts.warmup,
        windows: Mutex::new(vec![Window::default(); opts.windows.max(1)]),
        errors: Mutex::new(Vec::new()),
        requests: Mutex::new(0),
        stop: AtomicBool::new(false),
        last_upload: Mutex::new(Instant::now()),
    });
    let threads: Vec<_> = (0..opts.clients)
        .map(|c| {
            let mut load = ClientLoad {
                api: Api::new(&base),
                users: all[c * USERS_PER_CLIENT..(c + 1) * USERS_PER_CLIENT].to_vec(),
                others: all.clone(),
                videos: videos.clone(),
                liked: HashSet::new(),
                comments: Vec::new(),
                following: HashSet::new(),
                clip: clip.clone(),
                rng: 0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
                upload_every: opts.upload_every,
            };
            // A user does not follow or message themselves.
            let own: HashSet<i64> = load.users.iter().map(|u| u.id).collect();
            load.others.retain(|u| !own.contains(&u.id));
            let shared = shared.clone();
            std::thread::spawn(move || {
                while !shared.stop.load(Ordering::Relaxed) {
                    load.step(&shared);
                }
            })
        })
        .collect();

    std::thread::sleep(opts.warmup);
    let rss_warm_kib = rss_kib(pid);
    let mut rss = Vec::new();
    for _ in 0..opts.windows.max(1) {
        std::thread::sleep(window_len);
        rss.push(rss_kib(pid));
    }
    shared.stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().expect("a load thread panicked");
    }
    let rss_end_kib = rss_kib(pid);

    let db = rusqlite::Connection::open(host.state_path().join("sqlite_db.db"))
        .expect("the state database");
    db.busy_timeout(Duration::from_secs(10)).unwrap();
    let drift = counter_drift(&db);
    let windows = shared.windows.lock().unwrap().clone();
    let errors = shared.errors.lock().unwrap().clone();
    let requests = *shared.requests.lock().unwrap();
    drop(host);
    SoakReport {
        rss_warm_kib,
        rss_end_kib,
        rss_kib: rss,
        windows,
        requests,
        errors,
        drift,
    }
}
