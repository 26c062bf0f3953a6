//! Authentication adapters: bcrypt password hashing and tokens.
//!
//! Access tokens are JWTs signed with HS256 (the algorithm is pinned on verification, so a token
//! claiming `none` or an asymmetric algorithm is refused) carrying the user id and role, with
//! `exp`, `iss` and `aud` checked. Refresh tokens are 256 random bits; only their SHA-256 is stored.

mod hasher;
mod tokens;

pub use hasher::BcryptHasher;
pub use tokens::{JwtIssuer, JwtSettings};
