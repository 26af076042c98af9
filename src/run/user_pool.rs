//! One copy of each distinct user record. The same user is listed by every group it belongs to, by
//! the watched UserGroups, by the directory snapshot and by the entries kept between runs; records
//! that are equal share one allocation, so a directory of N users costs N records, not one per
//! place and membership.

use std::hash::BuildHasher;
use std::sync::{Arc, Mutex, MutexGuard};

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::api::GroupUser;

#[derive(Debug, Default)]
pub struct UserPool {
    inner: Mutex<Records>,
}

/// Records found by their directory id: hashing an id is cheap next to hashing a whole record, and
/// the records of one id are few (a user that changed, for as long as the old record is held).
#[derive(Debug, Default)]
struct Records {
    table: HashTable<Arc<GroupUser>>,
    hasher: DefaultHashBuilder,
}

impl UserPool {
    /// Replaces each user with the pool's equal record; a record the pool lacks joins it.
    pub fn share_all<'a>(&self, users: impl IntoIterator<Item = &'a mut Arc<GroupUser>>) {
        let mut records = self.lock();
        for user in users {
            records.share(user);
        }
    }

    /// Forgets the records nothing but the pool holds any more.
    pub fn prune(&self) {
        self.lock().table.retain(|user| Arc::strong_count(user) > 1);
    }

    pub fn len(&self) -> usize {
        self.lock().table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        // A panic while holding the table leaves it consistent: every step is a whole insert or find.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Records {
    fn share(&mut self, user: &mut Arc<GroupUser>) {
        let Records { table, hasher } = self;
        let hash = hasher.hash_one(&user.id);
        // The same allocation is the common case (entries kept from the last run): no comparison.
        match table.find(hash, |pooled| {
            Arc::ptr_eq(pooled, user) || **pooled == **user
        }) {
            Some(pooled) => {
                if !Arc::ptr_eq(pooled, user) {
                    *user = Arc::clone(pooled);
                }
            }
            None => {
                table.insert_unique(hash, Arc::clone(user), |u| hasher.hash_one(&u.id));
            }
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
    fn a_changed_record_of_the_same_user_stays_apart() {
        let pool = UserPool::default();
        let mut old = user("a");
        let mut new = Arc::new(GroupUser {
            email: Some("a@example.org".into()),
            ..(*user("a")).clone()
        });
        pool.share_all([&mut old, &mut new]);
        assert!(!Arc::ptr_eq(&old, &new));
        assert_eq!(pool.len(), 2);
        let mut again = user("a");
        pool.share_all([&mut again]);
        assert!(Arc::ptr_eq(&again, &old));
    }

    #[test]
    fn pruning_forgets_records_nobody_holds() {
        let pool = UserPool::default();
        let mut kept = user("kept");
        let mut dropped = user("dropped");
        pool.share_all([&mut kept]);
        pool.share_all([&mut dropped]);
        drop(dropped);
        pool.prune();
        assert_eq!(pool.len(), 1);
        let mut again = user("kept");
        pool.share_all([&mut again]);
        assert!(Arc::ptr_eq(&kept, &again));
    }
}
