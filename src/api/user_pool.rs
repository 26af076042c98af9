//! One copy of each distinct user record. The same user is listed by every group it belongs to, by
//! the watched UserGroups, by the directory snapshot and by the entries kept between runs; records
//! that are equal share one allocation, so a directory of N users costs N records, not one per
//! place and membership.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};

use super::GroupUser;

#[derive(Debug, Default)]
pub struct UserPool {
    users: Mutex<HashSet<Arc<GroupUser>>>,
}

impl UserPool {
    /// The pool's record equal to `user`, which joins the pool if it has none.
    pub fn share(&self, user: &mut Arc<GroupUser>) {
        share(&mut self.lock(), user);
    }

    pub fn share_all<'a>(&self, users: impl IntoIterator<Item = &'a mut Arc<GroupUser>>) {
        let mut pool = self.lock();
        for user in users {
            share(&mut pool, user);
        }
    }

    /// Forgets the records nothing but the pool holds any more.
    pub fn prune(&self) {
        self.lock().retain(|user| Arc::strong_count(user) > 1);
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<Arc<GroupUser>>> {
        // A panic while holding the set leaves it consistent: every step is a whole insert or get.
        self.users.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn share(pool: &mut HashSet<Arc<GroupUser>>, user: &mut Arc<GroupUser>) {
    match pool.get(&**user) {
        Some(pooled) => {
            if !Arc::ptr_eq(pooled, user) {
                *user = Arc::clone(pooled);
            }
        }
        None => {
            pool.insert(Arc::clone(user));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> Arc<GroupUser> {
        Arc::new(GroupUser {
            name: name.into(),
            id: format!("id-{name}"),
            ..Default::default()
        })
    }

    #[test]
    fn equal_records_end_up_as_one_allocation() {
        let pool = UserPool::default();
        let mut a = user("a");
        let mut b = user("a");
        let mut c = user("c");
        pool.share_all([&mut a, &mut b, &mut c]);
        assert!(Arc::ptr_eq(&a, &b));
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(pool.len(), 2);
    }

    #[test]
    fn pruning_forgets_records_nobody_holds() {
        let pool = UserPool::default();
        let mut kept = user("kept");
        let mut dropped = user("dropped");
        pool.share(&mut kept);
        pool.share(&mut dropped);
        drop(dropped);
        pool.prune();
        assert_eq!(pool.len(), 1);
        let mut again = user("kept");
        pool.share(&mut again);
        assert!(Arc::ptr_eq(&kept, &again));
    }
}
