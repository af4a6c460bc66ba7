"""The side-by-side report: accuracy and cost per method, against the full-data baseline.

Speed-up = baseline ÷ method, in wall-clock training seconds and in example-passes (forward +
backward); selection work is inside each method's cost, the shared warm-up in none. A method
"beats random" when its AutoAttack accuracy (PGD-20 where AutoAttack was skipped) is above
every random baseline (``random``, ``random-online``) trained at the same data fraction f,
whatever their mining and attack: the question a user asks of a selector or a stack is whether
it buys more robustness than keeping a random f of the data, and the random baselines are the
cheapest way to spend that budget. Methods with no random baseline at their f, and the
baselines themselves, get no verdict. All methods are
evaluated on the same test examples, so differences are paired.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from robustprune.config import Params, as_dict
from robustprune.io import atomic_write, atomic_write_json, atomic_write_text
from robustprune.pipeline import InputError, require_file

RANDOM_BASELINES = ("random", "random-online")


def _load(path: Path, made_by: str) -> dict[str, Any]:
    require_file(path, made_by)
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        raise InputError(f"{path}: not valid JSON; rerun the {made_by} stage") from None


def _robust_acc(ev: dict[str, Any]) -> float:
    return ev["autoattack_acc"] if ev.get("n_autoattack") else ev["pgd_acc"]


def collect(params: Params, metrics_dir: Path) -> dict[str, dict[str, Any]]:
    """Per method: its effective settings, training metrics and evaluation metrics."""
    rows = {}
    for name in params.methods:
        eff = params.for_method(name)
        rows[name] = {"select": as_dict(eff.select), "attack": as_dict(eff.attack),
                      "train": _load(metrics_dir / "train" / f"{name}.json", f"train@{name}"),
                      "eval": _load(metrics_dir / "eval" / f"{name}.json", f"evaluate@{name}")}
    return rows


def summarise(rows: dict[str, dict[str, Any]], baseline: str) -> dict[str, Any]:
    if baseline not in rows:
        raise InputError(f"report baseline {baseline!r} is not one of {', '.join(rows)}")
    base_cost, base_ev = rows[baseline]["train"]["cost"], rows[baseline]["eval"]
    out: dict[str, Any] = {}
    for name, r in rows.items():
        cost, ev, sel, atk = r["train"]["cost"], r["eval"], r["select"], r["attack"]
        out[name] = {
            "method": sel["method"], "fraction": sel["fraction"], "mining": sel["mining"],
            "attack": atk["name"] if atk["name"] != "pgd" else f"pgd-{atk['steps']}",
            "clean_acc": ev["clean_acc"], "pgd_acc": ev["pgd_acc"],
            "autoattack_acc": ev.get("autoattack_acc"), "n_autoattack": ev.get("n_autoattack", 0),
            "delta_clean": round(ev["clean_acc"] - base_ev["clean_acc"], 6),
            "delta_pgd": round(ev["pgd_acc"] - base_ev["pgd_acc"], 6),
            "delta_robust": round(_robust_acc(ev) - _robust_acc(base_ev), 6),
            "seconds": cost["seconds"], "passes": cost["passes"],
            "relative_cost": round(cost["passes"] / max(base_cost["passes"], 1), 4),
            "speedup_seconds": round(base_cost["seconds"] / max(cost["seconds"], 1e-9), 3),
            "speedup_passes": round(base_cost["passes"] / max(cost["passes"], 1), 3),
            "checks_passed": ev["checks_passed"],
        }
    for name, row in out.items():
        peers = [o for o, other in out.items() if o != name
                 and other["method"] in RANDOM_BASELINES
                 and abs(other["fraction"] - row["fraction"]) < 1e-9]
        if row["method"] in (*RANDOM_BASELINES, "full") or not peers:
            row["beats_random"] = None
        else:
            acc = _robust_acc(rows[name]["eval"])
            row["beats_random"] = all(acc > _robust_acc(rows[p]["eval"]) for p in peers)
    return out


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Names not dominated in (lower cost, higher accuracy), ordered by cost."""
    front, best = [], float("-inf")
    for name, (_cost, acc) in sorted(points.items(), key=lambda kv: (kv[1][0], -kv[1][1])):
        if acc > best:
            front.append(name)
            best = acc
    return front


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{100 * v:.2f}"


def markdown(summary: dict[str, Any], clean: dict[str, Any] | None) -> str:
    lines = ["| method | selector | f | mining | attack | clean % | PGD-20 % | AutoAttack % (n) | "
             "Δ AA vs full (pts) | train s | passes | speed-up (s) | speed-up (passes) | "
             "beats random (same f) | checks |", "|" + "---|" * 15]
    verdict = {True: "yes", False: "no", None: "–"}
    for name, r in summary.items():
        lines.append(
            f"| {name} | {r['method']} | {r['fraction']:g} | {r['mining']} | {r['attack']} | "
            f"{_pct(r['clean_acc'])} | {_pct(r['pgd_acc'])} | {_pct(r['autoattack_acc'])} "
            f"({r['n_autoattack']}) | {100 * r['delta_robust']:+.2f} | {r['seconds']:.0f} | "
            f"{r['passes']:,} | {r['speedup_seconds']:.2f}× | {r['speedup_passes']:.2f}× | "
            f"{verdict[r['beats_random']]} | {'ok' if r['checks_passed'] else 'FAILED'} |")
    if clean is not None:
        lines.append(f"| clean-trained (warm-up only) | – | – | – | none | "
                     f"{_pct(clean['clean_acc'])} | {_pct(clean['pgd_acc'])} | "
                     f"{_pct(clean.get('autoattack_acc'))} ({clean.get('n_autoattack', 0)}) | "
                     f"– | – | – | – | – | – | {'ok' if clean['checks_passed'] else 'FAILED'} |")
    return "\n".join(lines) + "\n"


def plot(summary: dict[str, Any], path: Path) -> None:
    """AutoAttack accuracy vs relative cost (passes ÷ full), Pareto front marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = {n: (r["relative_cost"], 100 * (r["autoattack_acc"] if r["autoattack_acc"]
                                             is not None else r["pgd_acc"]))
              for n, r in summary.items()}
    front = pareto_front(points)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for name, (x, y) in points.items():
        on = name in front
        ax.scatter([x], [y], s=60 if on else 35, c="tab:red" if on else "tab:blue", zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(5, 4), fontsize=8)
    fx, fy = zip(*(points[n] for n in front), strict=True)
    ax.step(fx, fy, where="post", c="tab:red", lw=1, alpha=0.7, label="Pareto front")
    ax.set_xlabel("relative training cost (example-passes ÷ full)")
    ax.set_ylabel("AutoAttack accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buf.getvalue()))


def report(params: Params, metrics_dir: Path, baseline: str, summary_out: Path,
           table_out: Path, plot_out: Path | None) -> dict[str, Any]:
    """Write the summary JSON, the markdown table and the Pareto plot (inputs checked first)."""
    if not params.methods:
        raise InputError("methods: no methods defined in params; nothing to report")
    rows = collect(params, metrics_dir)
    summary = summarise(rows, baseline)
    clean_path = metrics_dir / "eval_clean.json"
    clean = _load(clean_path, "evaluate_clean") if clean_path.exists() else None
    result = {"baseline": baseline, "methods": summary,
              "pareto_front": pareto_front({n: (r["relative_cost"], _robust_acc(rows[n]["eval"]))
                                            for n, r in summary.items()}),
              "clean_trained": None if clean is None else {
                  k: clean.get(k) for k in ("clean_acc", "pgd_acc", "autoattack_acc",
                                            "n_autoattack")}}
    atomic_write_json(summary_out, result)
    atomic_write_text(table_out, markdown(summary, clean))
    if plot_out is not None:
        plot(summary, plot_out)
    return result
