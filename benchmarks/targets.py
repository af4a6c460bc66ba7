"""Check issue targets against metrics/summary.json and print a markdown table.

Targets (each vs `full` in the same run):
- bullettrain: >= 2x pass-count speed-up, AutoAttack within 1 pt;
- best subset selector at f~0.3 (PGD training, no mining): >= 2.5x, AutoAttack within 1.5 pts,
  and above random-online at the same f;
- best stack (subset x bullettrain x fast attack): >= 5x passes and >= 4x wall-clock,
  AutoAttack within 2 pts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BASELINES = ("full", "random", "random-online")
BT = "bullettrain: ≥2× passes, AA within 1 pt"
SUBSET = "best subset selector at f≈0.3: ≥2.5×, AA within 1.5 pts, above random-online"
STACK = "best stack: ≥5× passes, ≥4× wall-clock, AA within 2 pts"


def main(path: str = "metrics/summary.json") -> None:
    rows = json.loads(Path(path).read_text())["methods"]

    def aa(name: str) -> float:
        return 100 * rows[name]["delta_robust"]

    out = ["| target | method | measured | met |", "|---|---|---|---|"]
    missing = "| {} | – | not assessed: no such method in this run | not assessed |"
    if "bullettrain" not in rows:
        out.append(missing.format(BT))
    else:
        r = rows["bullettrain"]
        ok = r["speedup_passes"] >= 2 and aa("bullettrain") >= -1
        out.append(f"| {BT} | bullettrain | "
                   f"{r['speedup_passes']:.2f}× passes, {r['speedup_seconds']:.2f}× s, "
                   f"ΔAA {aa('bullettrain'):+.2f} pts | {'yes' if ok else 'no'} |")
    subset = [n for n, r in rows.items() if r["method"] not in BASELINES
              and abs(r["fraction"] - 0.3) < 0.05 and r["mining"] == "none"
              and r["attack"].startswith("pgd")]
    if not subset:
        out.append(missing.format(SUBSET))
    else:
        best = max(subset, key=lambda n: rows[n]["autoattack_acc"] or rows[n]["pgd_acc"])
        r = rows[best]
        ro = rows.get("random-online")
        beats = ro is not None and r["autoattack_acc"] > ro["autoattack_acc"]
        ok = r["speedup_passes"] >= 2.5 and aa(best) >= -1.5 and beats
        out.append(f"| {SUBSET} | {best} | {r['speedup_passes']:.2f}× passes, "
                   f"ΔAA {aa(best):+.2f} pts, random-online ΔAA "
                   f"{aa('random-online') if ro else float('nan'):+.2f} pts | "
                   f"{'yes' if ok else 'no'} |")
    stacks = [n for n, r in rows.items() if r["mining"] == "bullettrain"
              and r["fraction"] < 1 and not r["attack"].startswith("pgd")]
    if not stacks:
        out.append(missing.format(STACK))
    else:
        best = max(stacks, key=lambda n: rows[n]["autoattack_acc"] or rows[n]["pgd_acc"])
        r = rows[best]
        ok = r["speedup_passes"] >= 5 and r["speedup_seconds"] >= 4 and aa(best) >= -2
        out.append(f"| {STACK} | {best} | "
                   f"{r['speedup_passes']:.2f}× passes, {r['speedup_seconds']:.2f}× s, "
                   f"ΔAA {aa(best):+.2f} pts | {'yes' if ok else 'no'} |")
    print("\n".join(out))


if __name__ == "__main__":
    main(*sys.argv[1:])
