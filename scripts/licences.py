#!/usr/bin/env python3
"""What Lotse ships, for procurement: a CycloneDX SBOM and the third-party notices.

    scripts/licences.py sbom    [-o target/lotse.cdx.json]
    scripts/licences.py notices [-o target/THIRD-PARTY-NOTICES.md]

Both read `cargo metadata` of the server workspace (the `lotse` binary, for Linux) and of
the widget workspace (`widget/`, for wasm32) and keep the crates that end up in what is
shipped: those reached from `lotse` and the widget through normal dependencies (not dev or
build dependencies). The SBOM lists each with its version, package URL, licence expression
and the SHA-256 of its crate file from Cargo.lock, and the dependency graph. The notices
group the crates by licence expression and carry each crate's own licence and notice
files (from the unpacked crate sources cargo keeps), identical texts once.

Standard library only; needs cargo and the crates fetched (any `cargo build` does that).
"""

import argparse
import datetime
import hashlib
import json
import os
import subprocess
import sys
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKSPACES = [
    # (manifest, root package, target platform)
    (os.path.join(ROOT, "Cargo.toml"), "lotse", "x86_64-unknown-linux-gnu"),
    (os.path.join(ROOT, "widget", "Cargo.toml"), "lotse-widget", "wasm32-unknown-unknown"),
]
LICENCE_FILES = ("LICENSE", "LICENCE", "COPYING", "NOTICE", "COPYRIGHT", "UNLICENSE", "AUTHORS")


def metadata(manifest, platform):
    out = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--locked", "--manifest-path", manifest,
         "--filter-platform", platform],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out)


def lock_checksums(manifest):
    """name@version -> sha256 of the crate file, from Cargo.lock."""
    sums, name, version, in_package = {}, None, None, False
    with open(os.path.join(os.path.dirname(manifest), "Cargo.lock"), encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                in_package = line == "[[package]]"
                name = version = None
            elif not in_package:
                continue
            elif line.startswith("name = "):
                name = line.split('"')[1]
            elif line.startswith("version = "):
                version = line.split('"')[1]
            elif line.startswith("checksum = ") and name and version:
                sums[f"{name}@{version}"] = line.split('"')[1]
    return sums


def shipped():
    """The registry crates in what is shipped: {id: package} and the edges between them."""
    packages, edges, roots = {}, {}, []
    for manifest, root_name, platform in WORKSPACES:
        if not os.path.exists(manifest):
            continue
        m = metadata(manifest, platform)
        sums = lock_checksums(manifest)
        by_id = {p["id"]: p for p in m["packages"]}
        nodes = {n["id"]: n for n in m["resolve"]["nodes"]}
        root = next(p["id"] for p in m["packages"] if p["name"] == root_name and p["source"] is None)
        roots.append(root)
        stack, seen = [root], {root}
        while stack:
            pid = stack.pop()
            p = by_id[pid]
            p["_checksum"] = sums.get(f"{p['name']}@{p['version']}")
            packages[pid] = p
            for d in nodes[pid]["deps"]:
                if not any(k["kind"] is None for k in d["dep_kinds"]):
                    continue  # dev and build dependencies are not shipped
                edges.setdefault(pid, set()).add(d["pkg"])
                if d["pkg"] not in seen:
                    seen.add(d["pkg"])
                    stack.append(d["pkg"])
    return packages, edges, roots


def purl(p):
    return f"pkg:cargo/{p['name']}@{p['version']}"


def licence_of(p):
    lic = p.get("license")
    if lic:
        # old crates write "MIT/Apache-2.0"
        return lic.replace("/", " OR ")
    if p.get("license_file"):
        return "LicenseRef-file"
    return None


def sbom(out_path):
    packages, edges, roots = shipped()
    ref = {pid: (purl(p) if p["source"] else f"lotse:{p['name']}@{p['version']}") for pid, p in packages.items()}
    components = []
    for pid, p in sorted(packages.items(), key=lambda kv: (kv[1]["name"], kv[1]["version"])):
        if pid == roots[0]:
            continue
        c = {
            # the widget is shipped as an application of its own (WebAssembly)
            "type": "application" if pid in roots else "library",
            "bom-ref": ref[pid],
            "name": p["name"],
            "version": p["version"],
        }
        if p["source"]:
            c["purl"] = purl(p)
        else:
            c["scope"] = "required"
        lic = licence_of(p)
        if lic:
            c["licenses"] = [{"expression": lic}]
        if p.get("_checksum"):
            c["hashes"] = [{"alg": "SHA-256", "content": p["_checksum"]}]
        if p.get("repository"):
            c["externalReferences"] = [{"type": "vcs", "url": p["repository"]}]
        components.append(c)
    lotse = packages[roots[0]]
    doc = {
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": f"urn:uuid:{uuid.uuid4()}",
        "version": 1,
        "metadata": {
            "timestamp": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": "scripts/licences.py"}]},
            "component": {
                "type": "application",
                "bom-ref": ref[roots[0]],
                "name": "lotse",
                "version": lotse["version"],
                "licenses": [{"expression": licence_of(lotse) or "Apache-2.0"}],
            },
        },
        "components": components,
        "dependencies": [
            {"ref": ref[pid], "dependsOn": sorted(ref[d] for d in edges.get(pid, ()) if d in ref)}
            for pid in sorted(packages, key=lambda i: ref[i])
        ],
    }
    write(out_path, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    third = sum(1 for c in components if "purl" in c)
    print(f"SBOM: {third} third-party crates, {len(components) - third} of Lotse's own -> {out_path}")


def licence_texts(p):
    d = os.path.dirname(p["manifest_path"])
    texts = []
    try:
        names = sorted(os.listdir(d))
    except OSError:
        return texts
    for n in names:
        if n.upper().startswith(LICENCE_FILES) and os.path.isfile(os.path.join(d, n)):
            with open(os.path.join(d, n), encoding="utf-8", errors="replace") as f:
                texts.append((n, f.read().strip()))
    return texts


def notices(out_path):
    packages, _, _ = shipped()
    third = sorted((p for p in packages.values() if p["source"]), key=lambda p: (p["name"], p["version"]))
    by_licence = {}
    for p in third:
        by_licence.setdefault(licence_of(p) or "unknown", []).append(p)
    texts, missing = {}, []
    lines = [
        "# Third-party notices",
        "",
        "Lotse (Apache-2.0) contains the following crates, in the `lotse` binary and the",
        "citizens' widget. Each is listed under its licence expression; their licence and",
        "notice files follow (one copy of each identical text). MPL-2.0 files can be had in",
        "source form from crates.io under the name and version given.",
        "",
        f"Generated by `scripts/licences.py notices`: {len(third)} crates.",
        "",
    ]
    for lic in sorted(by_licence, key=lambda l: (-len(by_licence[l]), l)):
        ps = by_licence[lic]
        lines.append(f"## {lic} ({len(ps)})")
        lines.append("")
        for p in ps:
            refs = []
            for name, text in licence_texts(p):
                h = hashlib.sha256(text.encode()).hexdigest()[:12]
                texts.setdefault(h, (f"{p['name']} {p['version']}: {name}", text))
                refs.append(f"[{name}](#t-{h})")
            if not refs:
                missing.append(p["name"])
            repo = f" <{p['repository']}>" if p.get("repository") else ""
            if not refs:
                # no file of its own: the licence's standard text (under this heading) with
                # the authors as the copyright holders
                authors = ", ".join(a.split(" <")[0] for a in p.get("authors") or []) or "its authors"
                refs = [f"copyright {authors}"]
            lines.append(f"- {p['name']} {p['version']}{repo}: {', '.join(refs)}")
        lines.append("")
    lines.append("# Licence texts")
    lines.append("")
    for h, (title, text) in texts.items():
        lines.append(f'<a id="t-{h}"></a>')
        lines.append(f"## {title}")
        lines.append("")
        lines.append("```text")
        lines.append(text.replace("```", "'''"))
        lines.append("```")
        lines.append("")
    write(out_path, "\n".join(lines))
    print(f"notices: {len(third)} crates under {len(by_licence)} licence expressions, "
          f"{len(texts)} distinct texts -> {out_path}")
    if missing:
        # the licence named in Cargo.toml still applies; its standard text is in another crate's files
        print(f"notices: {len(missing)} crates ship no licence file of their own: {', '.join(missing[:12])}"
              + (" ..." if len(missing) > 12 else ""))


def write(path, text):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=["sbom", "notices"])
    ap.add_argument("-o", "--output")
    a = ap.parse_args()
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    if a.what == "sbom":
        sbom(a.output or os.path.join(target, "lotse.cdx.json"))
    else:
        notices(a.output or os.path.join(target, "THIRD-PARTY-NOTICES.md"))


if __name__ == "__main__":
    sys.exit(main())
