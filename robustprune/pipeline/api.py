"""Every stage function in one namespace, for tests and scripts that drive several stages
in-process. The stage scripts never import this module: each imports its own stage module, so
that DVC's dependencies of a stage are the code it runs."""

from __future__ import annotations

from robustprune.data import load_splits
from robustprune.pipeline import CHECKPOINT_ROOT, STATE_FORMAT, file_digest, fingerprint
from robustprune.pipeline.checkpoints import load_for_data, load_trained
from robustprune.pipeline.corrupt import corrupt
from robustprune.pipeline.evaluate import evaluate, runtime_info
from robustprune.pipeline.fit import learning_hint
from robustprune.pipeline.prepare import prepare
from robustprune.pipeline.publish import publish
from robustprune.pipeline.scoring import scoring
from robustprune.pipeline.train import full_epoch_passes, train
from robustprune.pipeline.warmup import warmup

__all__ = ["CHECKPOINT_ROOT", "STATE_FORMAT", "corrupt", "evaluate", "file_digest",
           "fingerprint", "full_epoch_passes", "learning_hint", "load_for_data", "load_splits",
           "load_trained", "prepare", "publish", "runtime_info", "scoring", "train", "warmup"]
