"""``python -m robustprune.launch N stages/<stage>.py [args…]``: run a stage as N torchrun
processes on this machine, or as one plain process when N is 1.

``dvc.yaml`` calls the training stages through it with ``${scale.nproc}``, so the process count
is a param like any other (``dvc exp run -S scale.nproc=4``) and N = 1 runs the plain
``python stages/<stage>.py``. For N > 1 it hands over to PyTorch's own launcher,
``torch.distributed.run --standalone`` (the engine behind ``torchrun``): one rendezvous on this
machine; if one process fails, the others are stopped, and rerunning the stage resumes from
its last checkpoint. Several machines need torchrun itself, run by hand or by a scheduler
(README "Scaling out").
"""

from __future__ import annotations

import os
import sys


def command(nproc: int, script: str, args: list[str]) -> list[str]:
    """The command line that runs ``script`` with ``args`` as ``nproc`` processes."""
    if nproc == 1:
        return [sys.executable, script, *args]
    return [sys.executable, "-m", "torch.distributed.run", "--standalone",
            f"--nproc_per_node={nproc}", script, *args]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) < 2 or argv[0] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr if len(argv) < 2 else sys.stdout)
        return 0 if argv[:1] in (["-h"], ["--help"]) else 2
    try:
        nproc = int(argv[0])
    except ValueError:
        nproc = 0
    if nproc < 1:
        print(f"error: scale.nproc = {argv[0]}: must be an integer >= 1", file=sys.stderr)
        return 2
    cmd = command(nproc, argv[1], argv[2:])
    sys.stdout.flush()
    os.execv(cmd[0], cmd)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
