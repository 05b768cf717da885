//! Metrics (issue 18): what `docs/observability.md` lists, recorded on pre-resolved handles and
//! served as Prometheus text on `--metrics-listen` ([`listener`]) and pushed as OTLP when Spin's
//! variables ask for it ([`otlp`]).
//!
//! Off (neither switch), [`crate::capabilities::Services::metrics`] and
//! [`crate::state::ComponentCaps::metrics`] are `None` and every recording point is one `Option`
//! check. On, each component has its own [`ComponentMetrics`], resolved at load, and the
//! per-request work is a few relaxed atomic adds on series that belong to it.

pub mod business;
pub mod listener;
pub mod otlp;
pub mod registry;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use registry::{
    Counter, Family, Histogram, Kind, TextWriter, Visitor, FAST_SECONDS, HTTP_SECONDS,
    OTEL_DEFAULT,
};

/// The families of docs/observability.md, with the OTLP name each Prometheus name comes from.
macro_rules! family {
    ($id:ident, $prom:literal, $otel:literal, $kind:ident, $unit:literal, $help:literal) => {
        pub static $id: Family = Family {
            prom: $prom,
            otel: $otel,
            kind: Kind::$kind,
            unit: $unit,
            help: $help,
        };
    };
}

// Spin's own (crates/trigger-http/src/server.rs, crates/factors-executor/src/lib.rs): Spin
// gives the cpu time's unit as an attribute, so its instrument has none and neither has ours.
family!(REQUEST_COUNT, "spin_request_count_total", "spin.request_count", Counter, "",
    "Requests and messages routed to a component (Spin's spin.request_count).");
family!(CPU_TIME, "spin_component_cpu_time", "spin.component_cpu_time", Histogram, "",
    "Time spent running guest code per instance, in seconds (Spin's spin.component_cpu_time).");
family!(HTTP_DURATION, "http_server_request_duration_seconds", "http.server.request.duration",
    Histogram, "s", "Duration of routed HTTP requests until the response head (semconv http.server.request.duration).");
family!(INSTANTIATE, "tikspin_component_instantiate_duration_seconds",
    "tikspin.component_instantiate_duration", Histogram, "s",
    "Time to instantiate a component for one request or message.");
family!(EXECUTION, "tikspin_component_execution_duration_seconds",
    "tikspin.component_execution_duration", Histogram, "s",
    "Time a component's handler ran for one request or message, after instantiation.");
family!(SQL_DURATION, "tikspin_sql_statement_duration_seconds", "tikspin.sql_statement_duration",
    Histogram, "s", "SQL statements a component ran, by database system and first keyword.");
family!(KV_DURATION, "tikspin_kv_operation_duration_seconds", "tikspin.kv_operation_duration",
    Histogram, "s", "Key-value operations a component made, by store and operation.");
family!(OUTBOUND_DURATION, "tikspin_outbound_http_request_duration_seconds",
    "tikspin.outbound_http_request_duration", Histogram, "s",
    "Outbound HTTP requests a component sent, until the response head (status 0: no response).");
family!(REDIS_MESSAGES, "tikspin_redis_messages_total", "tikspin.redis_messages", Counter, "",
    "Redis-triggered messages a component handled, by outcome.");
family!(COVER_JOB, "tikspin_cover_job_duration_seconds", "tikspin.cover_job_duration", Histogram,
    "s", "The worker's run of one job message (the cover job), production layout.");
family!(JOBS, "tikspin_jobs", "tikspin.jobs", Gauge, "",
    "Jobs in the app's jobs table by state, read at scrape time.");
family!(JOBS_SCRAPE_ERRORS, "tikspin_jobs_scrape_errors_total", "tikspin.jobs_scrape_errors",
    Counter, "", "Reads of the jobs table that failed.");

pub use business::{Business, Outcome};

/// Which trigger ran an instance (`trigger_type` in Spin's `spin.request_count`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Trigger {
    Http = 0,
    Redis = 1,
}

impl Trigger {
    const ALL: [Trigger; 2] = [Trigger::Http, Trigger::Redis];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::Redis => "redis",
        }
    }
}

/// `db.system` of a statement.
#[derive(Clone, Copy)]
pub enum DbSystem {
    Sqlite = 0,
    Mysql = 1,
}

const DB_SYSTEMS: [&str; 2] = ["sqlite", "mysql"];

/// The statement's first keyword, from a fixed list; anything else is `OTHER`. Only the keyword
/// is read: no statement text or parameter ever becomes a label.
const SQL_OPERATIONS: [&str; 15] = [
    "SELECT", "INSERT", "UPDATE", "DELETE", "BEGIN", "START", "COMMIT", "ROLLBACK", "CREATE",
    "ALTER", "DROP", "PRAGMA", "WITH", "REPLACE", "OTHER",
];

/// A Redis message that names a job (its id, digits only), not a `sweep` wake-up
/// (components/worker).
pub fn is_job_message(payload: &[u8]) -> bool {
    // `<id>` or `<id> <traceparent>` (crates/spin-adapter/src/jobs.rs, `job_message`).
    let p = payload.trim_ascii();
    let p = p.split(u8::is_ascii_whitespace).next().unwrap_or_default();
    !p.is_empty() && p.len() <= 20 && p.iter().all(u8::is_ascii_digit)
}

pub fn sql_operation(statement: &str) -> usize {
    let word = statement
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("");
    SQL_OPERATIONS[..SQL_OPERATIONS.len() - 1]
        .iter()
        .position(|op| op.eq_ignore_ascii_case(word))
        .unwrap_or(SQL_OPERATIONS.len() - 1)
}

/// Key-value operations, named as the interfaces name them.
#[derive(Clone, Copy)]
pub enum KvOp {
    Open = 0,
    Get,
    Set,
    Delete,
    Exists,
    GetKeys,
    Increment,
    CasCurrent,
    CasSwap,
}

const KV_OPS: [&str; 9] = [
    "open",
    "get",
    "set",
    "delete",
    "exists",
    "get_keys",
    "increment",
    "cas_current",
    "cas_swap",
];

const OUTCOMES_OK_ERR: [&str; 2] = ["ok", "error"];

fn ok_err<T, E>(r: &Result<T, E>) -> usize {
    usize::from(r.is_err())
}

/// The HTTP methods semconv names; others are `_OTHER`.
const METHODS: [&str; 8] = ["GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "_OTHER"];

pub fn method_index(m: &http::Method) -> u8 {
    METHODS[..7]
        .iter()
        .position(|k| *k == m.as_str())
        .unwrap_or(7) as u8
}

/// The app's metrics.
pub struct Metrics {
    /// `app_id` of `spin.request_count`: the manifest's `[application] name`, as Spin takes it
    /// (crates/trigger-http/src/server.rs: the `APP_NAME_KEY` metadata).
    pub app_id: String,
    components: BTreeMap<String, Arc<ComponentMetrics>>,
    pub business: Business,
    cover_job: [Histogram; 2],
    /// The app's `default` SQLite database, for the job backlog read at scrape time.
    pub jobs_database: Option<std::path::PathBuf>,
    jobs_scrape_errors: Counter,
}

/// One component's series.
pub struct ComponentMetrics {
    pub id: String,
    requests: [Counter; 2],
    instantiate: [Histogram; 2],
    execution: [Histogram; 2],
    cpu_time: Histogram,
    /// By manifest route (a component has one or a few: a linear search beats hashing).
    routes: Vec<(String, RouteMetrics)>,
    /// `[system][operation][outcome]`, flattened.
    sql: Box<[Histogram]>,
    /// Per store: `(store pointer, label, [operation][outcome] flattened)`.
    kv: Vec<(usize, String, Box<[Histogram]>)>,
    outbound: Mutex<BTreeMap<(String, u16), Arc<Histogram>>>,
    redis_messages: [Counter; 2],
}

/// One manifest route's request durations, by method and status.
pub struct RouteMetrics {
    by_status: RwLock<Vec<(u8, u16, Arc<Histogram>)>>,
}

impl RouteMetrics {
    fn series(&self, method: u8, status: u16) -> Arc<Histogram> {
        let find = |v: &Vec<(u8, u16, Arc<Histogram>)>| {
            v.iter()
                .find(|(m, s, _)| *m == method && *s == status)
                .map(|(_, _, h)| h.clone())
        };
        if let Some(h) = find(&self.by_status.read().unwrap_or_else(|p| p.into_inner())) {
            return h;
        }
        let mut all = self.by_status.write().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = find(&all) {
            return h;
        }
        let h = Arc::new(Histogram::new(HTTP_SECONDS));
        all.push((method, status, h.clone()));
        h
    }
}

/// The metrics' part of one HTTP request's context (`None` start: metrics off).
#[derive(Default)]
pub struct HttpRequest {
    pub start: Option<std::time::Instant>,
    method: u8,
    /// The component's series and the index of the matched route in them.
    route: Option<(Arc<ComponentMetrics>, usize)>,
    action: Option<business::Action>,
    /// `content-length` of the request, for the upload bytes.
    pub request_bytes: Option<u64>,
}

impl HttpRequest {
    /// The request was routed to `component` by the manifest route `raw_route`: counts it as
    /// Spin counts `spin.request_count` (crates/trigger-http/src/server.rs, on the route match).
    pub fn routed(&mut self, component: &Arc<ComponentMetrics>, raw_route: &str) {
        if self.start.is_none() {
            return;
        }
        component.count_request(Trigger::Http);
        if let Some(i) = component.routes.iter().position(|(r, _)| r == raw_route) {
            self.route = Some((component.clone(), i));
        }
    }
}

/// The clock of one instance: started, instantiated, done.
pub struct InstanceTimes {
    start: Option<std::time::Instant>,
    instantiated: Option<std::time::Instant>,
}

impl InstanceTimes {
    /// `on`: metrics are on (else nothing reads the clock).
    pub fn start(on: bool) -> Self {
        Self {
            start: on.then(std::time::Instant::now),
            instantiated: None,
        }
    }

    pub fn instantiated(&mut self) {
        if self.start.is_some() {
            self.instantiated = Some(std::time::Instant::now());
        }
    }

    /// Records instantiation, execution, and the guest time the `spin` profile keeps (Spin's
    /// `spin.component_cpu_time`, recorded as Spin does when the instance is done).
    pub fn record(
        &self,
        m: &ComponentMetrics,
        t: Trigger,
        store: &wasmtime::Store<crate::state::InstanceState>,
    ) {
        let (Some(start), Some(inst)) = (self.start, self.instantiated) else {
            return;
        };
        let guest = (store.data().services.profile == crate::profile::Profile::Spin)
            .then(|| store.data().guest_time.elapsed);
        m.record_instance(t, inst - start, inst.elapsed(), guest);
    }

    /// Wall time since the start (the whole run of a message).
    pub fn elapsed(&self) -> Option<Duration> {
        self.start.map(|s| s.elapsed())
    }
}

/// The clock of one host call: `None` (and nothing read) when metrics are off.
pub struct Clock(Option<std::time::Instant>);

type Handle = Option<Arc<ComponentMetrics>>;

impl Clock {
    pub fn start(m: &Handle) -> Self {
        Self(m.as_ref().map(|_| std::time::Instant::now()))
    }

    pub fn kv<T, E>(
        self,
        m: &Handle,
        store: &Arc<crate::capabilities::key_value::KvStore>,
        op: KvOp,
        r: &Result<T, E>,
    ) {
        if let (Some(t), Some(m)) = (self.0, m) {
            m.record_kv(Arc::as_ptr(store) as usize, op, r, t.elapsed());
        }
    }

}

/// The clock of one SQL statement, and its operation (read only when metrics are on).
pub struct SqlClock(Option<(std::time::Instant, usize)>);

impl SqlClock {
    pub fn start(m: &Handle, statement: &str) -> Self {
        Self(m.as_ref().map(|_| (std::time::Instant::now(), sql_operation(statement))))
    }

    pub fn done<T, E>(self, m: &Handle, system: DbSystem, r: &Result<T, E>) {
        if let (Some((t, operation)), Some(m)) = (self.0, m) {
            m.record_sql(system, operation, r, t.elapsed());
        }
    }
}

/// What a component was given, for resolving its series at load.
pub struct ComponentPlan<'a> {
    pub id: &'a str,
    pub routes: Vec<String>,
    /// `(label, store pointer)` of each key-value store it may open.
    pub kv_stores: Vec<(String, usize)>,
}

impl Metrics {
    pub fn new(
        app_id: &str,
        components: Vec<ComponentPlan<'_>>,
        jobs_database: Option<std::path::PathBuf>,
    ) -> Self {
        let components = components
            .into_iter()
            .map(|c| {
                let m = ComponentMetrics {
                    id: c.id.to_string(),
                    requests: Default::default(),
                    instantiate: [Histogram::new(FAST_SECONDS), Histogram::new(FAST_SECONDS)],
                    execution: [Histogram::new(HTTP_SECONDS), Histogram::new(HTTP_SECONDS)],
                    cpu_time: Histogram::new(OTEL_DEFAULT),
                    routes: c
                        .routes
                        .into_iter()
                        .map(|r| {
                            (
                                r,
                                RouteMetrics {
                                    by_status: RwLock::new(Vec::new()),
                                },
                            )
                        })
                        .collect(),
                    sql: (0..DB_SYSTEMS.len() * SQL_OPERATIONS.len() * 2)
                        .map(|_| Histogram::new(FAST_SECONDS))
                        .collect(),
                    kv: c
                        .kv_stores
                        .into_iter()
                        .map(|(label, ptr)| {
                            let series = (0..KV_OPS.len() * 2)
                                .map(|_| Histogram::new(FAST_SECONDS))
                                .collect();
                            (ptr, label, series)
                        })
                        .collect(),
                    outbound: Mutex::new(BTreeMap::new()),
                    redis_messages: Default::default(),
                };
                (c.id.to_string(), Arc::new(m))
            })
            .collect();
        Self {
            app_id: app_id.to_string(),
            components,
            business: Business::default(),
            cover_job: [Histogram::new(HTTP_SECONDS), Histogram::new(HTTP_SECONDS)],
            jobs_database,
            jobs_scrape_errors: Counter::default(),
        }
    }

    /// What a request's recording needs, taken as it arrives.
    pub fn start_http(&self, method: &http::Method, path: &str) -> HttpRequest {
        HttpRequest {
            start: Some(std::time::Instant::now()),
            method: method_index(method),
            route: None,
            action: (*method == http::Method::POST)
                .then(|| business::action(path))
                .flatten(),
            request_bytes: None,
        }
    }

    pub fn component(&self, id: &str) -> Option<Arc<ComponentMetrics>> {
        self.components.get(id).cloned()
    }

    /// One routed HTTP request, when its response head is ready.
    pub fn record_http(&self, req: &HttpRequest, status: u16, envelope_code: Option<i32>) {
        let Some(start) = req.start else { return };
        let elapsed = start.elapsed();
        if let Some((c, route)) = &req.route {
            if let Some((_, r)) = c.routes.get(*route) {
                r.series(req.method, status).observe_duration(elapsed);
            }
        }
        if let Some(action) = req.action {
            self.business
                .record(action, status, envelope_code, req.request_bytes);
        }
    }

    /// A Redis-triggered job message ran (the cover job, in the production layout).
    pub fn record_cover_job(&self, ok: bool, elapsed: Duration) {
        self.cover_job[usize::from(!ok)].observe_duration(elapsed);
    }

    /// The Prometheus text of everything, with the job backlog read now.
    pub fn render(&self) -> String {
        let mut w = TextWriter::new();
        self.visit(&mut w);
        w.finish()
    }

    /// Walks every series (and reads the job backlog): for the text format and for OTLP.
    pub fn visit(&self, w: &mut impl Visitor) {
        let all = || self.components.values();

        w.family(&REQUEST_COUNT);
        for c in all() {
            for t in Trigger::ALL {
                let n = c.requests[t as usize].get();
                if n > 0 {
                    w.value(
                        &[
                            ("app_id", &self.app_id),
                            ("component_id", &c.id),
                            ("trigger_type", t.as_str()),
                        ],
                        n as f64,
                    );
                }
            }
        }

        w.family(&CPU_TIME);
        for c in all() {
            if c.cpu_time.count() > 0 {
                w.histogram(&[("component_id", &c.id), ("unit", "s")], &c.cpu_time);
            }
        }

        w.family(&HTTP_DURATION);
        for c in all() {
            for (route, r) in &c.routes {
                let mut series = r.by_status.read().unwrap_or_else(|p| p.into_inner()).clone();
                series.sort_by_key(|(m, s, _)| (*m, *s));
                for (m, s, h) in series {
                    let status = s.to_string();
                    w.histogram(
                        &[
                            ("component_id", &c.id),
                            ("http_route", route),
                            ("http_request_method", METHODS[m as usize]),
                            ("http_response_status_code", &status),
                        ],
                        &h,
                    );
                }
            }
        }

        for (family, pick) in [
            (
                &INSTANTIATE,
                (|c: &ComponentMetrics, t: Trigger| &c.instantiate[t as usize])
                    as fn(&ComponentMetrics, Trigger) -> &Histogram,
            ),
            (&EXECUTION, |c, t| &c.execution[t as usize]),
        ] {
            w.family(family);
            for c in all() {
                for t in Trigger::ALL {
                    let h = pick(c, t);
                    if h.count() > 0 {
                        w.histogram(&[("component_id", &c.id), ("trigger_type", t.as_str())], h);
                    }
                }
            }
        }

        w.family(&SQL_DURATION);
        for c in all() {
            for (i, h) in c.sql.iter().enumerate() {
                if h.count() == 0 {
                    continue;
                }
                let outcome = i % 2;
                let op = (i / 2) % SQL_OPERATIONS.len();
                let system = i / 2 / SQL_OPERATIONS.len();
                w.histogram(
                    &[
                        ("component_id", &c.id),
                        ("db_system", DB_SYSTEMS[system]),
                        ("db_operation", SQL_OPERATIONS[op]),
                        ("outcome", OUTCOMES_OK_ERR[outcome]),
                    ],
                    h,
                );
            }
        }

        w.family(&KV_DURATION);
        for c in all() {
            for (_, store, series) in &c.kv {
                for (i, h) in series.iter().enumerate() {
                    if h.count() > 0 {
                        w.histogram(
                            &[
                                ("component_id", &c.id),
                                ("store", store),
                                ("operation", KV_OPS[i / 2]),
                                ("outcome", OUTCOMES_OK_ERR[i % 2]),
                            ],
                            h,
                        );
                    }
                }
            }
        }

        w.family(&OUTBOUND_DURATION);
        for c in all() {
            let series: Vec<_> = c
                .outbound
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(k, h)| (k.clone(), h.clone()))
                .collect();
            for ((host, status), h) in series {
                let status = status.to_string();
                w.histogram(
                    &[
                        ("component_id", &c.id),
                        ("server_address", &host),
                        ("http_response_status_code", &status),
                    ],
                    &h,
                );
            }
        }

        w.family(&REDIS_MESSAGES);
        for c in all() {
            for (i, outcome) in OUTCOMES_OK_ERR.iter().enumerate() {
                let n = c.redis_messages[i].get();
                if n > 0 {
                    w.value(&[("component_id", &c.id), ("outcome", outcome)], n as f64);
                }
            }
        }

        w.family(&COVER_JOB);
        for (i, outcome) in OUTCOMES_OK_ERR.iter().enumerate() {
            if self.cover_job[i].count() > 0 {
                w.histogram(&[("outcome", outcome)], &self.cover_job[i]);
            }
        }

        self.business.visit(w);

        if let Some(db) = &self.jobs_database {
            match listener::job_backlog(db) {
                Ok(None) => {}
                Ok(Some(states)) => {
                    w.family(&JOBS);
                    for (state, n) in states {
                        w.value(&[("state", &state)], n as f64);
                    }
                }
                Err(e) => {
                    self.jobs_scrape_errors.inc();
                    eprintln!("metrics: cannot read the job backlog: {e:#}");
                }
            }
            w.family(&JOBS_SCRAPE_ERRORS);
            w.value(&[], self.jobs_scrape_errors.get() as f64);
        }
    }
    /// Every component's series, for the OTLP export.
    pub fn components(&self) -> impl Iterator<Item = &Arc<ComponentMetrics>> {
        self.components.values()
    }
}

impl ComponentMetrics {
    /// Spin's `spin.request_count`: counted when the request is routed (HTTP) or the message
    /// dispatched (Redis), before the instance starts.
    pub fn count_request(&self, t: Trigger) {
        self.requests[t as usize].inc();
    }

    pub fn record_instance(
        &self,
        t: Trigger,
        instantiate: Duration,
        execution: Duration,
        guest_time: Option<Duration>,
    ) {
        self.instantiate[t as usize].observe_duration(instantiate);
        self.execution[t as usize].observe_duration(execution);
        if let Some(g) = guest_time {
            self.cpu_time.observe_duration(g);
        }
    }

    /// `operation`: [`sql_operation`] of the statement.
    pub fn record_sql<T, E>(&self, system: DbSystem, operation: usize, r: &Result<T, E>, d: Duration) {
        let i = ((system as usize * SQL_OPERATIONS.len()) + operation) * 2 + ok_err(r);
        self.sql[i].observe_duration(d);
    }

    pub fn record_kv<T, E>(&self, store: usize, op: KvOp, r: &Result<T, E>, d: Duration) {
        if let Some((_, _, series)) = self.kv.iter().find(|(p, _, _)| *p == store) {
            series[op as usize * 2 + ok_err(r)].observe_duration(d);
        }
    }

    pub fn record_outbound(&self, host: &str, status: u16, d: Duration) {
        let h = {
            let mut all = self.outbound.lock().unwrap_or_else(|p| p.into_inner());
            // A host the manifest allows; a template with a wildcard could still make many,
            // so past 64 series the rest share one.
            let key = if all.len() >= 64 && !all.contains_key(&(host.to_string(), status)) {
                ("_other".to_string(), status)
            } else {
                (host.to_string(), status)
            };
            all.entry(key)
                .or_insert_with(|| Arc::new(Histogram::new(FAST_SECONDS)))
                .clone()
        };
        h.observe_duration(d);
    }

    pub fn record_redis_message(&self, ok: bool) {
        self.redis_messages[usize::from(!ok)].inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sql_operation_is_the_first_keyword_and_nothing_else() {
        let op = |s| SQL_OPERATIONS[sql_operation(s)];
        assert_eq!(op("SELECT id FROM users WHERE name = ?"), "SELECT");
        assert_eq!(op("  insert into t values (1)"), "INSERT");
        assert_eq!(op("\nUPDATE jobs SET state = 'done'"), "UPDATE");
        assert_eq!(op("BEGIN IMMEDIATE"), "BEGIN");
        assert_eq!(op("START TRANSACTION"), "START");
        assert_eq!(op("with x as (select 1) select * from x"), "WITH");
        assert_eq!(op("VACUUM"), "OTHER");
        assert_eq!(op(""), "OTHER");
        assert_eq!(op("SELECTED"), "OTHER");
    }

    fn one_component() -> Metrics {
        Metrics::new(
            "tikspin",
            vec![ComponentPlan {
                id: "user",
                routes: vec!["/douyin/user/...".into()],
                kv_stores: vec![("default".into(), 1)],
            }],
            None,
        )
    }

    #[test]
    fn recorded_series_render_with_their_labels_and_unused_ones_do_not() {
        let m = one_component();
        let c = m.component("user").unwrap();
        c.count_request(Trigger::Http);
        let mut req = m.start_http(&http::Method::POST, "/douyin/user/login/");
        req.routed(&c, "/douyin/user/...");
        m.record_http(&req, 200, Some(2002));
        c.record_sql(DbSystem::Sqlite, sql_operation("SELECT 1"), &Ok::<_, ()>(()), Duration::from_micros(50));
        c.record_kv(1, KvOp::Get, &Err::<(), _>(()), Duration::from_micros(10));
        let text = m.render();
        assert!(text.contains(
            "spin_request_count_total{app_id=\"tikspin\",component_id=\"user\",trigger_type=\"http\"} 2\n"
        ), "{text}");
        assert!(text.contains("http_server_request_duration_seconds_count{component_id=\"user\",http_route=\"/douyin/user/...\",http_request_method=\"POST\",http_response_status_code=\"200\"} 1\n"), "{text}");
        assert!(text.contains("tikspin_sql_statement_duration_seconds_count{component_id=\"user\",db_system=\"sqlite\",db_operation=\"SELECT\",outcome=\"ok\"} 1\n"), "{text}");
        assert!(text.contains("tikspin_kv_operation_duration_seconds_count{component_id=\"user\",store=\"default\",operation=\"get\",outcome=\"error\"} 1\n"), "{text}");
        assert!(text.contains("tikspin_logins_total{outcome=\"refused\"} 1\n"), "{text}");
        assert!(!text.contains("trigger_type=\"redis\""), "{text}");
        assert!(!text.contains("db_operation=\"INSERT\""), "{text}");
    }
}
