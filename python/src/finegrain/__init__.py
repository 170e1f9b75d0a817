"""FineGrain: Python client and framework adapters for the ``finegrain serve`` HTTP service.

- :class:`finegrain.Client` — the service's routes (advantages in rollout or padded verl layout, losses,
  rewards, method listing), standard library + numpy only.
- :mod:`finegrain.verl` — registers ``finegrain_<estimator>`` advantage estimators with verl.
- :mod:`finegrain.trl` — token-level advantages for TRL's ``GRPOTrainer``.
- :mod:`finegrain.openrlhf` — OpenRLHF remote reward URL and a ``reward_func`` file.

The adapters import their framework lazily; ``import finegrain`` needs only numpy.
"""

from .client import DEFAULT_URL, Client, FineGrainConnectionError, FineGrainError, client_from_env

__version__ = "0.1.0"

__all__ = ["Client", "FineGrainError", "FineGrainConnectionError", "DEFAULT_URL", "client_from_env", "__version__"]
