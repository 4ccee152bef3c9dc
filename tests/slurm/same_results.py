"""Whether two results files (`results.json` of a reproduction, `result.json` of a run) hold
the same values, wall-clock times and the commit aside. Exits non-zero naming the differences.

    python3 tests/slurm/same_results.py A.json B.json
"""
import json, sys

# Wall-clock times and the commit differ by nature; everything else must
# be equal: every accuracy, error curve, instability and distance.
VOLATILE = ("seconds", "commit")

def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if not any(w in k for w in VOLATILE)}
    if isinstance(v, list):
        return [strip(x) for x in v]
    return v

def leaves(v, path=""):
    if isinstance(v, dict):
        for k, x in v.items():
            yield from leaves(x, f"{path}.{k}")
    elif isinstance(v, list):
        for i, x in enumerate(v):
            yield from leaves(x, f"{path}[{i}]")
    else:
        yield path, v

a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
la, lb = dict(leaves(a)), dict(leaves(b))
numbers = sum(isinstance(v, float) for v in la.values())
if la != lb:
    diff = [k for k in sorted(set(la) | set(lb)) if la.get(k) != lb.get(k)]
    for k in diff[:20]:
        print(f"differs: {k}: {la.get(k)!r} vs {lb.get(k)!r}")
    sys.exit(f"{len(diff)} of {len(la)} values differ")
print(f"equal: {len(la)} values ({numbers} floating-point numbers)")
