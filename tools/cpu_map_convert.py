#!/usr/bin/env python3
"""Regenerate Vireo's cpu_map/ text files from a JSON dump of libvirt's x86 CPU map.

The JSON (e.g. ../shared/oracle/cpu_map.json) is only a source of facts: bit positions, which
features a model has, signatures. What this script writes is Vireo's own line-based format,
documented in cpu_map/README.md. It also rewrites src/cpu/map/builtin_files.rs, the list of
files embedded into the binary, so adding a family file needs no hand edit.

Usage: tools/cpu_map_convert.py [PATH/TO/cpu_map.json]
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SOURCE = os.path.join(ROOT, "..", "shared", "oracle", "cpu_map.json")
REGS = ("eax", "ebx", "ecx", "edx")
HEADER = "# Vireo CPU map ({what}). Format: cpu_map/README.md. Regenerate: tools/cpu_map_convert.py\n"


def bit_of(mask):
    assert mask and mask & (mask - 1) == 0, f"not a single bit: {mask:#x}"
    return mask.bit_length() - 1


def feature_line(feature):
    if feature["cpuid"]:
        (c,) = feature["cpuid"]
        (reg,) = [r for r in REGS if r in c]
        leaf = f"{c['eax_in']:#x}"
        if "ecx_in" in c:
            leaf += f":{c['ecx_in']}"
        where = f"cpuid {leaf} {reg} {bit_of(c[reg])}"
    else:
        (m,) = feature["msr"]
        value = m["eax"] | (m["edx"] << 32)
        where = f"msr {m['index']:#x} {bit_of(value)}"
    extras = [f"alias={a['name']}" for a in feature.get("aliases", [])]
    if feature.get("migratable") is False:
        extras.append("nonmigratable")
    return f"{feature['name']:<40} {where:<24} {' '.join(extras)}".rstrip()


def family_of(name):
    previous = None
    while previous != name:
        previous = name
        name = re.sub(r"-(v\d+|IBRS|noTSX|IBPB)$", "", name)
    return name


def wrap(keyword, names, width=96):
    lines, current = [], f"  {keyword}"
    for n in names:
        if len(current) + 1 + len(n) > width and current.strip() != keyword:
            lines.append(current)
            current = f"  {keyword}"
        current += " " + n
    lines.append(current)
    return lines


def model_block(model):
    head = f"model {model['name']}"
    if model["parent"]:
        head += f" from {model['parent']}"
    out = [head]
    if model["vendor"]:
        out.append(f"  vendor {model['vendor']}")
    if model["signatures"]:
        sigs = []
        for s in model["signatures"]:
            sig = f"{s['family']}/{s['model']}"
            if s.get("stepping") is not None:
                sig += f"/{s['stepping']}"
            sigs.append(sig)
        out.append("  signature " + " ".join(sigs))
    decode = [k for k in ("host", "guest") if model["decode"][k]]
    out.append("  decode " + (" ".join(decode) if decode else "none"))
    if model["check_partial"]:
        out.append(f"  check {model['check_partial']}")
    own = [f["name"] for f in model["features"] if not f.get("added") and not f.get("removed")]
    added = [f["name"] for f in model["features"] if f.get("added")]
    removed = [f["name"] for f in model["features"] if f.get("removed")]
    for keyword, names in (("features", own), ("added", added), ("removed", removed)):
        if names:
            out.extend(wrap(keyword, names))
    return "\n".join(out) + "\n"


def main():
    source = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SOURCE
    with open(source) as f:
        data = json.load(f)
    out_dir = os.path.join(ROOT, "cpu_map")
    os.makedirs(os.path.join(out_dir, "models"), exist_ok=True)

    with open(os.path.join(out_dir, "vendors.map"), "w") as f:
        f.write(HEADER.format(what="vendors"))
        f.write("# vendor NAME CPUID-VENDOR-STRING\n")
        for v in data["vendors"]:
            f.write(f"vendor {v['name']} {v['string']}\n")

    with open(os.path.join(out_dir, "features.map"), "w") as f:
        f.write(HEADER.format(what="features"))
        f.write("# NAME  cpuid LEAF[:SUBLEAF] REGISTER BIT | msr INDEX BIT  [alias=NAME]... [nonmigratable]\n")
        for feature in data["features"]:
            f.write(feature_line(feature) + "\n")

    families, order = {}, []
    for model in data["models"]:
        fam = family_of(model["name"])
        if fam not in families:
            families[fam] = []
            order.append(fam)
        elif order[-1] != fam:
            sys.exit(f"family {fam} is not contiguous in the source order; map order would change")
        families[fam].append(model)

    files = []
    for fam in order:
        file_name = "models/" + fam.lower().replace("_", "-") + ".map"
        files.append(file_name)
        with open(os.path.join(out_dir, file_name), "w") as f:
            f.write(HEADER.format(what=f"{fam} family"))
            f.write("\n".join(model_block(m) for m in families[fam]))

    with open(os.path.join(out_dir, "index.map"), "w") as f:
        f.write(HEADER.format(what="load order"))
        f.write("# Model files in map order; decode breaks ties by this order.\n")
        for file_name in files:
            f.write(f"models {file_name}\n")

    rs = os.path.join(ROOT, "src", "cpu", "map", "builtin_files.rs")
    with open(rs, "w") as f:
        f.write("//! Generated by tools/cpu_map_convert.py: every cpu_map/ file, embedded at compile time so an\n")
        f.write("//! installed binary needs no data directory.\n\n")
        f.write("/// `(path relative to cpu_map/, contents)` for every built-in map file.\n")
        f.write("pub(super) const BUILTIN_FILES: &[(&str, &str)] = &[\n")
        for name in ["index.map", "vendors.map", "features.map"] + files:
            f.write(f'    ("{name}", include_str!("../../../cpu_map/{name}")),\n')
        f.write("];\n")


if __name__ == "__main__":
    main()
