//! Host and guest decode of every libvirt CPUID dump, through the library (the CLI runs of the
//! same files are in cpu_cli_oracle.rs).

mod cpu_common;
mod require_env;

use vireo::cpu::{CpuMap, CpuidData, HypervisorModel, decode_guest_for, decode_host};

#[test]
fn every_dump_decodes_like_libvirt() {
    let Some(dir) = cpu_common::oracle_dir() else {
        return;
    };
    let cases = cpu_common::cases(&dir);
    let map = CpuMap::builtin().unwrap();
    let mut failures = Vec::new();
    let all = cases["cpuid_cases"].as_array().unwrap();
    for case in all {
        let name = case["name"].as_str().unwrap();
        let dump = std::fs::read_to_string(cpu_common::cputestdata(&dir, &format!("cpuid-{name}")))
            .unwrap();
        let data = CpuidData::from_xml(&dump).unwrap();
        let host_expected =
            std::fs::read_to_string(cpu_common::cputestdata(&dir, &format!("cpuid-{name}-host")))
                .unwrap();
        let host = decode_host(&map, &data).unwrap().to_xml();
        if host != host_expected {
            failures.push(format!(
                "{name} host:\n--- expected\n{host_expected}--- got\n{host}"
            ));
        }
        let hv: Option<Vec<HypervisorModel>> = case["guest_hv_models"].as_array().map(|list| {
            list.iter()
                .map(|m| HypervisorModel {
                    name: m["name"].as_str().unwrap().to_string(),
                    blockers: m["unavailable_features"]
                        .as_array()
                        .map(|b| b.iter().map(|f| f.as_str().unwrap().to_string()).collect())
                        .unwrap_or_default(),
                })
                .collect()
        });
        let guest_expected = std::fs::read_to_string(cpu_common::cputestdata(
            &dir,
            &format!("cpuid-{name}-guest"),
        ))
        .unwrap();
        let guest = decode_guest_for(&map, &data, hv.as_deref())
            .unwrap()
            .to_xml();
        if guest != guest_expected {
            failures.push(format!(
                "{name} guest:\n--- expected\n{guest_expected}--- got\n{guest}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} decodes differ:\n{}",
        failures.len(),
        all.len() * 2,
        failures.join("\n")
    );
}
