//! A set of CPU features as a bit set over the map's feature indices.
//!
//! Every feature in the map owns exactly one CPUID or MSR bit and no two features share a bit,
//! so set algebra on feature indices is the same as libvirt's algebra on raw CPUID words, and
//! much cheaper: a model, a decoded host or a baseline intersection is a handful of `u64`s.

/// A set of feature indices (positions in [`crate::cpu::CpuMap::features`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct FeatureSet {
    words: Vec<u64>,
}

impl FeatureSet {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, index: usize) {
        let word = index / 64;
        if self.words.len() <= word {
            self.words.resize(word + 1, 0);
        }
        self.words[word] |= 1 << (index % 64);
    }

    pub fn remove(&mut self, index: usize) {
        if let Some(w) = self.words.get_mut(index / 64) {
            *w &= !(1 << (index % 64));
        }
    }

    pub fn contains(&self, index: usize) -> bool {
        self.words
            .get(index / 64)
            .is_some_and(|w| w & (1 << (index % 64)) != 0)
    }

    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|&w| w == 0)
    }

    /// Adds every member of `other`.
    pub fn union_with(&mut self, other: &FeatureSet) {
        if self.words.len() < other.words.len() {
            self.words.resize(other.words.len(), 0);
        }
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a |= b;
        }
    }

    /// Keeps only members also in `other`.
    pub fn intersect_with(&mut self, other: &FeatureSet) {
        for (i, a) in self.words.iter_mut().enumerate() {
            *a &= other.words.get(i).copied().unwrap_or(0);
        }
    }

    /// Removes every member of `other`.
    pub fn subtract(&mut self, other: &FeatureSet) {
        for (a, b) in self.words.iter_mut().zip(&other.words) {
            *a &= !b;
        }
    }

    /// `self - other` as a new set.
    pub fn difference(&self, other: &FeatureSet) -> FeatureSet {
        let mut out = self.clone();
        out.subtract(other);
        out
    }

    pub fn is_subset_of(&self, other: &FeatureSet) -> bool {
        self.difference(other).is_empty()
    }

    /// Member indices in ascending order (= map order).
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(i, &w)| {
            (0..64)
                .filter(move |b| w & (1u64 << b) != 0)
                .map(move |b| i * 64 + b)
        })
    }
}

impl FromIterator<usize> for FeatureSet {
    fn from_iter<T: IntoIterator<Item = usize>>(iter: T) -> Self {
        let mut set = FeatureSet::new();
        for i in iter {
            set.insert(i);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_algebra_matches_sets_of_indices() {
        let a: FeatureSet = [1, 64, 130].into_iter().collect();
        let b: FeatureSet = [1, 2].into_iter().collect();
        assert_eq!(a.iter().collect::<Vec<_>>(), vec![1, 64, 130]);
        let mut u = a.clone();
        u.union_with(&b);
        assert_eq!(u.len(), 4);
        let mut i = a.clone();
        i.intersect_with(&b);
        assert_eq!(i.iter().collect::<Vec<_>>(), vec![1]);
        assert_eq!(a.difference(&b).iter().collect::<Vec<_>>(), vec![64, 130]);
        assert!(i.is_subset_of(&b));
        assert!(!a.is_subset_of(&b));
        let mut r = a;
        r.remove(64);
        assert!(!r.contains(64) && r.contains(130));
    }
}
