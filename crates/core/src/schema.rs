//! The product's one schema, written out for both dialects. [`crate::migrate`] applies it.
//!
//! Conventions, the same in both dialects:
//! - ids are 64-bit autoincrement integers (below 2^53 in practice, as the wire requires);
//! - times are epoch milliseconds in 64-bit integers (`created_at`, `run_at`, ...);
//! - counters (`users.follow_count`, `follower_count`, `total_favorited`, `work_count`,
//!   `favorite_count`; `videos.favorite_count`, `comment_count`) are columns updated in the same
//!   transaction as the action that moves them, never recomputed on read;
//! - strings compare byte-wise: MySQL tables use `utf8mb4_bin`, so `Alice` and `alice` are two
//!   usernames there as in SQLite, and emoji round-trip (utf8mb4, not MySQL's 3-byte utf8);
//! - indexes are ascending composites ending in the tie-breaker; "newest first" scans them
//!   backwards, which both engines do natively (older MariaDB ignores DESC in index definitions anyway).
//!
//! `messages.create_time` is strictly increasing within a conversation: the sender stamps
//! `max(now, latest in the conversation + 1)` ms, and the UNIQUE index on
//! (user_lo, user_hi, create_time) turns a race between two same-millisecond sends into a
//! `Unique` error that the sender retries with the next millisecond. So the chat poll's
//! `create_time > pre_msg_time` can neither skip nor repeat a message; reads still order by
//! (create_time, id) so that the order is total whatever the data. (user_lo, user_hi) is the
//! pair sorted, one key per conversation in both directions.
//!
//! Never edit a released migration: add a new one at the end of [`MIGRATIONS`]. A migration may
//! be cut short (a crash, a timeout) and run again, so each statement must be safe to repeat:
//! - SQLite runs a whole migration in one transaction (its DDL is transactional), so a migration
//!   either happened or did not; `IF NOT EXISTS` is still used where SQLite has it;
//! - MySQL commits each DDL statement by itself: tables and indexes use `IF NOT EXISTS` inside
//!   `CREATE TABLE`, an `ALTER TABLE … ADD COLUMN` or a `CREATE INDEX` (MySQL has no
//!   `IF NOT EXISTS` for those) counts as done when the server answers that the column or index
//!   exists already ([`crate::migrate`]), and data statements are written to be idempotent.

use crate::ports::Dialect;

pub struct Migration {
    pub version: i64,
    pub description: &'static str,
    sqlite: &'static [&'static str],
    mysql: &'static [&'static str],
}

impl Migration {
    /// One statement per entry: Spin's SQLite runs one statement per call.
    pub fn statements(&self, dialect: Dialect) -> &'static [&'static str] {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Mysql => self.mysql,
        }
    }
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        description: "users, videos, favorites, comments, follows, messages, jobs",
        sqlite: SQLITE_V1,
        mysql: MYSQL_V1,
    },
    Migration {
        version: 2,
        description: "follows.friend_since: friendships ordered by an index",
        sqlite: SQLITE_V2,
        mysql: MYSQL_V2,
    },
    Migration {
        version: 3,
        description: "follows.last_message_id: friend list previews without a per-friend search",
        sqlite: SQLITE_V3,
        mysql: MYSQL_V3,
    },
    Migration {
        version: 4,
        description: "users.system_role: the welcome video's system user, made here",
        sqlite: SQLITE_V4,
        mysql: MYSQL_V4,
    },
];

/// `follows.friend_since`: on both rows of a mutual follow, the time the second of the two
/// follows was made (when the two became friends); NULL on a one-way follow. The follow and
/// unfollow transactions keep it (see [`crate::follows`]), and `follows_friend_time` then hands
/// out a user's friends newest first without a join on the reverse follow or a sort. The
/// UPDATE backfills the follows made before this migration; it is idempotent.
const SQLITE_V2: &[&str] = &[
    "ALTER TABLE follows ADD COLUMN friend_since INTEGER",
    "UPDATE follows SET friend_since = (
        SELECT CASE WHEN r.created_at > follows.created_at THEN r.created_at ELSE follows.created_at END
          FROM follows r
         WHERE r.follower_id = follows.followee_id AND r.followee_id = follows.follower_id)",
    "CREATE INDEX IF NOT EXISTS follows_friend_time
        ON follows (follower_id, friend_since, id, followee_id)",
];

const MYSQL_V2: &[&str] = &[
    "ALTER TABLE follows ADD COLUMN friend_since BIGINT NULL",
    "UPDATE follows a
       JOIN follows r ON r.follower_id = a.followee_id AND r.followee_id = a.follower_id
        SET a.friend_since = GREATEST(a.created_at, r.created_at)",
    "CREATE INDEX follows_friend_time ON follows (follower_id, friend_since, id, followee_id)",
];

/// `follows.last_message_id`: on every follow row, the latest message between its two users
/// (either direction), NULL if they never exchanged one. A send sets it on the pair's rows in
/// its transaction, a new follow row starts with it, and `follows_friends` (which replaces
/// `follows_friend_time`) covers it, so one's own friend list reads each preview by id instead
/// of searching the conversation for its latest message (SQLite, 100 friends: 70 → 52 µs).
/// The UPDATE backfills; it is idempotent. The new index comes before the old one goes, and a
/// repeated MySQL `DROP INDEX` that finds nothing counts as done ([`crate::migrate`]).
const SQLITE_V3: &[&str] = &[
    "ALTER TABLE follows ADD COLUMN last_message_id INTEGER",
    "UPDATE follows SET last_message_id = (
        SELECT x.id FROM messages x
         WHERE x.user_lo = MIN(follows.follower_id, follows.followee_id)
           AND x.user_hi = MAX(follows.follower_id, follows.followee_id)
         ORDER BY x.create_time DESC LIMIT 1)",
    "CREATE INDEX IF NOT EXISTS follows_friends
        ON follows (follower_id, friend_since, id, followee_id, last_message_id)",
    "DROP INDEX IF EXISTS follows_friend_time",
];

const MYSQL_V3: &[&str] = &[
    "ALTER TABLE follows ADD COLUMN last_message_id BIGINT NULL",
    "UPDATE follows a SET a.last_message_id = (
        SELECT x.id FROM messages x
         WHERE x.user_lo = LEAST(a.follower_id, a.followee_id)
           AND x.user_hi = GREATEST(a.follower_id, a.followee_id)
         ORDER BY x.create_time DESC LIMIT 1)",
    "CREATE INDEX follows_friends
        ON follows (follower_id, friend_since, id, followee_id, last_message_id)",
    "DROP INDEX follows_friend_time ON follows",
];

/// The system user ([`crate::users::SYSTEM_ROLE_WELCOME`]) exists from the schema on, before
/// any request can register: registration could otherwise take its name on a fresh server and
/// own the welcome video. `users.system_role` marks it (UNIQUE, so at most one per role; NULL,
/// which a UNIQUE index does not compare, for everybody else), and its `password_hash` is
/// [`crate::users::NO_PASSWORD`]. In order:
/// 1. the column and its index;
/// 2. adopt the user an earlier release's welcome seed made (named `TikSpin` with the hash `!`,
///    which registration never writes): it keeps its id and the welcome video;
/// 3. otherwise create it as `TikSpin`, unless an ordinary account registered that name before
///    it was reserved (the IGNORE skips the row when either UNIQUE index refuses it): that
///    account stays an ordinary one, with its name, password and videos;
/// 4. and in that case create it under [`crate::users::SYSTEM_USER_FALLBACK_NAME`] (longer than
///    any registration, so nobody holds it); after step 2 or 3 the role's UNIQUE index skips it.
///
/// Each step is idempotent, so a MySQL run cut short can repeat them all. The names and the
/// hash are the constants of [`crate::users`] (a test holds them equal).
const SQLITE_V4: &[&str] = &[
    "ALTER TABLE users ADD COLUMN system_role TEXT",
    "CREATE UNIQUE INDEX IF NOT EXISTS users_system_role ON users (system_role)",
    "UPDATE users SET system_role = 'welcome' WHERE name = 'TikSpin' AND password_hash = '!'",
    "INSERT OR IGNORE INTO users (name, password_hash, created_at, system_role)
        VALUES ('TikSpin', '!', 0, 'welcome')",
    "INSERT OR IGNORE INTO users (name, password_hash, created_at, system_role)
        VALUES ('TikSpin (the app''s own system account)', '!', 0, 'welcome')",
];

// One ALTER adds the column and its index, so a repeat answers "duplicate column" (done) and
// never leaves the column without the index.
const MYSQL_V4: &[&str] = &[
    "ALTER TABLE users ADD COLUMN system_role VARCHAR(16) NULL,
        ADD UNIQUE KEY users_system_role (system_role)",
    "UPDATE users SET system_role = 'welcome' WHERE name = 'TikSpin' AND password_hash = '!'",
    "INSERT IGNORE INTO users (name, password_hash, created_at, system_role)
        VALUES ('TikSpin', '!', 0, 'welcome')",
    "INSERT IGNORE INTO users (name, password_hash, created_at, system_role)
        VALUES ('TikSpin (the app''s own system account)', '!', 0, 'welcome')",
];

pub fn latest_version() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.version)
}

/// The bookkeeping table, created before anything else.
pub fn schema_version_table(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => {
            "CREATE TABLE IF NOT EXISTS schema_version (
                version    INTEGER PRIMARY KEY,
                applied_at INTEGER NOT NULL
            )"
        }
        Dialect::Mysql => {
            "CREATE TABLE IF NOT EXISTS schema_version (
                version    BIGINT NOT NULL PRIMARY KEY,
                applied_at BIGINT NOT NULL
            ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
        }
    }
}

const SQLITE_V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS users (
        id               INTEGER PRIMARY KEY AUTOINCREMENT,
        name             TEXT    NOT NULL,
        password_hash    TEXT    NOT NULL,
        avatar           TEXT,
        background_image TEXT,
        signature        TEXT    NOT NULL DEFAULT '',
        follow_count     INTEGER NOT NULL DEFAULT 0,
        follower_count   INTEGER NOT NULL DEFAULT 0,
        total_favorited  INTEGER NOT NULL DEFAULT 0,
        work_count       INTEGER NOT NULL DEFAULT 0,
        favorite_count   INTEGER NOT NULL DEFAULT 0,
        created_at       INTEGER NOT NULL
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS users_name ON users (name)",
    "CREATE TABLE IF NOT EXISTS videos (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        author_id      INTEGER NOT NULL,
        title          TEXT    NOT NULL,
        state          TEXT    NOT NULL DEFAULT 'processing',
        play_key       TEXT    NOT NULL,
        cover_key      TEXT,
        content_type   TEXT    NOT NULL,
        size_bytes     INTEGER NOT NULL,
        favorite_count INTEGER NOT NULL DEFAULT 0,
        comment_count  INTEGER NOT NULL DEFAULT 0,
        created_at     INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS videos_feed ON videos (state, created_at, id)",
    "CREATE INDEX IF NOT EXISTS videos_author ON videos (author_id, created_at, id)",
    "CREATE TABLE IF NOT EXISTS favorites (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id    INTEGER NOT NULL,
        video_id   INTEGER NOT NULL,
        created_at INTEGER NOT NULL
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS favorites_user_video ON favorites (user_id, video_id)",
    "CREATE INDEX IF NOT EXISTS favorites_user_time ON favorites (user_id, created_at, id)",
    "CREATE TABLE IF NOT EXISTS comments (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        video_id   INTEGER NOT NULL,
        user_id    INTEGER NOT NULL,
        content    TEXT    NOT NULL,
        created_at INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS comments_video_time ON comments (video_id, created_at, id)",
    "CREATE TABLE IF NOT EXISTS follows (
        id          INTEGER PRIMARY KEY AUTOINCREMENT,
        follower_id INTEGER NOT NULL,
        followee_id INTEGER NOT NULL,
        created_at  INTEGER NOT NULL
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS follows_pair ON follows (follower_id, followee_id)",
    "CREATE INDEX IF NOT EXISTS follows_follower_time ON follows (follower_id, created_at, id)",
    "CREATE INDEX IF NOT EXISTS follows_followee_time ON follows (followee_id, created_at, id)",
    "CREATE TABLE IF NOT EXISTS messages (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        user_lo      INTEGER NOT NULL,
        user_hi      INTEGER NOT NULL,
        from_user_id INTEGER NOT NULL,
        to_user_id   INTEGER NOT NULL,
        content      TEXT    NOT NULL,
        create_time  INTEGER NOT NULL
    )",
    "CREATE UNIQUE INDEX IF NOT EXISTS messages_conversation_time
        ON messages (user_lo, user_hi, create_time)",
    "CREATE TABLE IF NOT EXISTS jobs (
        id           INTEGER PRIMARY KEY AUTOINCREMENT,
        kind         TEXT    NOT NULL,
        payload      TEXT    NOT NULL,
        state        TEXT    NOT NULL DEFAULT 'pending',
        attempts     INTEGER NOT NULL DEFAULT 0,
        run_at       INTEGER NOT NULL,
        locked_until INTEGER,
        last_error   TEXT,
        created_at   INTEGER NOT NULL
    )",
    "CREATE INDEX IF NOT EXISTS jobs_state_run_at ON jobs (state, run_at)",
];

// MySQL 8 has no CREATE INDEX IF NOT EXISTS (MariaDB does), so indexes live inside CREATE TABLE
// IF NOT EXISTS. TEXT columns cannot take a DEFAULT before MySQL 8.0.13, hence VARCHAR where one
// is needed.
const MYSQL_V1: &[&str] = &[
    "CREATE TABLE IF NOT EXISTS users (
        id               BIGINT        NOT NULL AUTO_INCREMENT PRIMARY KEY,
        name             VARCHAR(64)   NOT NULL,
        password_hash    VARCHAR(255)  NOT NULL,
        avatar           VARCHAR(1024) NULL,
        background_image VARCHAR(1024) NULL,
        signature        VARCHAR(1024) NOT NULL DEFAULT '',
        follow_count     BIGINT        NOT NULL DEFAULT 0,
        follower_count   BIGINT        NOT NULL DEFAULT 0,
        total_favorited  BIGINT        NOT NULL DEFAULT 0,
        work_count       BIGINT        NOT NULL DEFAULT 0,
        favorite_count   BIGINT        NOT NULL DEFAULT 0,
        created_at       BIGINT        NOT NULL,
        UNIQUE KEY users_name (name)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS videos (
        id             BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
        author_id      BIGINT       NOT NULL,
        title          TEXT         NOT NULL,
        state          VARCHAR(16)  NOT NULL DEFAULT 'processing',
        play_key       VARCHAR(512) NOT NULL,
        cover_key      VARCHAR(512) NULL,
        content_type   VARCHAR(128) NOT NULL,
        size_bytes     BIGINT       NOT NULL,
        favorite_count BIGINT       NOT NULL DEFAULT 0,
        comment_count  BIGINT       NOT NULL DEFAULT 0,
        created_at     BIGINT       NOT NULL,
        KEY videos_feed (state, created_at, id),
        KEY videos_author (author_id, created_at, id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS favorites (
        id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        user_id    BIGINT NOT NULL,
        video_id   BIGINT NOT NULL,
        created_at BIGINT NOT NULL,
        UNIQUE KEY favorites_user_video (user_id, video_id),
        KEY favorites_user_time (user_id, created_at, id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS comments (
        id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        video_id   BIGINT NOT NULL,
        user_id    BIGINT NOT NULL,
        content    TEXT   NOT NULL,
        created_at BIGINT NOT NULL,
        KEY comments_video_time (video_id, created_at, id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS follows (
        id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        follower_id BIGINT NOT NULL,
        followee_id BIGINT NOT NULL,
        created_at  BIGINT NOT NULL,
        UNIQUE KEY follows_pair (follower_id, followee_id),
        KEY follows_follower_time (follower_id, created_at, id),
        KEY follows_followee_time (followee_id, created_at, id)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS messages (
        id           BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
        user_lo      BIGINT NOT NULL,
        user_hi      BIGINT NOT NULL,
        from_user_id BIGINT NOT NULL,
        to_user_id   BIGINT NOT NULL,
        content      TEXT   NOT NULL,
        create_time  BIGINT NOT NULL,
        UNIQUE KEY messages_conversation_time (user_lo, user_hi, create_time)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
    "CREATE TABLE IF NOT EXISTS jobs (
        id           BIGINT      NOT NULL AUTO_INCREMENT PRIMARY KEY,
        kind         VARCHAR(64) NOT NULL,
        payload      TEXT        NOT NULL,
        state        VARCHAR(16) NOT NULL DEFAULT 'pending',
        attempts     INT         NOT NULL DEFAULT 0,
        run_at       BIGINT      NOT NULL,
        locked_until BIGINT      NULL,
        last_error   TEXT        NULL,
        created_at   BIGINT      NOT NULL,
        KEY jobs_state_run_at (state, run_at)
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_dialects_cover_the_same_tables() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "migration versions must increase");
            last = m.version;
            let tables = |d| {
                let mut t: Vec<&str> = m
                    .statements(d)
                    .iter()
                    .filter_map(|s| {
                        s.split_whitespace()
                            .nth(5)
                            .filter(|_| s.starts_with("CREATE TABLE"))
                    })
                    .collect();
                t.sort_unstable();
                t
            };
            assert_eq!(tables(Dialect::Sqlite), tables(Dialect::Mysql));
            for s in m.statements(Dialect::Sqlite) {
                assert!(
                    !s.trim_end().ends_with(';'),
                    "one statement per entry, no trailing ;"
                );
            }
            for s in m.statements(Dialect::Mysql) {
                assert!(
                    !s.trim_end().ends_with(';'),
                    "one statement per entry, no trailing ;"
                );
                assert!(
                    s.contains("IF NOT EXISTS")
                        || crate::migrate::repeats_as_duplicate(s)
                        || s.starts_with("UPDATE ")
                        || s.starts_with("INSERT IGNORE "),
                    "every MySQL statement must be safe to run again: {s}"
                );
            }
        }
        assert_eq!(latest_version(), last);
    }

    /// The migration's literals are the constants the code uses.
    #[test]
    fn the_system_user_migration_uses_the_users_constants() {
        use crate::users::{
            NO_PASSWORD, SYSTEM_ROLE_WELCOME, SYSTEM_USER_FALLBACK_NAME, SYSTEM_USER_NAME,
        };
        let quoted = |s: &str| format!("'{}'", s.replace('\'', "''"));
        for statements in [SQLITE_V4, MYSQL_V4] {
            let all = statements.join("\n");
            for needle in [
                SYSTEM_ROLE_WELCOME,
                SYSTEM_USER_NAME,
                SYSTEM_USER_FALLBACK_NAME,
                NO_PASSWORD,
            ] {
                assert!(all.contains(&quoted(needle)), "{needle} in {all}");
            }
        }
    }
}
