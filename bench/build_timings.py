"""The longest units of a `cargo build --timings` report: usage `build_timings.py REPORT [N]`.

The report embeds its units as `const UNIT_DATA = [...]` (name, version, target, duration
in seconds, and for libraries the front-end and codegen sections); this prints the N longest, which are what a
leaner build has to shorten or take off the critical path."""
import json
import re
import sys

html = open(sys.argv[1], encoding="utf-8").read()
top = int(sys.argv[2]) if len(sys.argv) > 2 else 10
match = re.search(r"const UNIT_DATA = (\[.*?\]);\s*$", html, re.M | re.S)
if not match:
    sys.exit(f"no UNIT_DATA in {sys.argv[1]}")
units = json.loads(match.group(1))
for u in sorted(units, key=lambda u: -u["duration"])[:top]:
    sections = dict(u.get("sections") or [])
    codegen = sections.get("codegen")
    split = f" (codegen {codegen['end'] - codegen['start']:.1f} s)" if codegen else ""
    target = u.get("target", "").strip() or "lib"
    print(f"  {u['duration']:7.1f} s  {u['name']} {u['version']} {target}{split}")
