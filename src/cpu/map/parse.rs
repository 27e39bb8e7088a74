//! Reader for Vireo's line-based CPU map format (see `cpu_map/README.md`).
//!
//! Every line is `KEYWORD ARGS…`; `#` starts a comment; indentation only helps the eye.
//! Errors carry the file name and 1-based line so a broken overlay is easy to fix.

use super::{
    CpuFeature, CpuMap, CpuMapError, CpuModel, CpuVendor, FeatureBit, ModelSignature, Register,
};
use crate::cpu::feature_set::FeatureSet;
use std::sync::Arc;

/// Non-empty, comment-stripped lines with their 1-based numbers, split into words.
fn lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let line = line.split('#').next().unwrap_or("");
        let words: Vec<&str> = line.split_whitespace().collect();
        (!words.is_empty()).then_some((i + 1, words))
    })
}

fn error(file: &str, line: usize, message: impl Into<String>) -> CpuMapError {
    CpuMapError::Syntax {
        file: file.to_string(),
        line,
        message: message.into(),
    }
}

fn number(text: &str) -> Option<u32> {
    match text.strip_prefix("0x") {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// The model files `index.map` lists, in order.
pub(super) fn index_entries(file: &str, text: &str) -> Result<Vec<String>, CpuMapError> {
    lines(text)
        .map(|(n, words)| match words.as_slice() {
            ["models", path] => Ok(path.to_string()),
            _ => Err(error(file, n, "expected `models PATH`")),
        })
        .collect()
}

pub(super) fn load_vendors(map: &mut CpuMap, file: &str, text: &str) -> Result<(), CpuMapError> {
    for (n, words) in lines(text) {
        let ["vendor", name, string] = words.as_slice() else {
            return Err(error(file, n, "expected `vendor NAME CPUID-STRING`"));
        };
        if string.len() != 12 || !string.is_ascii() {
            return Err(error(
                file,
                n,
                format!("vendor string {string:?} must be 12 ASCII characters"),
            ));
        }
        let vendor = CpuVendor {
            name: name.to_string(),
            cpuid_string: string.to_string(),
        };
        match map.vendors.iter_mut().find(|v| v.name == *name) {
            Some(existing) => *existing = vendor,
            None => map.vendors.push(vendor),
        }
    }
    Ok(())
}

pub(super) fn load_features(map: &mut CpuMap, file: &str, text: &str) -> Result<(), CpuMapError> {
    for (n, words) in lines(text) {
        let (name, rest) = words
            .split_first()
            .expect("lines() yields non-empty word lists");
        let (bit, extras) =
            parse_bit(rest).map_err(|m| error(file, n, format!("feature {name}: {m}")))?;
        let mut feature = CpuFeature {
            name: name.to_string(),
            aliases: Vec::new(),
            bit,
            migratable: true,
        };
        for extra in extras {
            match extra.split_once('=') {
                Some(("alias", alias)) if !alias.is_empty() => {
                    feature.aliases.push(alias.to_string())
                }
                None if *extra == "nonmigratable" => feature.migratable = false,
                _ => {
                    return Err(error(
                        file,
                        n,
                        format!("feature {name}: unknown attribute `{extra}`"),
                    ));
                }
            }
        }
        if let Some(other) = map
            .features
            .iter()
            .position(|f| f.bit == bit && f.name != feature.name)
        {
            let other = &map.features[other].name;
            return Err(error(
                file,
                n,
                format!("feature {name} uses the same bit as {other}"),
            ));
        }
        let index = match map.features.iter().position(|f| f.name == feature.name) {
            Some(i) => {
                map.features[i] = feature;
                i
            }
            None => {
                map.features.push(feature);
                map.features.len() - 1
            }
        };
        let feature = &map.features[index];
        for key in std::iter::once(&feature.name).chain(&feature.aliases) {
            if let Some(&owner) = map.feature_index.get(key.as_str()) {
                if owner != index {
                    return Err(error(
                        file,
                        n,
                        format!(
                            "name {key} already belongs to feature {}",
                            map.features[owner].name
                        ),
                    ));
                }
            }
            map.feature_index.insert(key.clone(), index);
        }
    }
    Ok(())
}

/// `cpuid LEAF[:SUBLEAF] REG BIT` or `msr INDEX BIT`, returning the words after it.
fn parse_bit<'a, 'b>(words: &'a [&'b str]) -> Result<(FeatureBit, &'a [&'b str]), String> {
    match words {
        ["cpuid", leaf, register, bit, rest @ ..] => {
            let (leaf, subleaf) = match leaf.split_once(':') {
                Some((l, s)) => (l, number(s).ok_or(format!("bad subleaf in `{leaf}`"))?),
                None => (*leaf, 0),
            };
            let leaf = number(leaf).ok_or(format!("bad leaf `{leaf}`"))?;
            let register = match *register {
                "eax" => Register::Eax,
                "ebx" => Register::Ebx,
                "ecx" => Register::Ecx,
                "edx" => Register::Edx,
                other => return Err(format!("unknown register `{other}` (eax, ebx, ecx or edx)")),
            };
            let bit = number(bit)
                .filter(|&b| b < 32)
                .ok_or(format!("bit `{bit}` is not 0-31"))? as u8;
            Ok((
                FeatureBit::Cpuid {
                    leaf,
                    subleaf,
                    register,
                    bit,
                },
                rest,
            ))
        }
        ["msr", index, bit, rest @ ..] => {
            let index = number(index).ok_or(format!("bad MSR index `{index}`"))?;
            let bit = number(bit)
                .filter(|&b| b < 64)
                .ok_or(format!("bit `{bit}` is not 0-63"))? as u8;
            Ok((FeatureBit::Msr { index, bit }, rest))
        }
        _ => Err("expected `cpuid LEAF[:SUBLEAF] REGISTER BIT` or `msr INDEX BIT`".into()),
    }
}

/// Parses model blocks and adds them to `map` (replacing same-named models in place).
pub(super) fn load_models(map: &mut CpuMap, file: &str, text: &str) -> Result<(), CpuMapError> {
    let mut current: Option<(usize, CpuModel)> = None;
    for (n, words) in lines(text) {
        if words[0] == "model" {
            if let Some((_, model)) = current.take() {
                insert_model(map, model);
            }
            current = Some((n, start_model(map, file, n, &words)?));
            continue;
        }
        let Some((_, model)) = current.as_mut() else {
            return Err(error(
                file,
                n,
                format!("`{}` outside a `model` block", words[0]),
            ));
        };
        apply_directive(map, model, &words)
            .map_err(|m| error(file, n, format!("model {}: {m}", model.name)))?;
    }
    if let Some((_, model)) = current {
        insert_model(map, model);
    }
    Ok(())
}

fn start_model(
    map: &CpuMap,
    file: &str,
    n: usize,
    words: &[&str],
) -> Result<CpuModel, CpuMapError> {
    match words {
        ["model", name] => Ok(CpuModel {
            name: name.to_string(),
            aliases: Vec::new(),
            parent: None,
            vendor: None,
            signatures: Vec::new(),
            decode_host: true,
            decode_guest: true,
            features: FeatureSet::new(),
            feature_names: Arc::default(),
            added: Arc::default(),
            removed: Vec::new(),
        }),
        ["model", name, "from", parent] => {
            let base = map.model(parent).ok_or_else(|| {
                error(
                    file,
                    n,
                    format!("model {name}: parent model {parent} is not defined above"),
                )
            })?;
            Ok(CpuModel {
                name: name.to_string(),
                aliases: Vec::new(),
                parent: Some(base.name.clone()),
                ..base.clone()
            })
        }
        _ => Err(error(
            file,
            n,
            "expected `model NAME` or `model NAME from PARENT`",
        )),
    }
}

fn apply_directive(map: &CpuMap, model: &mut CpuModel, words: &[&str]) -> Result<(), String> {
    let (keyword, args) = words.split_first().expect("non-empty");
    let canonical = |name: &str| {
        map.feature_position(name)
            .ok_or_else(|| format!("unknown feature `{name}`"))
    };
    match *keyword {
        "vendor" => {
            let [vendor] = args else {
                return Err("expected `vendor NAME`".into());
            };
            if map.vendor(vendor).is_none() {
                return Err(format!("unknown vendor `{vendor}`"));
            }
            model.vendor = Some(vendor.to_string());
        }
        "signature" => {
            for sig in args {
                model.signatures.push(parse_signature(sig)?);
            }
        }
        "decode" => {
            model.decode_host = args.contains(&"host");
            model.decode_guest = args.contains(&"guest");
            if args.iter().any(|a| !["host", "guest", "none"].contains(a)) {
                return Err("expected `decode [host] [guest]` or `decode none`".into());
            }
        }
        "check" => {}
        "alias" => model.aliases.extend(args.iter().map(|a| a.to_string())),
        "features" => {
            for name in args {
                let i = canonical(name)?;
                if !model.features.contains(i) {
                    model.features.insert(i);
                    Arc::make_mut(&mut model.feature_names).push(map.feature_at(i).name.clone());
                }
            }
        }
        "added" | "removed" => {
            for name in args {
                let i = canonical(name)?;
                let name = map.feature_at(i).name.clone();
                if *keyword == "added" {
                    Arc::make_mut(&mut model.added).push(name);
                } else {
                    model.removed.push(name);
                }
            }
        }
        other => return Err(format!("unknown directive `{other}`")),
    }
    Ok(())
}

/// `FAMILY/MODEL[/STEPPING[-STEPPING]]`.
fn parse_signature(text: &str) -> Result<ModelSignature, String> {
    let bad = || format!("bad signature `{text}` (expected FAMILY/MODEL[/STEPPING[-STEPPING]])");
    let mut parts = text.split('/');
    let family = parts.next().and_then(number).ok_or_else(bad)?;
    let model = parts.next().and_then(number).ok_or_else(bad)?;
    let steppings = match parts.next() {
        None => None,
        Some(range) => {
            let (lo, hi) = range.split_once('-').unwrap_or((range, range));
            Some((number(lo).ok_or_else(bad)?, number(hi).ok_or_else(bad)?))
        }
    };
    if parts.next().is_some() {
        return Err(bad());
    }
    Ok(ModelSignature {
        family,
        model,
        steppings,
    })
}

fn insert_model(map: &mut CpuMap, model: CpuModel) {
    let index = match map.models.iter().position(|m| m.name == model.name) {
        Some(i) => {
            map.models[i] = model;
            i
        }
        None => {
            map.models.push(model);
            map.models.len() - 1
        }
    };
    let model = &map.models[index];
    for key in std::iter::once(&model.name).chain(&model.aliases) {
        map.model_index.insert(key.clone(), index);
    }
}
