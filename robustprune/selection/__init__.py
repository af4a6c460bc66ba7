"""Selection methods: which examples each epoch (a :class:`~.base.SubsetSelector`) and how much
attack each example of a batch gets (a :class:`~.base.BatchMiner`).

The registries and the ``methods`` section live in :mod:`.registry`, which imports every
selector and miner. This package file imports nothing on purpose: the training loop needs only
the interfaces (:mod:`.base`) and the warm-up only :mod:`.full` and :mod:`.scoring`, so an edit
to one method (BulletTrain, a coreset) reruns the train stages and leaves the warm-up alone.
To add a method: subclass either interface in a new module, give it a ``name`` and, if it has
params, an ``Options`` section, and import the class in :mod:`.registry` (that line registers
it). The params, the pipeline and the training loop need no change.
"""
