//! Translation completeness: every string the GUI passes to gettext is in po/vireo.pot, every
//! file with such strings is listed in po/POTFILES.in, and each language in po/LINGUAS
//! translates every entry. Run `tools/update-po` after adding strings.

use std::collections::BTreeSet;
use std::path::Path;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// The msgids of a .po/.pot file (multi-line ids joined), without the header's empty id.
fn msgids(po: &str) -> Vec<(String, String)> {
    let mut entries = Vec::new();
    let mut id = None::<String>;
    let mut text = String::new();
    let mut in_str = false;
    let unquote = |line: &str| -> String {
        line.trim()
            .trim_start_matches('"')
            .trim_end_matches('"')
            .replace("\\\"", "\"")
            .replace("\\n", "\n")
    };
    for line in po.lines().chain(std::iter::once("")) {
        if let Some(rest) = line.strip_prefix("msgid ") {
            id = None;
            text = unquote(rest);
            in_str = false;
        } else if line.starts_with("msgid_plural ") {
            // A plural entry is known by its singular msgid.
        } else if let Some(rest) = line
            .strip_prefix("msgstr ")
            .or_else(|| line.strip_prefix("msgstr[0] "))
        {
            id = Some(std::mem::take(&mut text));
            text = unquote(rest);
            in_str = true;
        } else if line.starts_with("msgstr[") {
            // The other plural forms (msgfmt --check checks them); the first one stands for all.
        } else if line.starts_with('"') {
            text.push_str(&unquote(line));
        } else if in_str {
            if let Some(id) = id.take().filter(|id| !id.is_empty()) {
                entries.push((id, std::mem::take(&mut text)));
            }
            in_str = false;
        }
    }
    entries
}

/// `gettext("…")` literals in a Rust source file.
fn gettext_literals(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = source;
    while let Some(pos) = rest.find("gettext(") {
        rest = &rest[pos + "gettext(".len()..];
        let trimmed = rest.trim_start();
        if let Some(body) = trimmed.strip_prefix('"') {
            let end = body.find('"').expect("string literal ends");
            found.push(body[..end].replace("\\\"", "\""));
        }
    }
    found
}

fn rust_files_with_gettext(dir: &Path, out: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            rust_files_with_gettext(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            if !gettext_literals(&text).is_empty() {
                let rel = path
                    .strip_prefix(ROOT)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                out.insert(rel);
            }
        }
    }
}

#[test]
fn potfiles_lists_every_source_with_strings() {
    let potfiles = std::fs::read_to_string(Path::new(ROOT).join("po/POTFILES.in")).unwrap();
    let listed: BTreeSet<String> = potfiles
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let mut needed = BTreeSet::new();
    rust_files_with_gettext(&Path::new(ROOT).join("src"), &mut needed);
    let missing: Vec<_> = needed.difference(&listed).collect();
    assert!(missing.is_empty(), "add to po/POTFILES.in: {missing:?}");
}

#[test]
fn template_holds_every_gettext_string() {
    let pot = std::fs::read_to_string(Path::new(ROOT).join("po/vireo.pot")).unwrap();
    let ids: BTreeSet<String> = msgids(&pot).into_iter().map(|(id, _)| id).collect();
    let mut files = BTreeSet::new();
    rust_files_with_gettext(&Path::new(ROOT).join("src"), &mut files);
    let mut missing = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(Path::new(ROOT).join(&file)).unwrap();
        for literal in gettext_literals(&text) {
            if !ids.contains(&literal) {
                missing.push(format!("{file}: {literal:?}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "run tools/update-po; missing from po/vireo.pot: {missing:#?}"
    );
}

#[test]
fn every_language_translates_every_string() {
    let pot = std::fs::read_to_string(Path::new(ROOT).join("po/vireo.pot")).unwrap();
    let ids: BTreeSet<String> = msgids(&pot).into_iter().map(|(id, _)| id).collect();
    assert!(ids.len() > 10, "the template looks empty");
    let linguas = std::fs::read_to_string(Path::new(ROOT).join("po/LINGUAS")).unwrap();
    for lang in linguas.split_whitespace().filter(|l| !l.starts_with('#')) {
        let po = std::fs::read_to_string(Path::new(ROOT).join(format!("po/{lang}.po"))).unwrap();
        assert!(!po.contains("#, fuzzy"), "po/{lang}.po has fuzzy entries");
        let translated: BTreeSet<String> = msgids(&po)
            .into_iter()
            .filter(|(_, s)| !s.is_empty())
            .map(|(id, _)| id)
            .collect();
        let untranslated: Vec<_> = ids.difference(&translated).collect();
        assert!(
            untranslated.is_empty(),
            "po/{lang}.po lacks translations for {untranslated:#?}"
        );
    }
}

#[test]
fn parser_sees_multiline_entries() {
    let po = "msgid \"\"\nmsgstr \"header\"\n\nmsgid \"\"\n\"a \"\n\"b\"\nmsgstr \"c\"\n";
    assert_eq!(msgids(po), vec![("a b".to_owned(), "c".to_owned())]);
}
