//! Host bindings generated from the project's WIT (`wit/`), which carries Spin's own
//! `fermyon:spin@2.0.0` interfaces. Resources map to the host types that back them.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "tikspin:app/platform",
    imports: { default: async | trappable },
    with: {
        "fermyon:spin/key-value.store": crate::capabilities::key_value::OpenStore,
        "fermyon:spin/sqlite.connection": crate::capabilities::sqlite::OpenConnection,
        "fermyon:spin/redis.connection": crate::capabilities::redis::OpenConnection,
        "fermyon:spin/mysql.connection": crate::capabilities::mysql::OpenConnection,
        // A wasi:keyvalue bucket is a store like fermyon:spin's (Spin keeps both in one table).
        "wasi:keyvalue/store.bucket": crate::capabilities::key_value::OpenStore,
        "wasi:keyvalue/atomics.cas": crate::capabilities::wasi_keyvalue::Cas,
    },
});

/// The export of a Redis-triggered component (`#[redis_component]` in spin-sdk 5).
pub mod redis_handler {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "tikspin:app/redis-handler",
        exports: { default: async },
    });
}
