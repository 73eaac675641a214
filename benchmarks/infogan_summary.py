"""The curves of benchmarks/infogan_paper.sh: per seed, cluster-acc of the categorical code at every
kept checkpoint, and the final accuracies (median, how many seeds below 0.9 / collapsed below 0.5).

    python benchmarks/infogan_summary.py OUT [--markdown]
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path


def curves(out: Path) -> dict[str, dict[int, float]]:
    res: dict[str, dict[int, float]] = {}
    for run in sorted(out.glob("seed=*")):
        if not run.is_dir():
            continue
        points = {}
        for f in [*run.glob("eval-step-*.json"), run / "eval.json"]:
            if f.is_file():
                rec = json.loads(f.read_text())
                m = rec["metrics"].get("cluster-acc")
                if m and "value" in m:
                    points[int(rec["step"])] = float(m["value"])
        res[run.name] = dict(sorted(points.items()))
    return res


def main(argv: list[str]) -> int:
    out = Path(argv[0])
    c = curves(out)
    steps = sorted({s for p in c.values() for s in p})
    print("| seed | " + " | ".join(str(s) for s in steps) + " |")
    print("|---|" + "---|" * len(steps))
    for name, p in c.items():
        print(f"| {name} | " + " | ".join(f"{p[s]:.3f}" if s in p else "" for s in steps) + " |")
    final = [p[max(p)] for p in c.values() if p and max(p) == 5000]
    if final:
        print(f"\nfinal (step 5000): median {statistics.median(final):.3f} over {len(final)} seeds; "
              f"below 0.9: {sum(a < 0.9 for a in final)}; below 0.5: {sum(a < 0.5 for a in final)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
