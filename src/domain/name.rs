//! The one rule for domain names. A name becomes file names (`<name>.xml` in the store,
//! `<name>.sock`, `<name>.xml` and `<name>.exit` in the runtime directory), so every path that
//! builds one — `define`, `create`, `start`, the runner, engine config preparation — checks it
//! here first, and nothing can escape its directory or hit the file system's name limit.

/// The longest name accepted, in bytes: with `.sock` appended it stays far below the 255-byte
/// file-name limit and a socket path stays usable.
pub const MAX_NAME_BYTES: usize = 200;

/// A name that cannot be used, with the rule it breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("domain name '{shown}' cannot be used: {rule}")]
pub struct NameError {
    /// The name as given.
    pub name: String,
    /// The name as printed (control characters escaped).
    shown: String,
    /// What the name must (not) be.
    pub rule: &'static str,
}

/// Checks `name` against the rule; the error names the name and the rule it breaks.
pub fn check(name: &str) -> Result<(), NameError> {
    let rule = if name.is_empty() {
        Some("a name must not be empty")
    } else if name.contains('/') {
        Some("a name must not contain '/'")
    } else if name.contains('\0') {
        Some("a name must not contain NUL")
    } else if name.contains("..") {
        Some("a name must not contain '..'")
    } else if name.starts_with('.') {
        Some("a name must not start with '.'")
    } else if name.len() > MAX_NAME_BYTES {
        Some("a name must be at most 200 bytes long")
    } else if name.trim() != name {
        Some("a name must not start or end with spaces")
    } else {
        None
    };
    match rule {
        None => Ok(()),
        Some(rule) => Err(NameError {
            name: name.to_string(),
            shown: name.escape_debug().to_string(),
            rule,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_pass() {
        for name in ["vm", "debian-12", "a.b", "x_y", "Ünïcode", &"n".repeat(200)] {
            assert_eq!(check(name), Ok(()), "{name}");
        }
    }

    #[test]
    fn each_rule_is_named() {
        let cases = [
            ("", "empty"),
            ("../../x", "'/'"),
            ("a/b", "'/'"),
            ("a\0b", "NUL"),
            ("..", "'..'"),
            ("a..b", "'..'"),
            (".hidden", "start with '.'"),
            (" vm", "spaces"),
        ];
        for (name, rule) in cases {
            let err = check(name).unwrap_err();
            assert!(err.rule.contains(rule), "{name:?}: {}", err.rule);
            assert!(err.to_string().contains(&name.escape_debug().to_string()));
        }
        let long = "n".repeat(300);
        let err = check(&long).unwrap_err();
        assert!(err.to_string().contains("at most 200 bytes"), "{err}");
        assert!(err.to_string().contains(&long));
    }
}
