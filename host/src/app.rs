//! Loading an app: manifest + runtime config → compiled, pre-instantiated components, their
//! grants, the shared services and the router.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::Engine;
use wasmtime_wasi_http::p2::bindings::ProxyPre;

use crate::bindings::redis_handler::RedisHandlerPre;
use crate::capabilities::{key_value::KvStore, Services};
use crate::logs::LogSink;
use crate::manifest::{LoadedManifest, RouteDecl};
use crate::outbound::AllowedHosts;
use crate::routes::{RoutePattern, Router};
use crate::runtime_config::{KvBackend, RuntimeConfig};
use crate::state::{ComponentCaps, InstanceState};

/// Limits applied to every instance and request.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Linear memory one instance may grow to.
    pub max_instance_memory: usize,
    /// Wall-clock budget of one request or message, host calls included.
    pub request_timeout: Duration,
    /// Instances alive at once; further requests wait for a slot.
    pub max_concurrent_instances: u32,
    /// Request bodies above this get 413. `None` (the default): no limit, as in Spin, whose
    /// HTTP trigger reads bodies of any size (crates/trigger-http/src/server.rs).
    pub max_request_body: Option<u64>,
    /// Request heads (request line + headers) above this get 431. `None` (the default): only
    /// hyper's own bound, as in Spin (hyper's default buffer, ~400 KiB, then 431).
    pub max_request_head: Option<usize>,
    /// Log each instance's peak linear memory to the component's log (a measuring aid).
    pub report_instance_memory: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_instance_memory: 256 << 20,
            request_timeout: Duration::from_secs(60),
            max_concurrent_instances: 128,
            max_request_body: None,
            max_request_head: None,
            report_instance_memory: false,
        }
    }
}

pub struct Options {
    pub manifest: PathBuf,
    pub runtime_config: Option<PathBuf>,
    pub state_dir: PathBuf,
    pub variables: Vec<(String, String)>,
    pub limits: Limits,
    /// Echo component output on the host's console (it always goes to the log files).
    pub console_logs: bool,
    /// Where compiled machine code is kept (default: `<state-dir>/compiled`).
    pub compile_cache: Option<PathBuf>,
    /// Generate a value for a required secret nobody set (bare `tikspin`'s convenience).
    pub generate_missing_secrets: bool,
    /// Which costs the host pays per request (see [`crate::profile`]).
    pub profile: crate::profile::Profile,
    /// Where to serve Prometheus metrics (`--metrics-listen`); `None`: metrics off.
    pub metrics_listen: Option<std::net::SocketAddr>,
    /// OTLP metrics export, from Spin's variables (`crate::metrics::otlp::Config::from_env`).
    pub metrics_otlp: Option<crate::metrics::otlp::Config>,
    /// The access log (`<state-dir>/logs/access.log`, rotated; see [`crate::access_log`]).
    pub access_log: crate::access_log::Config,
}

pub struct LoadedComponent {
    pub caps: Arc<ComponentCaps>,
    pub http: Option<ProxyPre<InstanceState>>,
    pub redis: Option<RedisHandlerPre<InstanceState>>,
}

pub struct RedisSubscription {
    pub address: String,
    pub channel: String,
    pub component: String,
}

pub struct App {
    pub engine: Engine,
    pub components: HashMap<String, LoadedComponent>,
    pub router: Router<String>,
    pub redis_subscriptions: Vec<RedisSubscription>,
    pub services: Arc<Services>,
    pub limits: Limits,
    pub instance_slots: Arc<tokio::sync::Semaphore>,
    /// `None` with `--access-log off`.
    pub access_log: Option<Arc<crate::access_log::AccessLog>>,
}

impl App {
    pub async fn load(opts: &Options) -> Result<Self> {
        let loaded = LoadedManifest::load(&opts.manifest)?;
        let manifest = &loaded.manifest;
        let runtime_config = match &opts.runtime_config {
            Some(p) => RuntimeConfig::load(p)?,
            None => RuntimeConfig::default(),
        };
        std::fs::create_dir_all(&opts.state_dir)
            .with_context(|| format!("cannot create state dir {}", opts.state_dir.display()))?;

        let mut dotenv = HashMap::new();
        for p in runtime_config.dotenv_paths() {
            dotenv.extend(crate::variables::read_dotenv(&p)?);
        }
        let app_vars = crate::variables::resolve_app_variables(
            manifest,
            &crate::variables::Sources {
                cli: &opts.variables,
                env_prefixes: runtime_config.env_prefixes(),
                dotenv,
                state_dir: &opts.state_dir,
                generate_missing_secrets: opts.generate_missing_secrets,
            },
        )?;

        let engine = make_engine(&opts.limits, opts.profile)?;
        let mut linker: Linker<InstanceState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
        crate::bindings::Platform::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)?;

        // Shared services: every store and database some component declared.
        let mut key_value = HashMap::new();
        let mut sqlite = HashMap::new();
        for (id, c) in &manifest.component {
            for label in &c.key_value_stores {
                if key_value.contains_key(label) {
                    continue;
                }
                let store = match runtime_config.kv_backend(label, &opts.state_dir) {
                    Some(KvBackend::Sqlite(path)) => KvStore::sqlite(label, &path, opts.profile)?,
                    Some(KvBackend::Redis(url)) => KvStore::redis(&url)
                        .await
                        .with_context(|| format!("key-value store {label:?}: cannot reach Redis"))?,
                    None => bail!(
                        "component.{id}.key_value_stores: no key-value store {label:?} (only \"default\" exists unless the runtime config defines [key_value_store.{label}])"
                    ),
                };
                key_value.insert(label.clone(), Arc::new(store));
            }
            for label in &c.sqlite_databases {
                let Some(path) = runtime_config.sqlite_path(label, &opts.state_dir) else {
                    bail!(
                        "component.{id}.sqlite_databases: no database {label:?} (only \"default\" exists unless the runtime config defines [sqlite_database.{label}])"
                    );
                };
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                sqlite.insert(
                    label.clone(),
                    Arc::new(crate::capabilities::sqlite::Database::new(
                        path,
                        opts.profile,
                    )),
                );
            }
        }
        // Series are resolved here, once per component, route and store (docs/observability.md).
        let metrics = (opts.metrics_listen.is_some() || opts.metrics_otlp.is_some()).then(|| {
            let plans = manifest
                .component
                .iter()
                .map(|(id, c)| crate::metrics::ComponentPlan {
                    id,
                    routes: manifest
                        .trigger
                        .http
                        .iter()
                        .filter(|t| &t.component == id)
                        .filter_map(|t| match &t.route {
                            RouteDecl::Path(p) => Some(p.clone()),
                            _ => None,
                        })
                        .collect(),
                    kv_stores: c
                        .key_value_stores
                        .iter()
                        .filter_map(|l| {
                            key_value.get(l).map(|s| (l.clone(), Arc::as_ptr(s) as usize))
                        })
                        .collect(),
                })
                .collect();
            Arc::new(crate::metrics::Metrics::new(
                &manifest.application.name,
                plans,
                sqlite.get("default").map(|db| db.path().to_path_buf()),
            ))
        });
        let services = Arc::new(Services {
            profile: opts.profile,
            key_value,
            sqlite,
            redis: Default::default(),
            mysql: Default::default(),
            variables: crate::capabilities::variables::Resolver::new(
                manifest,
                &opts.variables,
                runtime_config.env_prefixes(),
                runtime_config.dotenv_paths(),
                &app_vars,
            )?,
            metrics: metrics.clone(),
        });

        let http_components: HashSet<&str> = manifest
            .trigger
            .http
            .iter()
            .map(|t| t.component.as_str())
            .collect();
        let redis_components: HashSet<&str> = manifest
            .trigger
            .redis
            .iter()
            .map(|t| t.component.as_str())
            .collect();
        let log_dir = opts.state_dir.join("logs");
        let cache_dir = opts
            .compile_cache
            .clone()
            .unwrap_or_else(|| opts.state_dir.join("compiled"));
        let mut components = HashMap::new();
        for (id, c) in &manifest.component {
            if !http_components.contains(id.as_str()) && !redis_components.contains(id.as_str()) {
                continue; // Spin only loads components that a trigger uses.
            }
            let ctx = || format!("component.{id}");
            let outbound: Vec<String> = c
                .allowed_outbound_hosts
                .iter()
                .map(|t| crate::variables::render(t, &app_vars))
                .collect::<Result<_>>()
                .with_context(|| format!("{}.allowed_outbound_hosts", ctx()))?;
            let caps = Arc::new(ComponentCaps {
                id: id.clone(),
                key_value_stores: c.key_value_stores.iter().cloned().collect(),
                sqlite_databases: c.sqlite_databases.iter().cloned().collect(),
                allowed_hosts: Arc::new(resolve_allowed_hosts(id, &outbound)),
                variables: crate::variables::resolve_component_variables(&c.variables, &app_vars)
                    .with_context(ctx)?,
                environment: c
                    .environment
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect(),
                logs: LogSink::new(id, Some(&log_dir), opts.console_logs)?,
                metrics: metrics.as_ref().and_then(|m| m.component(id)),
            });
            let source = loaded.source_path(c);
            let component = compile_cached(&engine, &source, &cache_dir)
                .with_context(|| format!("{}.source: cannot load {}", ctx(), source.display()))?;
            let pre = linker
                .instantiate_pre(&component)
                .map_err(anyhow::Error::from)
                .with_context(ctx)?;
            let http = if http_components.contains(id.as_str()) {
                Some(ProxyPre::new(pre.clone()).map_err(anyhow::Error::from).with_context(|| {
                    format!("{}: an HTTP trigger needs the export wasi:http/incoming-handler@0.2.x", ctx())
                })?)
            } else {
                None
            };
            let redis = if redis_components.contains(id.as_str()) {
                Some(
                    RedisHandlerPre::new(pre)
                        .map_err(anyhow::Error::from)
                        .with_context(|| {
                            format!(
                                "{}: a Redis trigger needs the export fermyon:spin/inbound-redis",
                                ctx()
                            )
                        })?,
                )
            } else {
                None
            };
            components.insert(id.clone(), LoadedComponent { caps, http, redis });
        }

        let mut routes = Vec::new();
        for t in &manifest.trigger.http {
            if let RouteDecl::Path(p) = &t.route {
                routes.push((RoutePattern::parse(p)?, t.component.clone()));
            }
        }
        let router = Router::new(routes);
        if let Some(dup) = router.duplicate() {
            bail!(
                "{}: route {dup:?} is declared twice",
                opts.manifest.display()
            );
        }

        let mut redis_subscriptions = Vec::new();
        for t in &manifest.trigger.redis {
            let template = t
                .address
                .as_deref()
                .or(manifest
                    .application
                    .trigger
                    .redis
                    .as_ref()
                    .map(|r| r.address.as_str()))
                .unwrap_or_default();
            let address = crate::variables::render(template, &app_vars)?;
            // Spin opens a client for every declared trigger and fails the start when it
            // cannot (crates/trigger-redis: `Client::open(address)?`), an empty address included.
            redis::Client::open(address.as_str()).with_context(|| {
                format!(
                    "{}: [[trigger.redis]] for component `{}`: address {template:?} resolves to {address:?}, which is not a Redis URL",
                    opts.manifest.display(),
                    t.component
                )
            })?;
            redis_subscriptions.push(RedisSubscription {
                address,
                channel: crate::variables::render(&t.channel, &app_vars)?,
                component: t.component.clone(),
            });
        }

        Ok(Self {
            engine,
            components,
            router,
            redis_subscriptions,
            services,
            instance_slots: Arc::new(tokio::sync::Semaphore::new(
                opts.limits.max_concurrent_instances as usize,
            )),
            limits: opts.limits.clone(),
            access_log: crate::access_log::AccessLog::start(
                &opts.access_log,
                &opts.state_dir.join("logs"),
            )?,
        })
    }

    /// A fresh store for one request or message, with the memory limit and the deadline set.
    pub fn new_store(&self, component: &LoadedComponent) -> wasmtime::Store<InstanceState> {
        let state = InstanceState::new(
            component.caps.clone(),
            self.services.clone(),
            self.limits.max_instance_memory,
        );
        let mut store = wasmtime::Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        if self.services.profile == crate::profile::Profile::Spin {
            store.call_hook(|mut s, hook| {
                s.data_mut().guest_time.on_call_hook(hook);
                Ok(())
            });
        }
        // Epochs tick every EPOCH_TICK; yield to other tasks at each tick and trap past the budget.
        let ticks =
            (self.limits.request_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64;
        let mut elapsed = 0u64;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            elapsed += 1;
            if elapsed >= ticks {
                Err(wasmtime::Error::msg("the request ran out of time"))
            } else {
                Ok(wasmtime::UpdateDeadline::Yield(1))
            }
        });
        store
    }
}

/// A component's allow-list with the run-time values. An invalid one is not a start error in
/// Spin (it resolves the list on the first outbound call and then denies every call), so it is
/// not one here either; it is said once instead of on every denied call.
fn resolve_allowed_hosts(component: &str, entries: &[String]) -> AllowedHosts {
    let hosts = AllowedHosts::resolve(entries);
    if let AllowedHosts::Unresolvable(e) = &hosts {
        eprintln!(
            "warning: component `{component}`: allowed_outbound_hosts does not resolve with the variables set ({e}); its outbound connections will be denied"
        );
    }
    hosts
}

pub const EPOCH_TICK: Duration = Duration::from_millis(10);

fn make_engine(limits: &Limits, profile: crate::profile::Profile) -> Result<Engine> {
    let engine = Engine::new(&profile.wasmtime_config(limits))?;
    // The clock behind per-request deadlines.
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("epoch-ticker".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })?;
    Ok(engine)
}

/// Compiling a component takes seconds; keep the machine code beside the state, keyed by the
/// Wasm bytes and the engine's settings, so restarts and test runs start fast.
fn compile_cached(engine: &Engine, source: &Path, cache_dir: &Path) -> Result<Component> {
    use std::hash::{Hash, Hasher};
    let bytes = std::fs::read(source)?;
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    engine.precompile_compatibility_hash().hash(&mut h);
    env!("CARGO_PKG_VERSION").hash(&mut h);
    let cached = cache_dir.join(format!("{:016x}.cwasm", h.finish()));
    if cached.exists() {
        // SAFETY: the file was written by `Component::serialize` of this same host build
        // (the key covers the engine's compatibility hash), in a directory only the host writes.
        if let Ok(c) = unsafe { Component::deserialize_file(engine, &cached) } {
            return Ok(c);
        }
    }
    let component = Component::new(engine, &bytes)?;
    std::fs::create_dir_all(cache_dir)?;
    let tmp = cached.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, component.serialize()?)?;
    std::fs::rename(&tmp, &cached)?;
    Ok(component)
}
