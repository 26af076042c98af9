//! Kept entries by stable id. The id is the entry's own (a user's is in its shared record), so the
//! table holds no second copy of it: with a million users that copy alone would be tens of MiB.

use std::hash::BuildHasher;

use hashbrown::DefaultHashBuilder;
use hashbrown::hash_table::{Entry, HashTable};

use super::Keyed;

#[derive(Clone, Debug)]
pub struct ById<T> {
    table: HashTable<T>,
    hasher: DefaultHashBuilder,
}

impl<T> Default for ById<T> {
    fn default() -> Self {
        ById {
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<T: Keyed> ById<T> {
    fn hash(&self, id: &str) -> u64 {
        self.hasher.hash_one(id)
    }

    pub fn get(&self, id: &str) -> Option<&T> {
        self.table.find(self.hash(id), |item| item.id() == id)
    }

    /// The entry of `id`, to change in place; its id must stay as it is.
    pub fn get_mut(&mut self, id: &str) -> Option<&mut T> {
        let hash = self.hash(id);
        self.table.find_mut(hash, |item| item.id() == id)
    }

    pub fn contains_key(&self, id: &str) -> bool {
        self.get(id).is_some()
    }

    /// Puts `item` in place of the entry of its id, if there is one.
    pub fn insert(&mut self, item: T) {
        let hasher = &self.hasher;
        let hash = hasher.hash_one(item.id());
        match self.table.entry(
            hash,
            |kept| kept.id() == item.id(),
            |kept| hasher.hash_one(kept.id()),
        ) {
            Entry::Occupied(mut kept) => *kept.get_mut() = item,
            Entry::Vacant(slot) => {
                slot.insert(item);
            }
        }
    }

    pub fn remove(&mut self, id: &str) -> Option<T> {
        let hash = self.hash(id);
        match self.table.find_entry(hash, |item| item.id() == id) {
            Ok(entry) => Some(entry.remove().0),
            Err(_) => None,
        }
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.table.iter().map(Keyed::id)
    }
}

impl<T> ById<T> {
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.table.iter()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.table.iter_mut()
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

impl<T: Keyed> FromIterator<T> for ById<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let items = items.into_iter();
        let mut by_id = ById {
            table: HashTable::with_capacity(items.size_hint().0),
            hasher: DefaultHashBuilder::default(),
        };
        for item in items {
            by_id.insert(item);
        }
        by_id
    }
}

impl<T: Keyed> std::ops::Index<&str> for ById<T> {
    type Output = T;

    fn index(&self, id: &str) -> &T {
        match self.get(id) {
            Some(item) => item,
            None => panic!("no entry of id {id:?}"),
        }
    }
}
