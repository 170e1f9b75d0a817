"""What travels between the client and ``finegrain serve``: the error types, the JSON body encoding
(numpy/torch values, base64 spliced in without an escape scan) and HTTP over a Unix domain socket."""

from __future__ import annotations

import http.client
import json
import os
import socket
from typing import Any, List, Optional, Sequence

import numpy as np

from . import _tensors


class FineGrainError(Exception):
    """A request to the FineGrain service failed.

    Attributes:
        status: the HTTP status (400 bad input, 401 bad/missing token, 404 unknown method or route,
            413 body too large, 5xx server trouble), or ``None`` when no answer came back.
        message: the server's ``"error"`` message (or a description of the transport failure).
        body: the decoded JSON error body when there was one, else the raw text (or ``None``).
    """

    def __init__(self, status: Optional[int], message: str, body: Any = None):
        self.status = status
        self.message = message
        self.body = body
        super().__init__(f"HTTP {status}: {message}" if status is not None else message)


class FineGrainConnectionError(FineGrainError):
    """The service could not be reached (refused, timed out, connection dropped); ``status`` is ``None``."""

    def __init__(self, message: str):
        super().__init__(None, message)


def _error_from(status: int, reason: str, raw: bytes, what: str) -> FineGrainError:
    """The error for a 4xx/5xx answer: the server's ``{"error": ...}`` message when there is one."""
    text = raw.decode("utf-8", errors="replace")
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("error"), str):
        return FineGrainError(status, doc["error"], doc)
    return FineGrainError(status, f"{reason} ({what})" + (f": {text[:500]}" if text else ""), text or None)


def _json_default(x: Any) -> Any:
    """json.dumps fallback: numpy arrays/scalars and torch tensors become plain lists/numbers."""
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray) or hasattr(x, "detach"):
        return _tensors.as_numpy(x).tolist()
    raise TypeError(f"object of type {type(x).__name__} is not JSON serializable")


def _dump_body(body: Any) -> bytes:
    """JSON bytes of ``body``; :class:`_tensors.RawBase64` values are spliced in after json.dumps (a
    placeholder string per value, unique to this call), which avoids scanning megabytes of base64 for
    characters to escape."""
    raws: List[bytes] = []
    nonce = os.urandom(6).hex()

    def default(x: Any) -> Any:
        if isinstance(x, _tensors.RawBase64):
            raws.append(x.data)
            return f"@fg-{nonce}-{len(raws) - 1}@"
        return _json_default(x)

    text = json.dumps(body, default=default, separators=(",", ":")).encode("utf-8")
    if not raws:
        return text
    parts: List[bytes] = []
    pos = 0
    for i, data in enumerate(raws):
        marker = f'"@fg-{nonce}-{i}@"'.encode("ascii")
        at = text.index(marker, pos)
        parts += [text[pos:at], b'"', data, b'"']
        pos = at + len(marker)
    parts.append(text[pos:])
    return b"".join(parts)


class _UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix domain socket (``finegrain serve --unix PATH``)."""

    def __init__(self, path: str, timeout: float):
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _index_list(index: Sequence[Any]) -> List[Any]:
    """verl's ``uid`` array (object dtype: str / int / uuid) as a JSON list of strings and ints."""
    out: List[Any] = []
    for x in (index.tolist() if isinstance(index, np.ndarray) else index):
        if isinstance(x, (bool, np.bool_)):
            out.append(str(x))
        elif isinstance(x, (int, np.integer)):
            out.append(int(x))
        elif isinstance(x, str):
            out.append(x)
        elif isinstance(x, bytes):
            out.append(x.decode("utf-8", errors="replace"))
        else:
            out.append(str(x))
    return out
