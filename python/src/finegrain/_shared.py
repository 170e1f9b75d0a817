"""Clients configured from the environment, and one cached client per configuration for the adapters."""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Dict, Optional, Tuple

if TYPE_CHECKING:
    from .client import Client


def _settings(url: Optional[str], token: Optional[str], timeout: Optional[float]) -> Tuple[str, Optional[str], float, Optional[str]]:
    from .client import DEFAULT_URL
    return (url or os.environ.get("FINEGRAIN_URL") or DEFAULT_URL,
            token if token is not None else (os.environ.get("FINEGRAIN_TOKEN") or None),
            timeout if timeout is not None else float(os.environ.get("FINEGRAIN_TIMEOUT", "60")),
            os.environ.get("FINEGRAIN_SHM_DIR") or None)


def client_from_env(url: Optional[str] = None, token: Optional[str] = None,
                    timeout: Optional[float] = None) -> "Client":
    """A :class:`~finegrain.client.Client` configured from ``FINEGRAIN_URL`` / ``FINEGRAIN_TOKEN`` /
    ``FINEGRAIN_TIMEOUT`` unless given explicitly, and ``FINEGRAIN_SHM_DIR`` (the server's ``--shm-dir``,
    for a server on this machine)."""
    from .client import Client
    u, t, s, shm = _settings(url, token, timeout)
    return Client(u, token=t, timeout=s, shm_dir=shm)


_SHARED: Dict[Tuple[str, Optional[str], float, Optional[str]], "Client"] = {}
_SHARED_LOCK = threading.Lock()


def shared_client(url: Optional[str] = None, token: Optional[str] = None,
                  timeout: Optional[float] = None) -> "Client":
    """Like :func:`client_from_env`, but one cached client per (url, token, timeout, shm dir), so the
    adapters reuse keep-alive connections (and shared-memory files) across training steps. The
    environment is read on every call, so changing ``FINEGRAIN_URL`` takes effect on the next one."""
    from .client import Client
    key = _settings(url, token, timeout)
    with _SHARED_LOCK:
        c = _SHARED.get(key)
        if c is None:
            c = _SHARED[key] = Client(key[0], token=key[1], timeout=key[2], shm_dir=key[3])
        return c
