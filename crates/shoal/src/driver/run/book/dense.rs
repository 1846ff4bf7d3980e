//! Values keyed by small dense numbers: attempt ids (the scheduler hands
//! them out from 0, one per launch) and task numbers. A vector indexed by
//! the key, not a tree: at tens of thousands of tasks a second, every
//! report looks its attempt up several times.

/// A map from `u32` keys that start at 0 and stay dense.
#[derive(Debug)]
pub struct Dense<T> {
    slots: Vec<Option<T>>,
    len: usize,
}

impl<T> Default for Dense<T> {
    fn default() -> Self {
        Dense { slots: Vec::new(), len: 0 }
    }
}

impl<T> Dense<T> {
    pub fn with_capacity(n: usize) -> Self {
        Dense { slots: Vec::with_capacity(n), len: 0 }
    }

    /// Sets the value of `key`; returns the one it replaces.
    pub fn insert(&mut self, key: u32, value: T) -> Option<T> {
        let i = key as usize;
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        let old = self.slots[i].replace(value);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub fn get(&self, key: &u32) -> Option<&T> {
        self.slots.get(*key as usize)?.as_ref()
    }

    pub fn get_mut(&mut self, key: &u32) -> Option<&mut T> {
        self.slots.get_mut(*key as usize)?.as_mut()
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keys and values, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, v)| Some((i as u32, v.as_ref()?)))
    }

    /// Values in key order.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().flatten()
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn behaves_as_an_ordered_map_of_its_keys() {
        let mut d = Dense::default();
        assert!(d.is_empty());
        assert_eq!(d.insert(3, "c"), None);
        assert_eq!(d.insert(0, "a"), None);
        assert_eq!(d.insert(3, "C"), Some("c"));
        assert_eq!(d.len(), 2);
        assert_eq!(d.get(&3), Some(&"C"));
        assert_eq!(d.get(&1), None);
        assert_eq!(d.get(&99), None);
        *d.get_mut(&0).unwrap() = "A";
        assert_eq!(d.iter().collect::<Vec<_>>(), vec![(0, &"A"), (3, &"C")]);
        assert_eq!(d.values().copied().collect::<Vec<_>>(), vec!["A", "C"]);
        d.values_mut().for_each(|v| *v = "x");
        assert_eq!(d.values().copied().collect::<Vec<_>>(), vec!["x", "x"]);
    }
}
