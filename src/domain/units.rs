//! libvirt's memory units (`unit='…'` on `<memory>`, `<currentMemory>` and friends).
//!
//! libvirt accepts decimal (`KB`, `MB`, …) and binary (`k`, `KiB`, `M`, `MiB`, …) units and
//! defaults to KiB when `unit` is absent; a document may use any of them, so Vireo reads them all
//! and keeps whatever unit the user wrote.

/// A memory unit with its size in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemUnit {
    /// The spelling used in the document (`KiB`, `M`, `bytes`, …).
    pub name: &'static str,
    pub bytes: u64,
}

const K: u64 = 1024;
const UNITS: &[(&[&str], u64)] = &[
    (&["b", "bytes"], 1),
    (&["KB"], 1000),
    (&["k", "KiB"], K),
    (&["MB"], 1000 * 1000),
    (&["M", "MiB"], K * K),
    (&["GB"], 1000 * 1000 * 1000),
    (&["G", "GiB"], K * K * K),
    (&["TB"], 1000u64.pow(4)),
    (&["T", "TiB"], K.pow(4)),
    (&["PB"], 1000u64.pow(5)),
    (&["P", "PiB"], K.pow(5)),
    (&["EB"], 1000u64.pow(6)),
    (&["E", "EiB"], K.pow(6)),
];

impl MemUnit {
    pub const KIB: MemUnit = MemUnit {
        name: "KiB",
        bytes: K,
    };
    pub const MIB: MemUnit = MemUnit {
        name: "MiB",
        bytes: K * K,
    };

    /// Looks a unit up by any of libvirt's spellings (case-sensitive like libvirt, except that
    /// the single letters are accepted in both cases as libvirt does).
    pub fn parse(name: &str) -> Option<MemUnit> {
        UNITS.iter().find_map(|(names, bytes)| {
            names
                .iter()
                .find(|n| **n == name || (n.len() == 1 && n.eq_ignore_ascii_case(name)))
                .map(|n| MemUnit {
                    name: n,
                    bytes: *bytes,
                })
        })
    }

    /// Every accepted spelling, for error messages.
    pub fn all_names() -> String {
        UNITS
            .iter()
            .flat_map(|(names, _)| names.iter().copied())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// An amount of memory as written in the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Memory {
    pub amount: u64,
    pub unit: MemUnit,
}

impl Memory {
    pub fn kib(amount: u64) -> Memory {
        Memory {
            amount,
            unit: MemUnit::KIB,
        }
    }

    pub fn mib(amount: u64) -> Memory {
        Memory {
            amount,
            unit: MemUnit::MIB,
        }
    }

    /// The size in bytes, or `None` if it does not fit in 64 bits.
    pub fn bytes(&self) -> Option<u64> {
        self.amount.checked_mul(self.unit.bytes)
    }

    /// The size in KiB, rounded up like libvirt does.
    pub fn to_kib(&self) -> Option<u64> {
        self.bytes().map(|b| b.div_ceil(K))
    }
}

/// Parses a size as virsh's volume verbs take it (`10G`, `512M`, `1T`, `4096`, `10GiB`,
/// `1GB`): a whole number and, optionally, one of libvirt's units (single letters are binary;
/// no unit means bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (number, unit) = text.split_at(digits);
    let amount: u64 = number.parse().map_err(|_| {
        format!("'{text}' is not a size; write a whole number with an optional unit: 10G, 512M, 1T, 4096")
    })?;
    let unit = if unit.is_empty() {
        MemUnit::parse("b").expect("bytes are a unit")
    } else {
        MemUnit::parse(unit).ok_or_else(|| {
            format!(
                "'{text}': '{unit}' is not a unit libvirt knows (known: {})",
                MemUnit::all_names()
            )
        })?
    };
    Memory { amount, unit }
        .bytes()
        .ok_or_else(|| format!("'{text}' is more than 2^64 bytes; give a smaller size"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_virsh() {
        for (text, bytes) in [
            ("10G", 10u64 << 30),
            ("512M", 512 << 20),
            ("512m", 512 << 20),
            ("1T", 1 << 40),
            ("4096", 4096),
            ("1GB", 1_000_000_000),
            ("2GiB", 2 << 30),
            ("7b", 7),
        ] {
            assert_eq!(parse_size(text), Ok(bytes), "{text}");
        }
        for bad in ["", "G", "1.5G", "-1G", "10Q", "10 GiBs"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert!(parse_size("20E").unwrap_err().contains("2^64"));
        assert!(parse_size("10Q").unwrap_err().contains("'Q' is not a unit"));
    }

    #[test]
    fn every_libvirt_unit_is_known() {
        let cases = [
            ("b", 1),
            ("bytes", 1),
            ("KB", 1000),
            ("k", 1024),
            ("K", 1024),
            ("KiB", 1024),
            ("MB", 1_000_000),
            ("M", 1 << 20),
            ("MiB", 1 << 20),
            ("GB", 1_000_000_000),
            ("G", 1 << 30),
            ("GiB", 1 << 30),
            ("TiB", 1 << 40),
            ("PiB", 1 << 50),
            ("EiB", 1 << 60),
            ("EB", 1_000_000_000_000_000_000),
        ];
        for (name, bytes) in cases {
            assert_eq!(MemUnit::parse(name).map(|u| u.bytes), Some(bytes), "{name}");
        }
        assert_eq!(MemUnit::parse("KiBs"), None);
        assert_eq!(MemUnit::parse("mib"), None);
    }

    #[test]
    fn conversions_round_up_and_detect_overflow() {
        let m = Memory {
            amount: 1500,
            unit: MemUnit::parse("b").unwrap(),
        };
        assert_eq!(m.to_kib(), Some(2));
        let huge = Memory {
            amount: 100,
            unit: MemUnit::parse("EiB").unwrap(),
        };
        assert_eq!(huge.bytes(), None);
    }
}
