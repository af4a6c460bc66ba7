"""Are the default pipeline's outputs in this workspace the ones a git revision recorded?

    python benchmarks/same_outputs.py --rev <revision> [--out benchmarks/results/<name>.md]

Run after `dvc repro` of the committed params. Compares, output by output:

- DVC-cached outputs (prepared data, scores, per-example evaluation tables): the md5 of the
  file here against the md5 the revision's dvc.lock recorded. Model files are listed but not
  judged by their bytes (a revision that saved through a temporary file name has a random
  archive folder name inside the zip); everything computed from them is compared instead.
- git-tracked metrics (warm-up, scoring, training, evaluation, summary) and the dvclive
  per-epoch series: equal after dropping wall-clock values (which differ run to run) and
  mapping keys a revision renamed (``RENAMES``).

Prints a markdown table (and writes it with --out); exits 1 when anything differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RENAMES = {  # old path or key -> new, for the structure change of the params and stages
    "data/scores/s0.parquet": "data/scoring/s0.parquet",
    "metrics/score/s0.json": "metrics/scoring/s0.json",
}
TIMING = ("seconds", "runtime", "model", "stage", "timestamp")


def _git(rev: str, path: str) -> str | None:
    res = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True,
                         text=True)
    return res.stdout if res.returncode == 0 else None


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _strip(obj: Any) -> Any:
    """Without wall-clock values: keys naming them, and the "N× s" in the verdict texts."""
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if not any(t in k for t in TIMING)}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    if isinstance(obj, str):
        return re.sub(r"[\d.]+× s(, )?", "", obj)
    return obj


def _renamed_selector(name: str) -> str:
    return {"score": "prune"}.get(name, name)


def _normalise_train(new: dict[str, Any], old: dict[str, Any]) -> tuple[Any, Any]:
    """A training record of the earlier layout (flat method/mining keys) in today's, and
    today's settings without the options the earlier layout did not record."""
    if "settings" in new and "method" in old:
        old = dict(old)
        old["settings"] = {"selector": _renamed_selector(old.pop("method")),
                           "fraction": old.pop("fraction"), "miner": old.pop("mining"),
                           "attack": old.pop("attack"), "objective": old.pop("objective")}
        new = dict(new)
        new["settings"] = {k: new["settings"][k] for k in old["settings"]}
    return new, old


def _normalise_summary(new: dict[str, Any], old: dict[str, Any]) -> tuple[Any, Any]:
    """An earlier summary's rows in today's names, and today's rows without the keys the
    earlier report did not write (e.g. the seed spread), so only figures are compared."""
    for row in old.get("methods", {}).values():
        if "method" in row:
            row["selector"] = _renamed_selector(row.pop("method"))
            row["miner"] = row.pop("mining")
    for name, row in new.get("methods", {}).items():
        before = old.get("methods", {}).get(name)
        if isinstance(before, dict):
            for key in [k for k in row if k not in before]:
                row.pop(key)
    return new, old


def compare(rev: str) -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    lock = yaml.safe_load(_git(rev, "dvc.lock") or "{}")
    outs = {o["path"]: o["md5"] for stage in lock.get("stages", {}).values()
            for o in stage.get("outs", [])
            if "md5" in o and o["path"].startswith(("data/", "models/"))}
    for old_path, md5 in sorted(outs.items()):
        path = ROOT / RENAMES.get(old_path, old_path)
        if old_path.startswith("models/"):
            rows.append((str(path.relative_to(ROOT)), "not compared by bytes",
                         "model file: judged by the metrics and tables made from it"))
            continue
        here = _md5(path) if path.is_file() else "missing"
        rows.append((str(path.relative_to(ROOT)), "identical" if here == md5 else "DIFFERS",
                     f"md5 {here}" + ("" if here == md5 else f" (revision: {md5})")))
    listed = subprocess.run(["git", "ls-tree", "-r", "--name-only", rev, "metrics", "dvclive"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for old_path in listed.split():
        if not old_path.endswith((".json", ".tsv")):
            continue  # the markdown table and the plot are renderings of summary.json
        new_path = RENAMES.get(old_path, old_path)
        path = ROOT / new_path
        if not path.is_file():
            rows.append((new_path, "DIFFERS", "missing here"))
            continue
        old_text = _git(rev, old_path) or ""
        if old_path.endswith(".json"):
            new, old = json.loads(path.read_text()), json.loads(old_text)
            if "/train/" in old_path:
                new, old = _normalise_train(new, old)
            if old_path.endswith("summary.json"):
                new, old = _normalise_summary(new, old)
            same = _strip(new) == _strip(old)
        else:
            if any(t in old_path for t in TIMING):
                continue
            same = ([line.split("\t")[1:] for line in path.read_text().splitlines()]
                    == [line.split("\t")[1:] for line in old_text.splitlines()])
        rows.append((new_path, "identical" if same else "DIFFERS",
                     "timers and renamed keys aside" if same else "values differ"))
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rev", required=True, help="the git revision whose outputs to compare")
    p.add_argument("--out", type=Path, default=None, help="also write the table here")
    args = p.parse_args(argv)
    rows = compare(args.rev)
    lines = ["| output | verdict | note |", "|---|---|---|"]
    lines += [f"| `{path}` | {verdict} | {note} |" for path, verdict, note in rows]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 1 if any(v == "DIFFERS" for _, v, _ in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
