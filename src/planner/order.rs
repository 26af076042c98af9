//! The order a UserGroup lists its members in: by name, then by id. Desired groups are built in this
//! order and the plan keeps it when it changes a list.

use std::sync::Arc;

use crate::api::GroupUser;

/// The order of a UserGroup's members: by name, then by id.
pub fn sort_users(users: &mut [Arc<GroupUser>]) {
    users.sort_by(by_name_then_id);
}

pub(super) fn by_name_then_id(a: &Arc<GroupUser>, b: &Arc<GroupUser>) -> std::cmp::Ordering {
    a.name.cmp(&b.name).then_with(|| a.id.cmp(&b.id))
}
