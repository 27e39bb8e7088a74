//! CPU model performance: map load, CPUID decode, baseline of many CPUs.
//!
//! Inputs are Vireo's own dumps (tests/data) and CPUs built from the map, so the bench runs
//! without libvirt's oracle data.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use vireo::cpu::{
    BaselineFlags, CpuDef, CpuFeatureRef, CpuKind, CpuMap, CpuidData, baseline, decode_guest,
    decode_host,
};

fn dump(name: &str) -> CpuidData {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    CpuidData::from_xml(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// `n` Intel host CPUs of assorted models, each with a few extra features.
fn intel_hosts(map: &CpuMap, n: usize) -> Vec<CpuDef> {
    let models = [
        "Skylake-Client",
        "Haswell",
        "Broadwell",
        "Cascadelake-Server",
        "Icelake-Server",
        "SandyBridge",
    ];
    let extras = ["vmx", "ss", "ht", "tm2", "est", "pdcm", "invtsc", "pdpe1gb"];
    (0..n)
        .map(|i| {
            let mut cpu = CpuDef::new(CpuKind::Host);
            cpu.arch = Some("x86_64".into());
            cpu.vendor = Some("Intel".into());
            cpu.model = Some(models[i % models.len()].into());
            assert!(map.model(models[i % models.len()]).is_some());
            cpu.features = extras
                .iter()
                .skip(i % 3)
                .map(|name| CpuFeatureRef {
                    name: name.to_string(),
                    policy: None,
                })
                .collect();
            cpu
        })
        .collect()
}

fn benches(c: &mut Criterion) {
    c.bench_function("map_load_builtin", |b| {
        b.iter(|| black_box(CpuMap::builtin().unwrap()))
    });

    let map = CpuMap::builtin().unwrap();
    let host = dump("pvm-amd-epyc-milan-host.xml");
    let kvm = dump("pvm-amd-epyc-milan-kvm.xml");
    let text = std::fs::read_to_string(format!(
        "{}/tests/data/pvm-amd-epyc-milan-host.xml",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    c.bench_function("cpudata_parse", |b| {
        b.iter(|| black_box(CpuidData::from_xml(&text).unwrap()))
    });
    c.bench_function("decode_host", |b| {
        b.iter(|| black_box(decode_host(&map, &host).unwrap()))
    });
    c.bench_function("decode_guest_kvm", |b| {
        b.iter(|| black_box(decode_guest(&map, &kvm).unwrap()))
    });

    for n in [2, 10, 100] {
        let cpus = intel_hosts(&map, n);
        c.bench_function(&format!("baseline_{n}"), |b| {
            b.iter(|| black_box(baseline(&map, &cpus, BaselineFlags::default()).unwrap()))
        });
    }
}

criterion_group!(cpu, benches);
criterion_main!(cpu);
