use super::*;

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vireo-cpumap-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn builtin_map_has_every_libvirt_model_and_feature() {
    let map = CpuMap::builtin().unwrap();
    assert_eq!(map.models().count(), 150);
    assert_eq!(map.features().len(), 364);
    assert_eq!(map.vendors().len(), 3);
    assert_eq!(map.models().next().unwrap().name(), "486");
}

#[test]
fn aliases_resolve_to_canonical_features() {
    let map = CpuMap::builtin().unwrap();
    assert_eq!(map.feature("sse3").unwrap().name(), "pni");
    assert_eq!(map.feature("sse4_1").unwrap().name(), "sse4.1");
    assert!(!map.feature("invtsc").unwrap().migratable());
    assert_eq!(
        map.feature("pni").unwrap().bit(),
        FeatureBit::Cpuid {
            leaf: 1,
            subleaf: 0,
            register: Register::Ecx,
            bit: 0
        }
    );
    assert_eq!(
        map.feature("rdctl-no").unwrap().bit(),
        FeatureBit::Msr {
            index: 0x10a,
            bit: 0
        }
    );
}

#[test]
fn versions_inherit_their_parent() {
    let map = CpuMap::builtin().unwrap();
    let v1 = map.model("Haswell-v1").unwrap();
    assert_eq!(v1.parent(), Some("Haswell"));
    assert_eq!(v1.vendor(), Some("Intel"));
    assert_eq!(v1.features(), map.model("Haswell").unwrap().features());
    assert!(v1.decode_host() && !v1.decode_guest());
    assert!(
        map.model("Skylake-Client")
            .unwrap()
            .removed_features()
            .contains(&"mpx".to_string())
    );
    assert!(
        !map.model("Skylake-Client")
            .unwrap()
            .features()
            .contains(&"mpx".to_string())
    );
    assert!(
        map.model("Haswell")
            .unwrap()
            .added_features()
            .contains(&"vmx-ept".to_string())
    );
    assert!(
        !map.model("Haswell")
            .unwrap()
            .features()
            .contains(&"vmx-ept".to_string())
    );
}

#[test]
fn overlay_adds_and_replaces_models() {
    let dir = temp_dir("overlay");
    std::fs::write(
        dir.join("features.map"),
        "myfeat cpuid 0x40000001 eax 3 alias=my-feat\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("custom.map"),
        "model Tiny\n  alias tiny\n  vendor Intel\n  features fpu my-feat\n\nmodel qemu64\n  features fpu\n",
    )
    .unwrap();
    let map = CpuMap::load_with_overlay(&dir).unwrap();
    let tiny = map.model("tiny").unwrap();
    assert_eq!(tiny.name(), "Tiny");
    assert_eq!(tiny.features(), ["fpu", "myfeat"]);
    assert_eq!(map.model("qemu64").unwrap().features(), ["fpu"]);
    assert_eq!(map.models().count(), 151);
    assert_eq!(map.models().last().unwrap().name(), "Tiny");
}

#[test]
fn malformed_overlay_names_file_line_and_problem() {
    let dir = temp_dir("bad");
    std::fs::write(
        dir.join("bad.map"),
        "# comment\nmodel X\n  features fpu nosuchfeature\n",
    )
    .unwrap();
    let err = CpuMap::load_with_overlay(&dir).unwrap_err().to_string();
    assert!(err.contains("bad.map:3:"), "{err}");
    assert!(err.contains("unknown feature `nosuchfeature`"), "{err}");

    std::fs::write(dir.join("bad.map"), "  vendor Intel\n").unwrap();
    let err = CpuMap::load_with_overlay(&dir).unwrap_err().to_string();
    assert!(
        err.contains("bad.map:1:") && err.contains("outside a `model` block"),
        "{err}"
    );

    std::fs::write(dir.join("bad.map"), "").unwrap();
    std::fs::write(dir.join("features.map"), "f cpuid 0x1 exx 3\n").unwrap();
    let err = CpuMap::load_with_overlay(&dir).unwrap_err().to_string();
    assert!(
        err.contains("features.map:1:") && err.contains("unknown register"),
        "{err}"
    );
}

/// The partial loads start uses give every model and feature exactly the whole map's facts, so
/// the same XML resolves to the same CPUID table whichever load read it.
#[test]
fn partial_loads_agree_with_the_whole_map() {
    use crate::cpu::guest::CpuCatalog;
    let full = CpuMap::builtin().unwrap();
    let features_only = CpuMap::builtin_subset(|_, _| false).unwrap();
    assert_eq!(features_only.models().count(), 0);
    assert_eq!(
        CpuCatalog::feature_names(&features_only),
        CpuCatalog::feature_names(&full)
    );
    for f in full.features() {
        let other = features_only.feature(f.name()).unwrap();
        assert_eq!((other.bit(), other.aliases()), (f.bit(), f.aliases()));
    }
    let mut names: Vec<&str> = full.models().map(|m| m.name()).collect();
    names.extend(
        full.models()
            .flat_map(|m| m.aliases().iter().map(String::as_str)),
    );
    for name in names {
        let subset = CpuMap::builtin_for_model(name)
            .unwrap_or_else(|| panic!("no single model file defines {name}"));
        assert!(
            subset.models().count() < full.models().count(),
            "{name}: loaded every model"
        );
        assert_eq!(
            CpuCatalog::model(&subset, name),
            CpuCatalog::model(&full, name),
            "{name}"
        );
        assert_eq!(
            CpuCatalog::feature_names(&subset),
            CpuCatalog::feature_names(&full)
        );
    }
    assert!(CpuMap::builtin_for_model("NoSuchModel").is_none());
}
