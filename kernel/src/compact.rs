//! Small collections sized for session state: most sessions hold a handful of ids, and a Vec's
//! default growth (room for four) or a hash set's table would cost more than the ids themselves.

use crate::Set;

/// A set of ids: a list, exactly sized, searched linearly while small; a hash set once large.
#[derive(Clone, Debug, PartialEq)]
pub enum IdSet {
    Small(Box<[Box<str>]>),
    Large(Box<Set<Box<str>>>),
}

const LARGE_FROM: usize = 32;

impl Default for IdSet {
    fn default() -> Self {
        IdSet::Small(Box::default())
    }
}

impl IdSet {
    pub fn contains(&self, id: &str) -> bool {
        match self {
            IdSet::Small(ids) => ids.iter().any(|v| &**v == id),
            IdSet::Large(ids) => ids.contains(id),
        }
    }

    /// Add an id (callers add each id once: it is not checked again here).
    pub fn insert_new(&mut self, id: &str) {
        match self {
            IdSet::Small(ids) if ids.len() < LARGE_FROM => {
                let mut grown = Vec::with_capacity(ids.len() + 1);
                grown.extend(std::mem::take(ids).into_vec());
                grown.push(id.into());
                *ids = grown.into_boxed_slice();
            }
            IdSet::Small(ids) => {
                let mut set: Set<Box<str>> = std::mem::take(ids).into_vec().into_iter().collect();
                set.insert(id.into());
                *self = IdSet::Large(Box::new(set));
            }
            IdSet::Large(ids) => {
                ids.insert(id.into());
            }
        }
    }

    pub fn iter(&self) -> Box<dyn Iterator<Item = &str> + '_> {
        match self {
            IdSet::Small(ids) => Box::new(ids.iter().map(|v| &**v)),
            IdSet::Large(ids) => Box::new(ids.iter().map(|v| &**v)),
        }
    }

    pub fn from_ids(ids: Vec<Box<str>>) -> IdSet {
        let mut set = IdSet::default();
        for id in ids {
            if !set.contains(&id) {
                set.insert_new(&id);
            }
        }
        set
    }
}

/// A short list that grows one exact step at a time.
pub fn push_exact<T>(items: &mut Vec<T>, item: T) {
    if items.len() == items.capacity() {
        items.reserve_exact(1);
    }
    items.push(item);
}

#[cfg(test)]
mod tests {
    use super::IdSet;

    #[test]
    fn grows_from_a_list_to_a_set() {
        let mut set = IdSet::default();
        for i in 0..40 {
            assert!(!set.contains(&format!("e{i}")));
            set.insert_new(&format!("e{i}"));
            assert!(set.contains(&format!("e{i}")));
        }
        assert!(matches!(set, IdSet::Large(_)));
        assert_eq!(set.iter().count(), 40);
        assert_eq!(IdSet::from_ids(vec!["a".into(), "a".into()]).iter().count(), 1);
    }
}
