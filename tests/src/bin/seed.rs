//! `bench/seed`: fills a fresh TikSpin database (SQLite file or MySQL/MariaDB URL) with a large,
//! realistic data set, or with `--check` reports every counter that drifted from its rows. See
//! `tikspin_e2e::seed`.

use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use tikspin_core::ports::Sql;
use tikspin_core::testing::SqliteSql;
use tikspin_e2e::seed::{self, mysql::MysqlSql, Options, Scale};

#[derive(Parser)]
#[command(about = "Seed a TikSpin database with a large, realistic data set, or check its counters")]
struct Args {
    /// The SQLite file to seed (the host's default database is `<state-dir>/sqlite_db.db`;
    /// with `runtime-config.toml`, `.spin/sqlite_db.db`). Created if missing.
    #[arg(long, conflicts_with = "mysql", required_unless_present = "mysql")]
    sqlite: Option<std::path::PathBuf>,
    /// The MySQL/MariaDB database to seed: `mysql://user:password@host:port/database`.
    #[arg(long)]
    mysql: Option<String>,
    /// Recompute every counter from the rows and report drift (exit 1 if any); writes nothing.
    #[arg(long)]
    check: bool,
    /// Add to a database that has rows already (refused otherwise).
    #[arg(long)]
    append: bool,
    /// Issue 20's full scale divided by this (1: 100k users, 1M videos, 10M likes, 1M follows,
    /// 5M comments, 1M messages in 100k conversations). Each count can be set below.
    #[arg(long, default_value_t = 1)]
    divide: u64,
    #[arg(long)]
    users: Option<u64>,
    #[arg(long)]
    videos: Option<u64>,
    #[arg(long)]
    likes: Option<u64>,
    #[arg(long)]
    follows: Option<u64>,
    #[arg(long)]
    comments: Option<u64>,
    #[arg(long)]
    messages: Option<u64>,
    #[arg(long)]
    conversations: Option<u64>,
    /// The random generator's seed (same seed, same data).
    #[arg(long, default_value_t = 20)]
    seed: u64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.divide == 0 {
        eprintln!("seed: --divide must be at least 1");
        return ExitCode::from(2);
    }
    let base = Scale::divided(args.divide);
    let scale = Scale {
        users: args.users.unwrap_or(base.users),
        videos: args.videos.unwrap_or(base.videos),
        likes: args.likes.unwrap_or(base.likes),
        follows: args.follows.unwrap_or(base.follows),
        comments: args.comments.unwrap_or(base.comments),
        messages: args.messages.unwrap_or(base.messages),
        conversations: args.conversations.unwrap_or(base.conversations),
    };
    if scale.users < 2 {
        eprintln!("seed: --users must be at least 2");
        return ExitCode::from(2);
    }
    let sql: Box<dyn Sql> = match (&args.sqlite, &args.mysql) {
        (Some(path), _) => match SqliteSql::open(path) {
            Ok(sql) => Box::new(sql),
            Err(e) => {
                eprintln!("seed: cannot open {}: {e}", path.display());
                return ExitCode::from(2);
            }
        },
        (None, Some(url)) => match MysqlSql::connect(url) {
            Ok(sql) => Box::new(sql),
            Err(e) => {
                eprintln!("seed: cannot connect to MySQL: {e}");
                return ExitCode::from(2);
            }
        },
        (None, None) => unreachable!("clap requires one"),
    };
    let start = Instant::now();
    if args.check {
        return match seed::check(sql.as_ref()) {
            Ok(drift) if drift.is_empty() => {
                println!("check: every counter matches its rows ({:.1} s)", start.elapsed().as_secs_f64());
                ExitCode::SUCCESS
            }
            Ok(drift) => {
                for line in &drift {
                    println!("drift: {line}");
                }
                println!("check: {} drifted column(s)", drift.len());
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("check: {e}");
                ExitCode::from(2)
            }
        };
    }
    let opts = Options {
        scale,
        seed: args.seed,
        now_ms: tikspin_core::time::now_ms(),
        append: args.append,
    };
    println!("seeding {scale:?}");
    match seed::seed(sql.as_ref(), &opts, &mut |line| println!("{line}")) {
        Ok(_) => {
            println!(
                "seeded in {:.1} s; every user's password is `{}`",
                start.elapsed().as_secs_f64(),
                seed::PASSWORD
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("seed: {e}");
            ExitCode::from(if matches!(e, seed::SeedError::NotEmpty(_)) { 3 } else { 1 })
        }
    }
}
