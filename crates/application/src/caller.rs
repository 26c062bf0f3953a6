//! Who makes a request: what every use case checks permissions against.

use domain::ids::UserId;
use domain::user::Role;

/// The authenticated user making a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The user's id, from their access token.
    pub user_id: UserId,
    /// The user's role, which the use cases check permissions against.
    pub role: Role,
}

impl Caller {
    /// Whether the caller is an admin, who may act on others' resources.
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}
