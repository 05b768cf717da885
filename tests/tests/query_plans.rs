//! Issue 20, item 3: every hot query reads an index, with no full scan and no temporary sort,
//! on SQLite (`EXPLAIN QUERY PLAN`) and on MariaDB (`EXPLAIN`).
//!
//! The statements are not copies: each endpoint's real core function runs against a seeded
//! database (`bench/seed`, small scale) through a [`Recording`] port, and every statement it
//! sent is then explained with the parameters it was sent with. A query added to an endpoint is
//! checked without touching this file.
//!
//! Two kinds of plan line are not failures: a scan of a derived table / materialized subquery
//! (its rows are bounded by the subquery's own LIMIT, and the subquery itself is checked), and
//! the plan problems listed in [`KNOWN`], each with why it is there; a listed problem that no
//! longer occurs fails the test too, so the list cannot go stale.

use std::cell::RefCell;

use tikspin_core::env::{Config, Env};
use tikspin_core::params::Params;
use tikspin_core::ports::{Dialect, Rows, Sql, SqlError, Value};
use tikspin_core::testing::{MemKv, SqliteSql};
use tikspin_core::urls::Urls;
use tikspin_e2e::seed::{self, mysql::MysqlSql, Options, Scale};
use tikspin_e2e::servers::MariaDb;

/// Plan problems that are known and bounded: (dialect, endpoint, text of the plan line).
const KNOWN: &[(Dialect, &str, &str)] = &[
    // The history reads the newest page in a derived table through the index (descending), then
    // sorts that page (at most `limit` rows of one conversation) oldest first. MariaDB says
    // "Using temporary; Using filesort" for that re-sort; SQLite reads the materialized page.
    (Dialect::Mysql, "chat history", "Using temporary; Using filesort"),
    // The poll LEFT JOINs `messages` to the peer's `users` row (a const table) and orders by the
    // inner table's column: MariaDB sorts the joined rows instead of trusting the range's index
    // order. The rows are only the new messages of one conversation (none for an empty poll),
    // but it is a sort: the follow-up of issue 20 should read the range as a derived table (as
    // the history does) or drop the join, and measure both under SQLite too (commit 74deaef
    // moved the poll off a derived table for SQLite's sake).
    (Dialect::Mysql, "chat poll", "Using temporary; Using filesort"),
];

const SECRET: &str = "query-plan-test-secret";
const BASE: &str = "http://127.0.0.1:3000";

/// Forwards to `inner` and keeps every statement with its parameters.
struct Recording<'a> {
    inner: &'a dyn Sql,
    seen: RefCell<Vec<(String, Vec<Value>)>>,
}

impl Sql for Recording<'_> {
    fn dialect(&self) -> Dialect {
        self.inner.dialect()
    }
    fn execute(&self, sql: &str, params: &[Value]) -> Result<(), SqlError> {
        self.seen.borrow_mut().push((sql.to_owned(), params.to_vec()));
        self.inner.execute(sql, params)
    }
    fn query(&self, sql: &str, params: &[Value]) -> Result<Rows, SqlError> {
        self.seen.borrow_mut().push((sql.to_owned(), params.to_vec()));
        self.inner.query(sql, params)
    }
}

fn scalar(sql: &dyn Sql, statement: &str) -> i64 {
    sql.query(statement, &[]).unwrap().scalar_i64().unwrap()
}

/// What is wrong with one statement's plan: a full scan of a table or an index, or a temporary
/// B-tree / filesort. Empty when the plan reads indexes only.
fn plan_problems(sql: &dyn Sql, statement: &str, params: &[Value]) -> (String, Vec<String>) {
    match sql.dialect() {
        Dialect::Sqlite => {
            let rows = sql
                .query(&format!("EXPLAIN QUERY PLAN {statement}"), params)
                .unwrap_or_else(|e| panic!("{e}: {statement}"));
            let details: Vec<String> = rows
                .iter()
                .map(|r| r.text(3).unwrap().to_owned())
                .collect();
            // `MATERIALIZE m` then `SCAN m`: a scan of the subquery's bounded result.
            let materialized: Vec<&str> = details
                .iter()
                .filter_map(|d| d.strip_prefix("MATERIALIZE "))
                .collect();
            let scans_a_table = |d: &str| {
                d.strip_prefix("SCAN ").is_some_and(|rest| {
                    let name = rest.split_whitespace().next().unwrap_or("");
                    name != "CONSTANT" && !materialized.contains(&name)
                })
            };
            let bad = details
                .iter()
                .filter(|d| scans_a_table(d) || d.contains("TEMP B-TREE"))
                .cloned()
                .collect();
            (details.join(" | "), bad)
        }
        Dialect::Mysql => {
            let rows = sql
                .query(&format!("EXPLAIN {statement}"), params)
                .unwrap_or_else(|e| panic!("{e}: {statement}"));
            let col = |name: &str| rows.columns.iter().position(|c| c == name).unwrap();
            let (table, kind, key, extra) = (col("table"), col("type"), col("key"), col("Extra"));
            let text = |r: &tikspin_core::ports::Row<'_>, i| {
                r.opt_text(i).unwrap().unwrap_or("").to_owned()
            };
            let mut lines = Vec::new();
            let mut bad = Vec::new();
            for r in rows.iter() {
                let line = format!(
                    "{} type={} key={} extra={}",
                    text(&r, table),
                    text(&r, kind),
                    text(&r, key),
                    text(&r, extra)
                );
                let t = text(&r, kind);
                let x = text(&r, extra);
                let derived = text(&r, table).starts_with("<derived");
                if (!derived && (t == "ALL" || t == "index"))
                    || x.contains("filesort")
                    || x.contains("temporary")
                {
                    bad.push(line.clone());
                }
                lines.push(line);
            }
            (lines.join(" | "), bad)
        }
    }
}

/// Runs every hot endpoint's core function for the biggest accounts of the seeded data, as an
/// anonymous and a logged-in viewer, and checks the plan of every statement they sent.
fn every_hot_query_reads_an_index(sql: &dyn Sql) {
    // Enough users that a page's batch of authors (`id IN (...)` of a few hundred) is a small
    // part of the table, as in production: on a table barely larger than the list, MariaDB
    // rightly prefers a scan, which says nothing about the real one.
    let opts = Options {
        scale: Scale {
            users: 20_000,
            ..Scale::divided(200)
        },
        seed: 3,
        now_ms: tikspin_core::time::now_ms(),
        append: false,
    };
    seed::seed(sql, &opts, &mut |_| {}).expect("seeds");
    let now = opts.now_ms;
    let prolific = scalar(sql, "SELECT id FROM users ORDER BY work_count DESC, id LIMIT 1");
    let followed = scalar(sql, "SELECT id FROM users ORDER BY follower_count DESC, id LIMIT 1");
    let liker = scalar(sql, "SELECT id FROM users ORDER BY favorite_count DESC, id LIMIT 1");
    let commented = scalar(sql, "SELECT id FROM videos ORDER BY comment_count DESC, id LIMIT 1");
    let friendly = scalar(
        sql,
        "SELECT follower_id FROM follows WHERE friend_since IS NOT NULL \
         GROUP BY follower_id ORDER BY COUNT(*) DESC, follower_id LIMIT 1",
    );
    let (lo, hi) = {
        let rows = sql
            .query(
                "SELECT user_lo, user_hi FROM messages GROUP BY user_lo, user_hi \
                 ORDER BY COUNT(*) DESC, user_lo, user_hi LIMIT 1",
                &[],
            )
            .unwrap();
        let r = rows.first().unwrap();
        (r.i64(0).unwrap(), r.i64(1).unwrap())
    };
    let deep = now - 200 * 86_400_000;
    let token = |user: i64| tikspin_core::auth::jwt::issue(SECRET, user, now).unwrap();
    let (viewer, lo_token) = (token(followed), token(lo));

    let config = Config::new(SECRET, BASE);
    let kv = MemKv::new();
    let links = Urls::new(BASE);
    let recording = Recording {
        inner: sql,
        seen: RefCell::new(Vec::new()),
    };
    let env = Env {
        sql: &recording,
        kv: &kv,
        config: &config,
        now_ms: now,
        client_addr: "127.0.0.1",
    };
    let q = |query: String| Params::from_query(&query);
    type Call<'e> = Box<dyn Fn() -> bool + 'e>;
    let endpoints: Vec<(&str, Call<'_>)> = vec![
        ("feed anonymous", Box::new(|| {
            tikspin_core::feed::feed(&env, &q(String::new()), &links).is_ok()
        })),
        ("feed logged in", Box::new(|| {
            tikspin_core::feed::feed(&env, &q(format!("token={viewer}")), &links).is_ok()
        })),
        ("feed deep page", Box::new(|| {
            tikspin_core::feed::feed(&env, &q(format!("latest_time={deep}&token={viewer}")), &links)
                .is_ok()
        })),
        ("user profile", Box::new(|| {
            tikspin_core::accounts::profile(&env, &q(format!("user_id={followed}&token={viewer}")))
                .is_ok()
        })),
        ("publish list", Box::new(|| {
            tikspin_core::publish::publish_list(
                &env,
                &q(format!("user_id={prolific}&token={viewer}")),
                &links,
            )
            .is_ok()
        })),
        ("favorite list", Box::new(|| {
            tikspin_core::favorites::favorite_list(
                &env,
                &q(format!("user_id={liker}&token={viewer}")),
                &links,
            )
            .is_ok()
        })),
        ("comment list", Box::new(|| {
            tikspin_core::comments::comment_list(&env, &q(format!("video_id={commented}&token={viewer}")))
                .is_ok()
        })),
        ("follow list", Box::new(|| {
            tikspin_core::social::follow_list(&env, &q(format!("user_id={followed}&token={viewer}")))
                .is_ok()
        })),
        ("follower list", Box::new(|| {
            tikspin_core::social::follower_list(&env, &q(format!("user_id={followed}&token={viewer}")))
                .is_ok()
        })),
        ("friend list", Box::new(|| {
            tikspin_core::social::friend_list(
                &env,
                &q(format!("user_id={friendly}&token={}", token(friendly))),
            )
            .is_ok()
        })),
        ("chat history", Box::new(|| {
            tikspin_core::chat::message_chat(
                &env,
                &q(format!("to_user_id={hi}&pre_msg_time=0&token={lo_token}")),
            )
            .is_ok()
        })),
        ("chat poll", Box::new(|| {
            tikspin_core::chat::message_chat(
                &env,
                &q(format!("to_user_id={hi}&pre_msg_time={now}&token={lo_token}")),
            )
            .is_ok()
        })),
    ];

    let dialect = sql.dialect();
    let known: Vec<(&str, &str)> = KNOWN
        .iter()
        .filter(|k| k.0 == dialect)
        .map(|k| (k.1, k.2))
        .collect();
    let mut known_seen = vec![false; known.len()];
    let mut failures = Vec::new();
    let mut checked = 0;
    for (name, call) in &endpoints {
        recording.seen.borrow_mut().clear();
        assert!(call(), "{name} failed");
        let seen = recording.seen.take();
        assert!(!seen.is_empty(), "{name} sent no SQL");
        for (statement, params) in seen {
            if !statement.trim_start().to_ascii_uppercase().starts_with("SELECT") {
                continue;
            }
            checked += 1;
            let (plan, mut bad) = plan_problems(sql, &statement, &params);
            bad.retain(|line| {
                let k = known.iter().position(|(e, text)| e == name && line.contains(text));
                if let Some(k) = k {
                    known_seen[k] = true;
                }
                k.is_none()
            });
            if !bad.is_empty() {
                failures.push(format!("{name}: {bad:?}\n  plan: {plan}\n  sql: {statement}"));
            }
        }
    }
    assert!(checked >= endpoints.len(), "only {checked} statements checked");
    for (k, seen) in known.iter().zip(&known_seen) {
        assert!(seen, "{k:?} no longer happens: remove it from KNOWN");
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn sqlite_hot_queries_read_indexes_without_scans_or_sorts() {
    let dir = tempfile::tempdir().unwrap();
    let sql = SqliteSql::open(dir.path().join("sqlite_db.db")).unwrap();
    every_hot_query_reads_an_index(&sql);
}

#[test]
fn mariadb_hot_queries_read_indexes_without_scans_or_sorts() {
    let db = MariaDb::start().expect("MariaDB starts");
    let sql = MysqlSql::connect(&db.url()).unwrap();
    every_hot_query_reads_an_index(&sql);
}
