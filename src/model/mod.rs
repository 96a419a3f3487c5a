//! The compatibility contract: KubeSphere's OAuth client `Secret` and `User` resource, and
//! their validation into the [`Client`] and [`Account`] the provider works with.
//!
//! Nothing here talks to a cluster or a disk; sources hand objects in, get values or
//! reasons out.

mod client;
mod user;

pub use client::{
    client_from_secret, Client, ClientError, GrantMethod, ObjectRef, CLIENT_LABEL_KEY,
    CLIENT_LABEL_VALUE, CLIENT_SECRET_TYPE, CONFIGURATION_KEY, DEFAULT_SCOPES,
};
pub use user::{
    account_from_user, is_bcrypt_hash, Account, PasswordHash, User, UserError, UserSpec,
    UserStatus, PASSWORD_COST, STATE_ACTIVE, STATE_AUTH_LIMIT_EXCEEDED, STATE_DISABLED,
};
