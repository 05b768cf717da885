//! `bench/seed`: fills a fresh TikSpin database with a large, realistic data set, through the
//! app's own migrations ([`tikspin_core::migrate`]) and the core's [`Sql`] port, on SQLite (the
//! host's `<state-dir>/sqlite_db.db`, or `.spin/sqlite_db.db` with `runtime-config.toml`) or on
//! MySQL/MariaDB (a URL).
//!
//! Shape (every "Zipf" is exponent 1 over a random permutation, split exactly, see
//! [`zipf_counts`]): videos per author, likes per video (capped at the number of users: a user
//! likes a video once), comments per video (the same popularity order as likes), followers per
//! followee (the most followed are the most prolific authors), plus a fifth of the follows made
//! as follow-backs so that friendships exist; messages per conversation, conversations taken
//! among friends first, then one-way follows, then any two users.
//!
//! Fast because every row is generated in memory and every counter is counted there and written
//! once with its row: multi-row `INSERT`s of [`BATCH_ROWS`] rows, [`TX_ROWS`] rows per
//! transaction, ids given explicitly (so counters and `follows.last_message_id` are known before
//! their rows are written). Every denormalised column (`users` and `videos` counters,
//! `follows.friend_since`, `follows.last_message_id`) holds what the app's own transactions would
//! have written; [`check`] recomputes them all from the rows.
//!
//! Seeded videos are `ready`, with `play_key`/`cover_key` naming one of a few fixture files under
//! [`SEED_KEY_PREFIX`]; the objects themselves are not stored, so their media URLs answer 404
//! (rows, lists and counters are what the benchmarks read).

pub mod check;
pub mod mysql;

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use tikspin_core::ports::{Dialect, Sql, SqlError, Value};

pub use check::check;

/// Every seeded user's password (one argon2id hash for all: hashing 100k passwords would take
/// longer than the rest of the seed).
pub const PASSWORD: &str = "seed-password";
/// Seeded usernames are `seed_<id>`.
pub const NAME_PREFIX: &str = "seed_";
/// `play_key`s of seeded videos start with it.
pub const SEED_KEY_PREFIX: &str = "seed/";
/// The fixture files seeded videos name, with their sizes in bytes.
const FIXTURES: &[(&str, i64)] = &[
    ("landscape-2s-noaudio.mp4", 0),
    ("portrait-3s.mp4", 0),
    ("bear.mp4", 0),
];
pub const BATCH_ROWS: usize = 500;
pub const TX_ROWS: usize = 100_000;

const DAY_MS: i64 = 86_400_000;

/// How much of everything. [`Scale::FULL`] is issue 20's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Scale {
    pub users: u64,
    pub videos: u64,
    pub likes: u64,
    pub follows: u64,
    pub comments: u64,
    pub messages: u64,
    pub conversations: u64,
}

impl Scale {
    pub const FULL: Scale = Scale {
        users: 100_000,
        videos: 1_000_000,
        likes: 10_000_000,
        follows: 1_000_000,
        comments: 5_000_000,
        messages: 1_000_000,
        conversations: 100_000,
    };

    /// [`Scale::FULL`] divided by `d` (at least 2 users, 1 of everything else).
    pub fn divided(d: u64) -> Scale {
        let f = Scale::FULL;
        Scale {
            users: (f.users / d).max(2),
            videos: (f.videos / d).max(1),
            likes: (f.likes / d).max(1),
            follows: (f.follows / d).max(1),
            comments: (f.comments / d).max(1),
            messages: (f.messages / d).max(1),
            conversations: (f.conversations / d).max(1),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub scale: Scale,
    /// The random generator's seed: the same seed and scale give the same data.
    pub seed: u64,
    /// "Now": every time is before it.
    pub now_ms: i64,
    /// Add to a database that has rows already (new rows only relate to each other).
    pub append: bool,
}

#[derive(Debug)]
pub enum SeedError {
    /// The database has application rows and `append` was not given.
    NotEmpty(String),
    Sql(SqlError),
}

impl std::fmt::Display for SeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeedError::NotEmpty(what) => write!(
                f,
                "refusing to seed a database that is not empty ({what}); pass --append to add to it"
            ),
            SeedError::Sql(e) => write!(f, "{e}"),
        }
    }
}

impl From<SqlError> for SeedError {
    fn from(e: SqlError) -> Self {
        SeedError::Sql(e)
    }
}

/// What was written, and how long each table took.
#[derive(Debug, Default)]
pub struct Summary {
    pub rows: Vec<(&'static str, u64, std::time::Duration)>,
}

/// The tables the seed writes, checked for rows before anything is touched.
const TABLES: &[&str] = &["videos", "favorites", "comments", "follows", "messages"];

/// Why the database counts as not empty, if it does: any row in an application table, or a user
/// other than the system users the migrations create. A missing table is empty.
pub fn existing_rows(sql: &dyn Sql) -> Result<Option<String>, SqlError> {
    let probe = |statement: &str| -> Result<bool, SqlError> {
        match sql.query(statement, &[]) {
            Ok(rows) => Ok(!rows.is_empty()),
            Err(SqlError::MissingSchema(_)) => Ok(false),
            Err(e) => Err(e),
        }
    };
    let users = format!(
        "SELECT 1 FROM users WHERE password_hash <> '{}' LIMIT 1",
        tikspin_core::users::NO_PASSWORD
    );
    if probe(&users)? {
        return Ok(Some("users has registered users".into()));
    }
    for table in TABLES {
        if probe(&format!("SELECT 1 FROM {table} LIMIT 1"))? {
            return Ok(Some(format!("{table} has rows")));
        }
    }
    Ok(None)
}

fn max_id(sql: &dyn Sql, table: &str) -> Result<i64, SqlError> {
    sql.query(&format!("SELECT COALESCE(MAX(id), 0) FROM {table}"), &[])?
        .scalar_i64()
}

/// Multi-row INSERTs, committed every [`TX_ROWS`] rows.
struct Bulk<'a> {
    sql: &'a dyn Sql,
    table: &'static str,
    columns: &'static [&'static str],
    full: String,
    buf: Vec<Value>,
    uncommitted: usize,
    written: u64,
}

impl<'a> Bulk<'a> {
    fn new(sql: &'a dyn Sql, table: &'static str, columns: &'static [&'static str]) -> Self {
        Bulk {
            sql,
            table,
            columns,
            full: Self::statement(table, columns, BATCH_ROWS),
            buf: Vec::with_capacity(BATCH_ROWS * columns.len()),
            uncommitted: 0,
            written: 0,
        }
    }

    fn statement(table: &str, columns: &[&str], rows: usize) -> String {
        let row = format!("({})", tikspin_core::db::placeholders(columns.len()));
        format!(
            "INSERT INTO {table} ({}) VALUES {}",
            columns.join(", "),
            vec![row; rows].join(", ")
        )
    }

    /// One row, its values in `columns` order (an array: no allocation per row).
    fn row<const K: usize>(&mut self, values: [Value; K]) -> Result<(), SqlError> {
        debug_assert_eq!(K, self.columns.len());
        self.buf.extend(values);
        if self.buf.len() == BATCH_ROWS * self.columns.len() {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), SqlError> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let rows = self.buf.len() / self.columns.len();
        if self.uncommitted == 0 {
            self.sql.execute("BEGIN", &[])?;
        }
        if rows == BATCH_ROWS {
            self.sql.execute(&self.full, &self.buf)?;
        } else {
            let partial = Self::statement(self.table, self.columns, rows);
            self.sql.execute(&partial, &self.buf)?;
        }
        self.buf.clear();
        self.uncommitted += rows;
        self.written += rows as u64;
        if self.uncommitted >= TX_ROWS {
            self.commit()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), SqlError> {
        if self.uncommitted > 0 {
            self.sql.execute("COMMIT", &[])?;
            self.uncommitted = 0;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<u64, SqlError> {
        self.flush()?;
        self.commit()?;
        Ok(self.written)
    }
}

/// Splits `total` among `n` ranks in proportion to 1/(rank+1)^`s`, none above `cap`, summing
/// exactly to `total` (or to `n * cap` when that is less). Ranks over the cap are a prefix, so
/// the cap is found by walking it; the remainder of the rounding goes one each to the first
/// ranks under the cap.
pub fn zipf_counts(n: usize, total: u64, s: f64, cap: u64) -> Vec<u64> {
    if n == 0 {
        return Vec::new();
    }
    let total = total.min(cap.saturating_mul(n as u64));
    let weights: Vec<f64> = (0..n).map(|k| 1.0 / ((k + 1) as f64).powf(s)).collect();
    let mut suffix = vec![0.0; n + 1];
    for k in (0..n).rev() {
        suffix[k] = suffix[k + 1] + weights[k];
    }
    let mut capped = 0;
    while capped < n {
        let rest = total - capped as u64 * cap;
        if (rest as f64) * weights[capped] / suffix[capped] <= cap as f64 {
            break;
        }
        capped += 1;
    }
    let mut counts = vec![cap; capped];
    let rest = total - capped as u64 * cap;
    counts.extend(
        (capped..n).map(|k| ((rest as f64) * weights[k] / suffix[capped]).floor() as u64),
    );
    let mut missing = total - counts.iter().sum::<u64>();
    let mut k = capped;
    while missing > 0 {
        if counts[k % n] < cap {
            counts[k % n] += 1;
            missing -= 1;
        }
        k += 1;
    }
    counts
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// `count` distinct indexes below `n` (count <= n): a random start and a random step coprime
/// with `n` visit every index once, so no set of taken indexes is needed.
fn distinct(rng: &mut StdRng, n: u64, count: u64) -> impl Iterator<Item = u64> {
    debug_assert!(count <= n);
    let start = rng.random_range(0..n);
    let step = loop {
        let s = rng.random_range(1..n.max(2));
        if gcd(s, n) == 1 {
            break s;
        }
    };
    (0..count).map(move |k| (start + k * step) % n)
}

fn permutation(rng: &mut StdRng, n: usize) -> Vec<u32> {
    let mut p: Vec<u32> = (0..n as u32).collect();
    p.shuffle(rng);
    p
}

const COMMENTS: &[&str] = &[
    "first!",
    "love this",
    "how did you film that?",
    "😂😂😂",
    "again please",
    "that ending",
    "where is this?",
    "this deserves more likes",
];
const MESSAGES: &[&str] = &[
    "hey",
    "did you see my last video?",
    "haha yes",
    "see you tomorrow",
    "👍",
    "where are you now?",
];

/// Seeds `sql` (see the module doc). Refuses a non-empty database unless `opts.append`.
/// `log` gets one line per table as it is written.
pub fn seed(sql: &dyn Sql, opts: &Options, log: &mut dyn FnMut(&str)) -> Result<Summary, SeedError> {
    if !opts.append {
        if let Some(what) = existing_rows(sql)? {
            return Err(SeedError::NotEmpty(what));
        }
    }
    tikspin_core::migrate::migrate(sql)?;
    if sql.dialect() == Dialect::Sqlite {
        // A crash mid-seed leaves a half-seeded file either way; durability per commit buys
        // nothing here and costs an fsync per transaction.
        sql.execute("PRAGMA synchronous=OFF", &[])?;
        sql.execute("PRAGMA cache_size=-1048576", &[])?;
    }
    let s = opts.scale;
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let now = opts.now_ms;
    let t_users = now - 365 * DAY_MS;
    let t_videos = t_users + 30 * DAY_MS;
    let n_users = s.users as usize;
    let n_videos = s.videos as usize;
    let user_base = max_id(sql, "users")?;
    let video_base = max_id(sql, "videos")?;
    let uid = |i: u32| user_base + 1 + i64::from(i);
    let vid = |i: u32| video_base + 1 + i64::from(i);
    let mut summary = Summary::default();
    let mut timed = |summary: &mut Summary, table: &'static str, rows: u64, start: Instant| {
        let took = start.elapsed();
        log(&format!("{table}: {rows} rows in {:.1} s", took.as_secs_f64()));
        summary.rows.push((table, rows, took));
    };

    // Per-user counters, written with the users at the end.
    let mut follow_count = vec![0i64; n_users];
    let mut follower_count = vec![0i64; n_users];
    let mut total_favorited = vec![0i64; n_users];
    let mut work_count = vec![0i64; n_users];
    let mut favorite_count = vec![0i64; n_users];

    // Videos: authors by Zipf over a random order of users (the popular = the prolific).
    let popular_users = permutation(&mut rng, n_users);
    let mut video_author: Vec<u32> = Vec::with_capacity(n_videos);
    for (rank, count) in zipf_counts(n_users, s.videos, 1.0, u64::MAX)
        .into_iter()
        .enumerate()
    {
        let author = popular_users[rank];
        work_count[author as usize] += count as i64;
        video_author.extend(std::iter::repeat_n(author, count as usize));
    }
    video_author.shuffle(&mut rng);
    let video_time: Vec<i64> = (0..n_videos)
        .map(|_| rng.random_range(t_videos..now - 3_600_000))
        .collect();
    let mut video_likes = vec![0i64; n_videos];
    let mut video_comments = vec![0i64; n_videos];
    let popular_videos = permutation(&mut rng, n_videos);

    let start = Instant::now();
    let favorite_base = max_id(sql, "favorites")?;
    let mut bulk = Bulk::new(sql, "favorites", &["id", "user_id", "video_id", "created_at"]);
    // Generated per video, written in (user, video) order: both favorites indexes lead with
    // user_id, so sorted rows append to them instead of landing on random pages (at 10M rows
    // that is most of the seed's time).
    let mut likes: Vec<(u32, u32, i64)> = Vec::with_capacity(s.likes as usize);
    for (rank, count) in zipf_counts(n_videos, s.likes, 1.0, s.users)
        .into_iter()
        .enumerate()
    {
        let v = popular_videos[rank] as usize;
        video_likes[v] = count as i64;
        total_favorited[video_author[v] as usize] += count as i64;
        for u in distinct(&mut rng, s.users, count).collect::<Vec<_>>() {
            favorite_count[u as usize] += 1;
            likes.push((u as u32, v as u32, rng.random_range(video_time[v]..now)));
        }
    }
    likes.sort_unstable();
    for (k, &(u, v, at)) in likes.iter().enumerate() {
        let id = favorite_base + 1 + k as i64;
        bulk.row([id.into(), uid(u).into(), vid(v).into(), at.into()])?;
    }
    drop(likes);
    let rows = bulk.finish()?;
    timed(&mut summary, "favorites", rows, start);

    let start = Instant::now();
    let comment_base = max_id(sql, "comments")?;
    let mut bulk = Bulk::new(
        sql,
        "comments",
        &["id", "video_id", "user_id", "content", "created_at"],
    );
    // Written video by video, oldest first: the one index (video_id, created_at, id) is then
    // appended to in order.
    for (rank, count) in zipf_counts(n_videos, s.comments, 1.0, u64::MAX)
        .into_iter()
        .enumerate()
    {
        video_comments[popular_videos[rank] as usize] = count as i64;
    }
    let mut id = comment_base;
    let mut times = Vec::new();
    for v in 0..n_videos {
        times.clear();
        times.extend((0..video_comments[v]).map(|_| rng.random_range(video_time[v]..now)));
        times.sort_unstable();
        for &at in &times {
            id += 1;
            let u = rng.random_range(0..n_users as u32);
            let text = COMMENTS[rng.random_range(0..COMMENTS.len())];
            bulk.row([
                id.into(),
                vid(v as u32).into(),
                uid(u).into(),
                text.into(),
                at.into(),
            ])?;
        }
    }
    let rows = bulk.finish()?;
    timed(&mut summary, "comments", rows, start);

    let start = Instant::now();
    let fixture_sizes: Vec<(&str, i64)> = FIXTURES
        .iter()
        .map(|(name, _)| {
            let size = std::fs::metadata(crate::fixtures::fixtures_dir().join(name))
                .map(|m| m.len() as i64)
                .unwrap_or(1);
            (*name, size)
        })
        .collect();
    let mut bulk = Bulk::new(sql, "videos", VIDEO_COLUMNS);
    for v in 0..n_videos {
        let (fixture, size) = fixture_sizes[v % fixture_sizes.len()];
        bulk.row([
            vid(v as u32).into(),
            uid(video_author[v]).into(),
            format!("seeded video {}", vid(v as u32)).into(),
            tikspin_core::videos::READY.into(),
            format!("{SEED_KEY_PREFIX}{fixture}").into(),
            format!("{SEED_KEY_PREFIX}{fixture}.jpg").into(),
            "video/mp4".into(),
            size.into(),
            video_likes[v].into(),
            video_comments[v].into(),
            video_time[v].into(),
        ])?;
    }
    let rows = bulk.finish()?;
    timed(&mut summary, "videos", rows, start);
    drop((video_author, video_time, video_likes, video_comments, popular_videos));

    // Follows, generated before the messages (conversations are chosen among them) and written
    // after (each row carries its pair's last message).
    let mut taken: HashSet<(u32, u32)> = HashSet::new();
    let mut edges: Vec<(u32, u32, i64)> = Vec::new();
    let one_way = s.follows - s.follows / 5;
    for (rank, count) in zipf_counts(n_users, one_way, 1.0, s.users - 1)
        .into_iter()
        .enumerate()
    {
        let followee = popular_users[rank];
        for i in distinct(&mut rng, s.users, (count + 1).min(s.users))
            .map(|i| i as u32)
            .filter(|&i| i != followee)
            .take(count as usize)
            .collect::<Vec<_>>()
        {
            taken.insert((i, followee));
            edges.push((i, followee, rng.random_range(t_videos..now)));
        }
    }
    let mut friends: Vec<(u32, u32)> = Vec::new();
    for e in permutation(&mut rng, edges.len()) {
        if edges.len() as u64 >= s.follows {
            break;
        }
        let (a, b, _) = edges[e as usize];
        if taken.insert((b, a)) {
            edges.push((b, a, rng.random_range(t_videos..now)));
            friends.push((a.min(b), a.max(b)));
        }
    }
    drop(taken);

    // Conversations: friends first, then one-way follows, then any two users.
    let start = Instant::now();
    let mut pairs: Vec<(u32, u32)> = Vec::new();
    let mut chosen: HashSet<(u32, u32)> = HashSet::new();
    let wanted = s.conversations as usize;
    let candidates = friends
        .iter()
        .copied()
        .chain(edges.iter().map(|&(a, b, _)| (a.min(b), a.max(b))));
    for pair in candidates {
        if pairs.len() >= wanted {
            break;
        }
        if chosen.insert(pair) {
            pairs.push(pair);
        }
    }
    let max_pairs = (s.users * (s.users - 1) / 2) as usize;
    while pairs.len() < wanted.min(max_pairs) {
        let a = rng.random_range(0..n_users as u32);
        let b = rng.random_range(0..n_users as u32);
        if a != b && chosen.insert((a.min(b), a.max(b))) {
            pairs.push((a.min(b), a.max(b)));
        }
    }
    drop(chosen);
    let message_base = max_id(sql, "messages")?;
    let mut last_message: HashMap<(u32, u32), i64> = HashMap::with_capacity(pairs.len());
    let mut bulk = Bulk::new(
        sql,
        "messages",
        &["id", "user_lo", "user_hi", "from_user_id", "to_user_id", "content", "create_time"],
    );
    let mut id = message_base;
    for (rank, count) in zipf_counts(pairs.len(), s.messages, 1.0, u64::MAX)
        .into_iter()
        .enumerate()
    {
        if count == 0 {
            continue;
        }
        let (lo, hi) = pairs[rank];
        // Strictly increasing within the conversation (its UNIQUE index), ending before now.
        let mut at = now - count as i64 * 60_000 - rng.random_range(0..DAY_MS);
        for _ in 0..count {
            id += 1;
            at += rng.random_range(1..=60_000);
            let (from, to) = if rng.random_bool(0.5) { (lo, hi) } else { (hi, lo) };
            let text = MESSAGES[rng.random_range(0..MESSAGES.len())];
            bulk.row([
                id.into(),
                uid(lo).into(),
                uid(hi).into(),
                uid(from).into(),
                uid(to).into(),
                text.into(),
                at.into(),
            ])?;
        }
        last_message.insert((lo, hi), id);
    }
    let rows = bulk.finish()?;
    timed(&mut summary, "messages", rows, start);

    let start = Instant::now();
    let created: HashMap<(u32, u32), i64> =
        edges.iter().map(|&(a, b, at)| ((a, b), at)).collect();
    let follow_base = max_id(sql, "follows")?;
    let mut bulk = Bulk::new(
        sql,
        "follows",
        &["id", "follower_id", "followee_id", "created_at", "friend_since", "last_message_id"],
    );
    for (k, &(a, b, at)) in edges.iter().enumerate() {
        follow_count[a as usize] += 1;
        follower_count[b as usize] += 1;
        // Friends since the second of the two follows (what `follows::follow` writes).
        let friend_since = created.get(&(b, a)).map(|&back| back.max(at));
        let last = last_message.get(&(a.min(b), a.max(b))).copied();
        bulk.row([
            (follow_base + 1 + k as i64).into(),
            uid(a).into(),
            uid(b).into(),
            at.into(),
            friend_since.into(),
            last.into(),
        ])?;
    }
    let rows = bulk.finish()?;
    timed(&mut summary, "follows", rows, start);
    drop((edges, created, last_message));

    let start = Instant::now();
    let hash = tikspin_core::auth::password::hash(PASSWORD)
        .map_err(|e| SqlError::Other(format!("password hash: {}", e.msg)))?;
    let mut bulk = Bulk::new(sql, "users", USER_COLUMNS);
    for u in 0..n_users {
        let id = uid(u as u32);
        bulk.row([
            id.into(),
            format!("{NAME_PREFIX}{id}").into(),
            hash.as_str().into(),
            follow_count[u].into(),
            follower_count[u].into(),
            total_favorited[u].into(),
            work_count[u].into(),
            favorite_count[u].into(),
            rng.random_range(t_users..t_videos).into(),
        ])?;
    }
    let rows = bulk.finish()?;
    timed(&mut summary, "users", rows, start);
    Ok(summary)
}

const USER_COLUMNS: &[&str] = &[
    "id",
    "name",
    "password_hash",
    "follow_count",
    "follower_count",
    "total_favorited",
    "work_count",
    "favorite_count",
    "created_at",
];

const VIDEO_COLUMNS: &[&str] = &[
    "id",
    "author_id",
    "title",
    "state",
    "play_key",
    "cover_key",
    "content_type",
    "size_bytes",
    "favorite_count",
    "comment_count",
    "created_at",
];
