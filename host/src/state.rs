//! The one context type a component instance runs with, and what it shares with the app.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime::{ResourceLimiter, StoreLimits};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::Services;
use crate::logs::LogSink;
use crate::outbound::AllowedHosts;
use crate::profile::Profile;

/// What one component was granted in the manifest, resolved at start.
pub struct ComponentCaps {
    pub id: String,
    pub key_value_stores: HashSet<String>,
    pub sqlite_databases: HashSet<String>,
    pub allowed_hosts: Arc<AllowedHosts>,
    pub variables: HashMap<String, String>,
    pub environment: Vec<(String, String)>,
    pub logs: Arc<LogSink>,
    /// This component's series, when metrics are on (`crate::metrics`).
    pub metrics: Option<Arc<crate::metrics::ComponentMetrics>>,
}

/// Per-instance state: WASI, wasi-http, the resource table, and the component's grants.
pub struct InstanceState {
    pub wasi: WasiCtx,
    pub http: WasiHttpCtx,
    pub table: ResourceTable,
    pub outbound: crate::capabilities::http::OutboundHooks,
    pub caps: Arc<ComponentCaps>,
    pub services: Arc<Services>,
    pub limits: Limiter,
    /// Time spent running guest code (the `spin` profile tracks it on every host/guest crossing).
    pub guest_time: GuestTime,
}

/// Time spent in the guest, tracked on every crossing between guest and host as Spin's
/// `cpu-time-metrics` feature (on in the `spin` binary's default features) does it:
/// crates/factors-executor/src/lib.rs, `CpuTimeCallHook::handle_call_event`, installed with
/// `Store::call_hook` on every store it builds.
#[derive(Default)]
pub struct GuestTime {
    pub elapsed: std::time::Duration,
    entered: Option<std::time::Instant>,
}

impl GuestTime {
    pub fn on_call_hook(&mut self, hook: wasmtime::CallHook) {
        use wasmtime::CallHook::*;
        match hook {
            CallingWasm | ReturningFromHost => self.entered = Some(std::time::Instant::now()),
            ReturningFromWasm | CallingHost => {
                if let Some(t) = self.entered.take() {
                    self.elapsed += t.elapsed();
                }
            }
        }
    }
}

/// The per-instance memory limit, remembering how large linear memory grew (for
/// `--report-instance-memory`, which measures what a request really costs).
pub struct Limiter {
    limits: StoreLimits,
    pub peak_memory: usize,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let allowed = self.limits.memory_growing(current, desired, maximum)?;
        if allowed {
            self.peak_memory = self.peak_memory.max(desired);
        }
        Ok(allowed)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        self.limits.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.limits.instances()
    }

    fn tables(&self) -> usize {
        self.limits.tables()
    }

    fn memories(&self) -> usize {
        self.limits.memories()
    }
}

impl InstanceState {
    pub fn new(caps: Arc<ComponentCaps>, services: Arc<Services>, max_memory: usize) -> Self {
        let mut wasi = WasiCtx::builder();
        match services.profile {
            // Spin opens the component's log files for every instance (crate::logs).
            Profile::Spin => {
                let (out, err) = caps.logs.open_for_instance();
                wasi.stdout(out).stderr(err);
            }
            Profile::Fast => {
                wasi.stdout(caps.logs.stdout()).stderr(caps.logs.stderr());
            }
        }
        for (k, v) in &caps.environment {
            wasi.env(k, v);
        }
        Self {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            outbound: crate::capabilities::http::OutboundHooks {
                metrics: caps.metrics.clone(),
                ..crate::capabilities::http::OutboundHooks::new(caps.allowed_hosts.clone())
            },
            limits: Limiter {
                limits: wasmtime::StoreLimitsBuilder::new()
                    .memory_size(max_memory)
                    .instances(16)
                    .trap_on_grow_failure(false)
                    .build(),
                peak_memory: 0,
            },
            guest_time: GuestTime::default(),
            caps,
            services,
        }
    }
}

impl WasiView for InstanceState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for InstanceState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}
