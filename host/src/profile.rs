//! The host's two cost profiles: what serving a request costs, never what it answers.
//!
//! Both profiles give the same answers to the same requests (same semantics, same SQL, same
//! variable values, same grants); they differ only in how much work the host does per request.
//!
//! - [`Profile::Spin`], the default: pays what Spin 4's `spin up` pays, so that `bench/run.sh`
//!   on the host predicts what the app does under real Spin.
//! - [`Profile::Fast`] (`tikspin up --fast`): this host's own faster choices, for people who run
//!   the host itself.
//!
//! | cost | `spin` (as Spin's source does it) | `fast` |
//! |---|---|---|
//! | SQLite connection | a new rusqlite connection per `open`, opened at the handle's first statement with rusqlite's defaults (5 s busy timeout, 16-statement cache), closed with the handle; the schema is parsed again by each one | pooled per database, 128-statement cache |
//! | SQLite statement | on tokio's blocking pool (`spawn_blocking`), under the handle's mutex; a locked database sleeps in SQLite's busy handler | inline on the executor; a locked database is retried asynchronously |
//! | variable `get` | the component's template walked on every call: CLI values, then each env prefix through `block_in_place` (`std::env::var`, then `.env`), then the default | the value rendered at start |
//! | key-value (`spin` type) | one connection opened lazily, journal mode left alone; `open` and every call through `block_in_place`; `exists` reads the value | opened at start in WAL with `synchronous = NORMAL`, calls inline |
//! | pooling allocator | Spin 4's `spin_core::Config::default()`: 1000 instances, 4 GiB slots, 2 MiB of linear memory and 512 KiB of tables kept resident (reset with `memset`), no `PAGEMAP_SCAN`, decommits one at a time; component-model-async on | slots sized by `--max-instances`, 512 KiB resident found with `PAGEMAP_SCAN`, batched decommits; no concurrency support |
//! | process allocator | the system's (glibc) malloc, as the `spin` binary has no `#[global_allocator]` | mimalloc |
//!
//! Where each `spin` choice comes from (spinframework/spin, the v3.x–v4 line):
//!
//! - `crates/factor-sqlite/src/lib.rs` (`ConnectionCreator::create_connection`: "a *new*
//!   Connection … not a reused one") and `src/host.rs` (`open` creates one per call, `drop`
//!   removes it); `crates/sqlite/src/lib.rs` (the `default` label and `type = "spin"` build an
//!   `InProcConnection` per `open`); `crates/sqlite-inproc/src/lib.rs` (the rusqlite
//!   connection in a `OnceLock`, opened on first use with `Connection::open` and nothing else,
//!   each query through `tokio::task::spawn_blocking` under a `Mutex`, `prepare_cached` on that
//!   connection). rusqlite's `Connection::open` sets `busy_timeout(5000)` and a 16-entry cache.
//! - `crates/factor-variables/src/host.rs` (`get` → `ProviderResolver::resolve` each call),
//!   `crates/expressions/src/lib.rs` (every `{{ expr }}` asks each provider in turn, nothing
//!   cached), `crates/variables-env/src/lib.rs` (`Provider::get` is
//!   `tokio::task::block_in_place(|| std::env::var(..))`, then the `.env` file),
//!   `crates/runtime-factors/src/build.rs` (CLI `--variable` values are a static provider put
//!   first), `crates/runtime-config/src/variables.rs` (the env provider is always there).
//! - `crates/key-value-spin/src/store.rs` (one `OnceLock` connection per store file, no pragmas;
//!   `StoreManager::get`, i.e. every `open`, and every operation run in `block_in_place`;
//!   `exists` is `get`), `crates/factor-key-value/src/lib.rs` (no caching layer in front).
//! - `crates/core/src/lib.rs` (`Config::default`: the pooling settings above, overridable by
//!   `SPIN_WASMTIME_*` variables that are not set by default; `epoch_interruption`,
//!   `wasm_component_model_async(true)`); `src/bin/spin.rs` (no global allocator) and
//!   `.github/workflows/release.yml` (the Linux release is `x86_64-unknown-linux-gnu`: glibc).
//!
//! - Tracing with no `OTEL_*` variable, the same in both profiles: Spin installs its `tracing`
//!   subscriber, but none of its layers takes its spans: the console layer's `EnvFilter` is
//!   `ERROR` without `RUST_LOG`, the OpenTelemetry layer is absent, and the `alert_in_dev` layer
//!   admits only events with that field (`crates/telemetry/src/lib.rs`, `alert_in_dev.rs`), so
//!   each `#[instrument]` callsite is disabled once and costs an interest check per call. The
//!   host installs no subscriber then, which disables its callsites the same way
//!   (`host/src/telemetry`). Not reproduced: Spin's lookups of a `traceparent` to extract on
//!   each request and to inject on each outbound request, which find nothing to carry with the
//!   layer off (a header-map probe each). With the variables set, both runtimes build the same
//!   spans through the same `tracing-opentelemetry` bridge and batch processor.
//!
//! Not reproduced (the host has no such machinery): its per-request factor instance builders,
//! and its async `ResourceLimiter`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, Ordering};

use wasmtime::{InstanceAllocationStrategy, PoolingAllocationConfig};

use crate::app::Limits;

/// How the host spends per request. See the module docs for what each one changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    /// Spin 4's costs (the default), so measurements on the host predict real Spin.
    #[default]
    Spin,
    /// This host's faster choices (`--fast`).
    Fast,
}

impl Profile {
    pub const NAMES: [&'static str; 2] = ["spin", "fast"];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Spin => "spin",
            Profile::Fast => "fast",
        }
    }

    /// The wasmtime configuration: component model, epoch deadlines, and the pooling allocator.
    pub fn wasmtime_config(self, limits: &Limits) -> wasmtime::Config {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        match self {
            Profile::Spin => {
                config.wasm_component_model_async(true);
                config
                    .allocation_strategy(InstanceAllocationStrategy::Pooling(spin_pooling(limits)));
            }
            Profile::Fast => {
                // Components are driven through the WASI 0.2 bindings only, so skip the
                // concurrent-task bookkeeping every call and every `Store` drop would pay for.
                config.concurrency_support(false);
                config
                    .allocation_strategy(InstanceAllocationStrategy::Pooling(fast_pooling(limits)));
            }
        }
        config
    }
}

impl std::fmt::Display for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Profile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "spin" => Ok(Profile::Spin),
            "fast" => Ok(Profile::Fast),
            other => Err(format!(
                "unknown profile {other:?} (expected one of: {})",
                Self::NAMES.join(", ")
            )),
        }
    }
}

const MIB: usize = 1 << 20;
const GIB: usize = 1 << 30;

/// Spin 4's `spin_core::Config::default()` pooling settings (crates/core/src/lib.rs), with
/// `SPIN_MAX_INSTANCE_COUNT` at its default of 1000 (or `--max-instances` if that is larger,
/// so the host's own instance limit is the one that binds). Every other knob is wasmtime's
/// default, as in Spin: no `PAGEMAP_SCAN` (the resident 2 MiB are reset with `memset`), a
/// decommit batch of 1, 100 warm slots.
fn spin_pooling(limits: &Limits) -> PoolingAllocationConfig {
    let n = limits.max_concurrent_instances.max(1000);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(n)
        .total_memories(n)
        .total_tables(2 * n)
        .total_stacks(n)
        .total_core_instances(4 * n)
        .table_elements(100_000)
        .max_component_instance_size(10 * MIB)
        .max_core_instance_size(10 * MIB)
        .max_core_instances_per_component(200)
        .max_tables_per_component(64)
        .max_memories_per_component(32)
        .max_tables_per_module(2)
        .max_memories_per_module(2)
        .max_memory_size(4 * GIB)
        .linear_memory_keep_resident(2 * MIB)
        .table_keep_resident(MIB / 2);
    pool
}

/// Linear memory kept resident per pool slot in the fast profile. Every resident page is reset
/// after every instance, touched or not, so this is a cost per request: enough for what an
/// ordinary request dirties, not for the rare big one (argon2id's 19 MiB). Measured with the
/// app: at 2 MiB, one registration left its slots memsetting 2 MiB per later request (user
/// profile 10.3k → 8.4k req/s); at 512 KiB, 10.9k → 10.0k; at 0 (madvise every time), 7.9k.
const FAST_KEEP_RESIDENT: usize = 512 << 10;

fn fast_pooling(limits: &Limits) -> PoolingAllocationConfig {
    let n = limits.max_concurrent_instances;
    let mut pool = PoolingAllocationConfig::default();
    // A component instance is a handful of core instances (the module plus adapter shims).
    pool.total_component_instances(n)
        .total_core_instances(n * 8)
        .total_memories(n * 2)
        .total_tables(n * 8)
        .max_memory_size(limits.max_instance_memory)
        .max_memories_per_component(4)
        .max_tables_per_component(16)
        .max_core_instances_per_component(32);
    // Reset a finished instance's memory in place (the resident pages, found via PAGEMAP_SCAN
    // on Linux >= 6.7) instead of madvise: no TLB-shootdown IPIs to every core, and no page
    // faults when the next request reuses the slot. What still gets decommitted is batched.
    pool.linear_memory_keep_resident(FAST_KEEP_RESIDENT)
        .table_keep_resident(64 << 10)
        .decommit_batch_size(64)
        .pagemap_scan(wasmtime::Enabled::Auto);
    pool
}

/// The process allocator: the system's malloc (what the `spin` binary uses) until
/// [`ProcessAllocator::use_mimalloc`] is called, mimalloc from then on.
///
/// A global allocator is fixed at link time, so both are linked and this dispatches. The
/// switch happens once, in `main` before any other thread exists; blocks allocated before it
/// (a few from the Rust runtime and argument parsing) stay the system's, and `dealloc` /
/// `realloc` send each block back to the allocator that owns it, asking mimalloc whether the
/// address is in its heap (`mi_is_in_heap_region`, a lookup in its page map). In the default
/// (system) mode mimalloc is never called and every call costs one relaxed load on top of
/// malloc's own.
pub struct ProcessAllocator {
    mimalloc: AtomicBool,
}

impl ProcessAllocator {
    pub const fn new() -> Self {
        Self {
            mimalloc: AtomicBool::new(false),
        }
    }

    /// From now on, allocate with mimalloc. Call before starting threads; there is no way back.
    pub fn use_mimalloc(&self) {
        self.mimalloc.store(true, Ordering::SeqCst);
    }

    pub fn uses_mimalloc(&self) -> bool {
        self.mimalloc.load(Ordering::Relaxed)
    }

    /// Whether mimalloc allocated `ptr` (only ever true once [`Self::use_mimalloc`] was called).
    fn owned_by_mimalloc(&self, ptr: *mut u8) -> bool {
        self.uses_mimalloc()
            && unsafe { libmimalloc_sys::mi_is_in_heap_region(ptr as *const std::ffi::c_void) }
    }
}

impl Default for ProcessAllocator {
    fn default() -> Self {
        Self::new()
    }
}

// SAFETY: every block is freed or resized by the allocator that produced it: system blocks by
// `System`, mimalloc blocks by `MiMalloc`, told apart by mimalloc's own ownership test.
unsafe impl GlobalAlloc for ProcessAllocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if self.uses_mimalloc() {
            mimalloc::MiMalloc.alloc(layout)
        } else {
            System.alloc(layout)
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if self.uses_mimalloc() {
            mimalloc::MiMalloc.alloc_zeroed(layout)
        } else {
            System.alloc_zeroed(layout)
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if self.owned_by_mimalloc(ptr) {
            mimalloc::MiMalloc.dealloc(ptr, layout)
        } else {
            System.dealloc(ptr, layout)
        }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // A block stays with its owner when it grows.
        if self.owned_by_mimalloc(ptr) {
            mimalloc::MiMalloc.realloc(ptr, layout, new_size)
        } else {
            System.realloc(ptr, layout, new_size)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_names_round_trip() {
        for name in Profile::NAMES {
            assert_eq!(name.parse::<Profile>().unwrap().name(), name);
        }
        assert_eq!(Profile::default(), Profile::Spin);
        assert!("turbo"
            .parse::<Profile>()
            .unwrap_err()
            .contains("spin, fast"));
    }

    #[test]
    fn both_profiles_make_engines() {
        let limits = Limits::default();
        for p in [Profile::Spin, Profile::Fast] {
            wasmtime::Engine::new(&p.wasmtime_config(&limits))
                .unwrap_or_else(|e| panic!("{p}: {e:#}"));
        }
    }

    /// Blocks from before the switch go back to the system allocator, later ones to mimalloc,
    /// whatever order they are freed or grown in.
    #[test]
    fn blocks_return_to_their_owner_across_the_switch() {
        let a = ProcessAllocator::new();
        unsafe {
            let small = Layout::from_size_align(24, 8).unwrap();
            let aligned = Layout::from_size_align(256, 64).unwrap();
            let before: Vec<*mut u8> = (0..64)
                .map(|i| a.alloc(if i % 2 == 0 { small } else { aligned }))
                .collect();
            assert!(before.iter().all(|p| !a.owned_by_mimalloc(*p)));
            a.use_mimalloc();
            let after: Vec<*mut u8> = (0..64).map(|_| a.alloc(small)).collect();
            assert!(after.iter().all(|p| a.owned_by_mimalloc(*p)));
            assert!(before.iter().all(|p| !a.owned_by_mimalloc(*p)));
            // A system block grown after the switch stays a system block with its contents.
            before[0].write_bytes(7, 24);
            let grown = a.realloc(before[0], small, 4096);
            assert!(!a.owned_by_mimalloc(grown));
            assert_eq!(*grown.add(23), 7);
            a.dealloc(grown, Layout::from_size_align(4096, 8).unwrap());
            for (i, p) in before.into_iter().enumerate().skip(1) {
                a.dealloc(p, if i % 2 == 0 { small } else { aligned });
            }
            for p in after {
                a.dealloc(p, small);
            }
        }
    }
}
