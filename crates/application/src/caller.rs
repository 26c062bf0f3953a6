//! Who makes a request: what every use case checks permissions against.

use domain::ids::UserId;
use domain::user::Role;

/// The authenticated user making a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    pub user_id: UserId,
    pub role: Role,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }
}
