"""Same-host shared-memory transport for large tensors (the server's ``SharedMemory``).

With a server started as ``finegrain serve --shm-dir DIR`` on this machine, a dense ``[B, R]`` tensor need
not travel in the body: the client writes its little-endian bytes into a file of its own in ``DIR`` and
sends ``{"dtype", "shape", "shm": file name, "offset": byte offset}``; with ``"answer_shm"`` the server
writes the answer's float32 tensors into a second file of the client's and answers with references to
them. ``DIR`` should be on a tmpfs (``/dev/shm/...``): nothing then touches a disk.

Each thread has its own pair of files (requests from one thread run one at a time, so a pair is never
shared by two requests in flight); they are grown as needed, reused for every request and removed by
:meth:`SharedFiles.close` or at interpreter exit. The files are created mode 0600: the server must run as
the same user.
"""

from __future__ import annotations

import atexit
import mmap
import os
import secrets
import threading
import weakref
from typing import Any, Dict, List, Optional

import numpy as np

_ALIGN = 64  # each tensor starts on a cache line


class _File:
    """One growable, memory-mapped file."""

    def __init__(self, path: str):
        self.path = path
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        self.size = 0
        self.map: Optional[mmap.mmap] = None

    def ensure(self, nbytes: int) -> None:
        """At least ``nbytes`` long (the mapping is redone when it grows; earlier bytes are kept)."""
        if nbytes <= self.size:
            return
        size = max(nbytes, 2 * self.size, 1 << 20)
        if self.map is not None:
            self.map.close()
        os.ftruncate(self.fd, size)
        self.map = mmap.mmap(self.fd, size)
        self.size = size

    def close(self) -> None:
        if self.map is not None:
            self.map.close()
            self.map = None
        os.close(self.fd)
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


class _Pair:
    """A thread's request file and answer file."""

    def __init__(self, directory: str):
        name = f"fg-{os.getpid()}-{threading.get_ident()}-{secrets.token_hex(4)}"
        self.name = name
        self.request = _File(os.path.join(directory, name))
        self.answer = _File(os.path.join(directory, name + "-answer"))
        self.used = 0

    def close(self) -> None:
        self.request.close()
        self.answer.close()


class SharedFiles:
    """The files of one :class:`~finegrain.client.Client` in the server's shared-memory directory."""

    def __init__(self, directory: str):
        if not os.path.isdir(directory):
            raise ValueError(f"shm_dir {directory!r} is not a directory")
        self.directory = directory
        self._local = threading.local()
        self._pairs: List[_Pair] = []
        self._lock = threading.Lock()
        atexit.register(SharedFiles._close_ref, weakref.ref(self))

    @staticmethod
    def _close_ref(ref: "weakref.ref[SharedFiles]") -> None:
        files = ref()
        if files is not None:
            files.close()

    def _pair(self) -> _Pair:
        pair = getattr(self._local, "pair", None)
        if pair is None:
            pair = _Pair(self.directory)
            self._local.pair = pair
            with self._lock:
                self._pairs.append(pair)
        return pair

    def begin(self) -> None:
        """Start a request: tensors are written from the start of this thread's request file again."""
        self._pair().used = 0

    def put(self, a: np.ndarray) -> Dict[str, Any]:
        """Writes ``a`` (float32, float64, int32, int64, uint8 or bool; C order) and returns its reference."""
        from ._tensors import WIRE_DTYPES, _dtype_name
        name = _dtype_name(a)   # KeyError for a dtype outside the contract (callers pass _wire_array's output)
        wire = np.ascontiguousarray(a, dtype=WIRE_DTYPES[name])
        pair = self._pair()
        offset = pair.used
        pair.request.ensure(offset + wire.nbytes)
        np.frombuffer(pair.request.map, dtype=np.uint8, count=wire.nbytes, offset=offset)[:] = wire.reshape(-1).view(np.uint8)
        pair.used = (offset + wire.nbytes + _ALIGN - 1) // _ALIGN * _ALIGN
        return {"dtype": name, "shape": list(a.shape), "shm": pair.name, "offset": offset}

    def answer_area(self, nbytes: int) -> Dict[str, Any]:
        """The ``answer_shm`` field for an answer of at most ``nbytes``."""
        pair = self._pair()
        pair.answer.ensure(nbytes)
        return {"name": pair.name + "-answer", "offset": 0, "capacity": pair.answer.size}

    def read(self, ref: Dict[str, Any], dtype: Any = np.float32) -> np.ndarray:
        """A copy of the answer tensor ``ref`` (the file is reused by the next request)."""
        pair = self._pair()
        if ref.get("shm") != pair.name + "-answer" or pair.answer.map is None:
            raise ValueError(f"answer tensor in {ref.get('shm')!r}, not in this thread's answer file")
        shape = tuple(int(s) for s in ref["shape"])
        count = int(np.prod(shape, dtype=np.int64))
        a = np.frombuffer(pair.answer.map, dtype="<f4", count=count, offset=int(ref["offset"]))
        return a.reshape(shape).astype(dtype, copy=True)

    def close(self) -> None:
        """Removes every thread's files (a later request makes new ones)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for p in pairs:
            p.close()
        self._local = threading.local()
