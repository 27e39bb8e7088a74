//! libvirt's cpuset syntax: `0-3,^2,6` → host CPUs 0, 1, 3, 6.

/// Parses a cpuset; `Err` names the bad part.
pub fn parse_cpuset(text: &str) -> Result<Vec<usize>, String> {
    let mut cpus = std::collections::BTreeSet::new();
    let mut excluded = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (negate, range) = match part.strip_prefix('^') {
            Some(rest) => (true, rest),
            None => (false, part),
        };
        let bad = || format!("bad cpuset element '{part}' in '{text}'");
        let (lo, hi) = match range.split_once('-') {
            Some((a, b)) => (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?),
            None => {
                let n: usize = range.parse().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo > hi {
            return Err(bad());
        }
        if negate {
            excluded.extend(lo..=hi);
        } else {
            cpus.extend(lo..=hi);
        }
    }
    for cpu in excluded {
        cpus.remove(&cpu);
    }
    if cpus.is_empty() {
        return Err(format!("cpuset '{text}' selects no CPU"));
    }
    Ok(cpus.into_iter().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_exclusions_and_singles() {
        assert_eq!(parse_cpuset("0-3,^2,6").unwrap(), vec![0, 1, 3, 6]);
        assert!(parse_cpuset("3-1").is_err());
        assert!(parse_cpuset("^0").is_err());
        assert!(parse_cpuset("x").unwrap_err().contains("'x'"));
    }
}
