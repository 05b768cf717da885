//! A small Spin-compatible runtime for TikSpin's components.
//!
//! It reads `spin.toml` and `runtime-config.toml`, serves the HTTP trigger and the Redis trigger,
//! and provides the `fermyon:spin@2.0.0` interfaces with Spin's semantics, so the same `.wasm`
//! files behave alike here and under `spin up`. Map of the crate:
//!
//! - [`manifest`], [`runtime_config`]: the two files, parsed strictly.
//! - [`variables`], [`routes`], [`outbound`]: Spin's rules for variables, routes and allowed hosts.
//! - [`app`]: loading: engine, compiled components, grants, shared services, router.
//! - [`state`]: the one context type each instance runs with.
//! - [`capabilities`]: one module per Spin interface (key-value, sqlite, redis, mysql, variables,
//!   outbound http).
//! - [`http_trigger`], [`redis_trigger`]: the two triggers.
//! - [`metrics`]: the metrics of docs/observability.md and the `--metrics-listen` endpoint.
//! - [`access_log`]: `x-request-id` and the JSON access log.
//! - [`server`]: start and stop a running app (used by the CLI and the tests).
//! - [`telemetry`]: OTLP traces shaped as Spin's, on when the `OTEL_*` variables say so.
//! - [`profile`]: the two cost profiles (`spin`, the default, pays what Spin pays; `fast`), and
//!   the process allocator that goes with them.

pub mod access_log;
pub mod app;
pub mod bindings;
pub mod builder;
pub mod capabilities;
pub mod http_trigger;
pub mod logs;
pub mod manifest;
pub mod metrics;
pub mod outbound;
pub mod profile;
pub mod redis_trigger;
pub mod routes;
pub mod runtime_config;
pub mod server;
pub mod state;
pub mod telemetry;
pub mod variables;
