//! Every document libvirt itself formats (../shared/oracle/domains) survives define → dumpxml.

use vireo::domain::DomainStore;
use vireo::domain::canon::canonicalize;

mod require_env;
use require_env::skip_or_fail;

#[test]
fn oracle_domains_round_trip_through_the_store() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/oracle/domains");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return skip_or_fail(format!(
            "{dir} is absent (the libvirt oracle is not on this machine)"
        ));
    };
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    let tmp = tempfile::tempdir().unwrap();
    let mut failures = Vec::new();
    let mut passed = 0;
    let mut byte_identical = 0;
    for (i, file) in files.iter().enumerate() {
        // One store per document: the oracle reuses names and UUIDs across files.
        let store = DomainStore::open_at(tmp.path().join(i.to_string())).unwrap();
        let original = std::fs::read_to_string(file).unwrap();
        let outcome = store.define(&original).and_then(|d| store.get(&d.name));
        match outcome {
            Err(e) => failures.push(format!("{}: define failed: {e}", file.display())),
            Ok(stored) => {
                let dumped = std::fs::read_to_string(&stored.path).unwrap();
                assert_eq!(dumped, stored.domain.to_xml());
                if canonicalize(&dumped).unwrap() == canonicalize(&original).unwrap() {
                    passed += 1;
                    byte_identical += usize::from(dumped == original);
                } else {
                    failures.push(format!("{}: differs after round trip", file.display()));
                }
            }
        }
    }
    eprintln!(
        "oracle round trip: {passed}/{} identical after canonicalization ({byte_identical} \
         byte-identical)",
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(passed > 0);
}
