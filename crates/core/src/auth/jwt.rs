//! Session tokens: JWT, HS256 only, `sub` = user id (a string, as RFC 7519 wants), `iat`/`exp`
//! in seconds, valid 30 days because the client never refreshes.
//!
//! `jsonwebtoken` without its default features has no crypto backend and panics at first use,
//! and its `rust_crypto` backend pulls `rsa` (a RustSec advisory) for algorithms this app never
//! accepts. So this module installs a provider that knows HS256 on `hmac` + `sha2` and refuses
//! every other algorithm, including `none`, before any signature check.

use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::crypto::{CryptoProvider, JwtSigner, JwtVerifier, KeyUtils};
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use jsonwebtoken::signature::{Error as SignatureError, Signer, Verifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::api::ApiError;

pub const TOKEN_LIFETIME_SECS: i64 = 30 * 24 * 60 * 60;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    iat: i64,
    exp: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenError {
    /// Not three base64url parts of JSON with the expected claims.
    Malformed,
    /// Any algorithm but HS256 (`none` included).
    WrongAlgorithm,
    BadSignature,
    Expired,
    /// The deployment has no secret: a configuration error, not the client's.
    NoSecret,
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::NoSecret => ApiError::internal_because("jwt secret is not configured"),
            _ => ApiError::invalid_token(),
        }
    }
}

pub fn issue(secret: &str, user_id: i64, now_ms: i64) -> Result<String, TokenError> {
    if secret.is_empty() {
        return Err(TokenError::NoSecret);
    }
    install_provider();
    let iat = now_ms.div_euclid(1000);
    let claims = Claims {
        sub: user_id.to_string(),
        iat,
        exp: iat + TOKEN_LIFETIME_SECS,
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| classify(&e))
}

/// The user id of a valid token. Expiry is checked against `now_ms` (the request's clock), with
/// no leeway: the 30-day lifetime dwarfs any clock skew.
pub fn verify(secret: &str, token: &str, now_ms: i64) -> Result<i64, TokenError> {
    if secret.is_empty() {
        return Err(TokenError::NoSecret);
    }
    install_provider();
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false; // checked below against the injected clock
    validation.required_spec_claims.clear(); // `Claims` itself requires sub, iat and exp
    let data = jsonwebtoken::decode::<Claims>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| classify(&e))?;
    if data.claims.exp <= now_ms.div_euclid(1000) {
        return Err(TokenError::Expired);
    }
    match data.claims.sub.parse::<i64>() {
        Ok(id) if id > 0 => Ok(id),
        _ => Err(TokenError::Malformed),
    }
}

fn classify(err: &JwtError) -> TokenError {
    match err.kind() {
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm
        | ErrorKind::InvalidAlgorithmName
        | ErrorKind::MissingAlgorithm => TokenError::WrongAlgorithm,
        ErrorKind::ExpiredSignature => TokenError::Expired,
        _ => TokenError::Malformed,
    }
}

static HS256_ONLY: CryptoProvider = CryptoProvider {
    signer_factory: hs256_signer,
    verifier_factory: hs256_verifier,
    key_utils: KeyUtils::new_unimplemented(),
};

/// Idempotent: the first install wins for the process (one request, under Spin). If something
/// else installed a provider first, that one is used, and HS256 still works with it.
fn install_provider() {
    let _ = HS256_ONLY.install_default();
}

struct Hs256(Hmac<Sha256>);

impl Hs256 {
    fn new(key: &[u8]) -> jsonwebtoken::errors::Result<Self> {
        Hmac::<Sha256>::new_from_slice(key)
            .map(Hs256)
            .map_err(|_| ErrorKind::InvalidKeyFormat.into())
    }
}

impl Signer<Vec<u8>> for Hs256 {
    fn try_sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let mut mac = self.0.clone();
        mac.update(msg);
        Ok(mac.finalize().into_bytes().to_vec())
    }
}

impl Verifier<Vec<u8>> for Hs256 {
    fn verify(&self, msg: &[u8], signature: &Vec<u8>) -> Result<(), SignatureError> {
        let mut mac = self.0.clone();
        mac.update(msg);
        mac.verify_slice(signature)
            .map_err(|_| SignatureError::new())
    }
}

impl JwtSigner for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

impl JwtVerifier for Hs256 {
    fn algorithm(&self) -> Algorithm {
        Algorithm::HS256
    }
}

fn hs256_signer(
    alg: &Algorithm,
    key: &EncodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtSigner>> {
    match alg {
        Algorithm::HS256 => Ok(Box::new(Hs256::new(key.as_bytes())?)),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}

fn hs256_verifier(
    alg: &Algorithm,
    key: &DecodingKey,
) -> jsonwebtoken::errors::Result<Box<dyn JwtVerifier>> {
    match alg {
        Algorithm::HS256 => Ok(Box::new(Hs256::new(key.try_get_as_bytes()?)?)),
        _ => Err(ErrorKind::InvalidAlgorithm.into()),
    }
}
