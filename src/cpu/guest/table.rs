//! A guest CPUID table in the shape KVM takes it (KVM_SET_CPUID2): one entry per leaf/subleaf,
//! each saying whether its subleaf number matters.

/// One CPUID leaf (and subleaf) as the guest will read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GuestCpuidEntry {
    /// The leaf (EAX on input).
    pub leaf: u32,
    /// The subleaf (ECX on input); ignored by the CPU unless `index_significant`.
    pub subleaf: u32,
    /// Whether ECX selects between several entries of this leaf (leaves 4, 7, 0xB, 0xD, …).
    pub index_significant: bool,
    /// Output registers.
    pub eax: u32,
    /// Output EBX.
    pub ebx: u32,
    /// Output ECX.
    pub ecx: u32,
    /// Output EDX.
    pub edx: u32,
}

impl GuestCpuidEntry {
    /// An all-zero entry for `leaf`/`subleaf`.
    pub fn zeroed(leaf: u32, subleaf: u32, index_significant: bool) -> Self {
        Self {
            leaf,
            subleaf,
            index_significant,
            eax: 0,
            ebx: 0,
            ecx: 0,
            edx: 0,
        }
    }
}

/// The four output registers of a CPUID entry, used to name where a feature bit lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CpuidRegister {
    /// EAX.
    Eax,
    /// EBX.
    Ebx,
    /// ECX.
    Ecx,
    /// EDX.
    Edx,
}

impl GuestCpuidEntry {
    /// The value of one output register.
    pub fn reg(&self, reg: CpuidRegister) -> u32 {
        match reg {
            CpuidRegister::Eax => self.eax,
            CpuidRegister::Ebx => self.ebx,
            CpuidRegister::Ecx => self.ecx,
            CpuidRegister::Edx => self.edx,
        }
    }

    /// A mutable reference to one output register.
    pub fn reg_mut(&mut self, reg: CpuidRegister) -> &mut u32 {
        match reg {
            CpuidRegister::Eax => &mut self.eax,
            CpuidRegister::Ebx => &mut self.ebx,
            CpuidRegister::Ecx => &mut self.ecx,
            CpuidRegister::Edx => &mut self.edx,
        }
    }
}

/// A whole guest CPUID table, kept sorted by (leaf, subleaf) so that equal tables compare equal
/// and print identically.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct GuestCpuid {
    entries: Vec<GuestCpuidEntry>,
}

impl GuestCpuid {
    /// A table holding `entries` (sorted; a later duplicate of a leaf/subleaf replaces an earlier).
    pub fn from_entries(entries: impl IntoIterator<Item = GuestCpuidEntry>) -> Self {
        let mut table = Self::default();
        for entry in entries {
            table.set(entry);
        }
        table
    }

    /// All entries in (leaf, subleaf) order.
    pub fn entries(&self) -> &[GuestCpuidEntry] {
        &self.entries
    }

    /// The entry for `leaf`/`subleaf`. For a leaf whose subleaf does not matter, any subleaf
    /// finds it, as on real hardware.
    pub fn get(&self, leaf: u32, subleaf: u32) -> Option<&GuestCpuidEntry> {
        self.entries
            .iter()
            .find(|e| e.leaf == leaf && (!e.index_significant || e.subleaf == subleaf))
    }

    /// Mutable access to the entry for `leaf`/`subleaf` (same lookup rule as [`Self::get`]).
    pub fn get_mut(&mut self, leaf: u32, subleaf: u32) -> Option<&mut GuestCpuidEntry> {
        self.entries
            .iter_mut()
            .find(|e| e.leaf == leaf && (!e.index_significant || e.subleaf == subleaf))
    }

    /// Inserts `entry`, replacing any entry with the same leaf and subleaf.
    pub fn set(&mut self, entry: GuestCpuidEntry) {
        let key = (entry.leaf, entry.subleaf);
        match self
            .entries
            .binary_search_by_key(&key, |e| (e.leaf, e.subleaf))
        {
            Ok(at) => self.entries[at] = entry,
            Err(at) => self.entries.insert(at, entry),
        }
    }

    /// Removes every subleaf of `leaf`.
    pub fn remove_leaf(&mut self, leaf: u32) {
        self.entries.retain(|e| e.leaf != leaf);
    }

    /// The CPU vendor string from leaf 0 (e.g. `GenuineIntel`, `AuthenticAMD`), if present.
    pub fn vendor(&self) -> Option<String> {
        let leaf0 = self.get(0, 0)?;
        let mut bytes = Vec::with_capacity(12);
        for reg in [leaf0.ebx, leaf0.edx, leaf0.ecx] {
            bytes.extend_from_slice(&reg.to_le_bytes());
        }
        Some(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Whether leaf 0 names an AMD (or Hygon, its licensee) CPU, which reads topology from the
    /// 0x8000_00xx leaves rather than Intel's.
    pub fn is_amd_like(&self) -> bool {
        matches!(
            self.vendor().as_deref(),
            Some("AuthenticAMD") | Some("HygonGenuine")
        )
    }

    /// Whether bit `bit` of `reg` in `leaf`/`subleaf` is set.
    pub fn bit(&self, leaf: u32, subleaf: u32, reg: CpuidRegister, bit: u8) -> bool {
        self.get(leaf, subleaf)
            .is_some_and(|e| e.reg(reg) & (1 << bit) != 0)
    }

    /// Sets or clears bit `bit` of `reg` in `leaf`/`subleaf`, creating the entry when setting a
    /// bit of a leaf the table lacks.
    pub fn set_bit(&mut self, leaf: u32, subleaf: u32, reg: CpuidRegister, bit: u8, on: bool) {
        if self.get(leaf, subleaf).is_none() {
            if !on {
                return;
            }
            self.set(GuestCpuidEntry::zeroed(leaf, subleaf, subleaf != 0));
        }
        if let Some(entry) = self.get_mut(leaf, subleaf) {
            let value = entry.reg_mut(reg);
            if on {
                *value |= 1 << bit;
            } else {
                *value &= !(1 << bit);
            }
        }
    }

    /// Raises the highest basic (leaf 0 EAX) or extended (0x8000_0000 EAX) leaf to cover `leaf`.
    pub fn ensure_max_leaf(&mut self, leaf: u32) {
        let range = leaf & 0x8000_0000;
        if let Some(head) = self.get_mut(range, 0)
            && head.eax < leaf
        {
            head.eax = leaf;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_keeps_entries_sorted_and_replaces_duplicates() {
        let mut t = GuestCpuid::default();
        t.set(GuestCpuidEntry::zeroed(7, 0, true));
        t.set(GuestCpuidEntry::zeroed(1, 0, false));
        let mut seven = GuestCpuidEntry::zeroed(7, 0, true);
        seven.ebx = 5;
        t.set(seven);
        let leaves: Vec<_> = t.entries().iter().map(|e| (e.leaf, e.ebx)).collect();
        assert_eq!(leaves, vec![(1, 0), (7, 5)]);
    }

    #[test]
    fn lookup_ignores_subleaf_only_where_it_is_not_significant() {
        let t = GuestCpuid::from_entries([
            GuestCpuidEntry::zeroed(1, 0, false),
            GuestCpuidEntry::zeroed(7, 0, true),
        ]);
        assert!(t.get(1, 3).is_some());
        assert!(t.get(7, 1).is_none());
    }

    #[test]
    fn vendor_reads_ebx_edx_ecx() {
        let mut leaf0 = GuestCpuidEntry::zeroed(0, 0, false);
        leaf0.ebx = u32::from_le_bytes(*b"Auth");
        leaf0.edx = u32::from_le_bytes(*b"enti");
        leaf0.ecx = u32::from_le_bytes(*b"cAMD");
        let t = GuestCpuid::from_entries([leaf0]);
        assert_eq!(t.vendor().as_deref(), Some("AuthenticAMD"));
        assert!(t.is_amd_like());
    }

    #[test]
    fn set_bit_creates_and_clears() {
        let mut t = GuestCpuid::default();
        t.set_bit(7, 0, CpuidRegister::Ebx, 5, true);
        assert!(t.bit(7, 0, CpuidRegister::Ebx, 5));
        t.set_bit(7, 0, CpuidRegister::Ebx, 5, false);
        assert!(!t.bit(7, 0, CpuidRegister::Ebx, 5));
    }
}
