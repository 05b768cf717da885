//! Password hashing: Argon2id, m = 19456 KiB, t = 2, p = 1 (OWASP's first recommendation),
//! stored as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), which carries its own
//! parameters, so raising them later keeps old hashes verifiable.

use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::api::ApiError;

pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None)
        .expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// A fresh PHC string with a random salt (from the OS, `wasi:random` under Wasm).
pub fn hash(password: &str) -> Result<String, ApiError> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal_because(format!("argon2 hash failed: {e}")))
}

/// False for a wrong password and for a stored hash that does not parse.
pub fn verify(password: &str, phc: &str) -> bool {
    hasher().verify_password(password.as_bytes(), phc).is_ok()
}

/// Spends what a verification spends, for a username that does not exist, so the response time
/// does not tell which usernames are registered.
pub fn verify_nothing(password: &str) {
    let _ = hasher().hash_password_with_salt(password.as_bytes(), b"tikspin-no-such-user");
}
