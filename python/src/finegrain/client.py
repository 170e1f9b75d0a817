"""HTTP client for ``finegrain serve`` (standard library + numpy only).

    from finegrain import Client
    fg = Client()                                   # http://127.0.0.1:8321, no token
    adv, ret = fg.advantages_padded("grpo", token_level_rewards, response_mask, index=uids)

One ``Client`` keeps one keep-alive connection per thread and reopens it when the server closed it, so a
training loop that calls it every step pays the TCP handshake once. Every failure is a
:class:`FineGrainError` (HTTP status + the server's ``{"error": ...}`` message); a server that cannot be
reached raises :class:`FineGrainConnectionError`, a subclass whose ``status`` is ``None``.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import threading
import urllib.parse
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from . import _tensors
from ._shm import SharedFiles
from ._wire import (FineGrainConnectionError, FineGrainError, _dump_body, _error_from, _index_list, _json_default,
                    _UnixHTTPConnection)

__all__ = ["DEFAULT_URL", "Client", "FineGrainError", "FineGrainConnectionError", "client_from_env", "shared_client"]

DEFAULT_URL = "http://127.0.0.1:8321"


class Client:
    """A connection to one FineGrain service.

    Args:
        url: base URL of ``finegrain serve`` (``http://host:port``; an ``https`` URL uses TLS;
            ``unix:/path/to.sock`` for a server started with ``--unix /path/to.sock`` on this machine).
        token: bearer token, sent as ``Authorization: Bearer <token>`` (the server's ``--token``).
        timeout: seconds to wait for connecting and for each answer.
        shm_dir: the ``--shm-dir`` of a server on this machine (e.g. ``/dev/shm/finegrain``): large dense
            tensors and the answers of :meth:`advantages_padded` then go through files there, not the body.

    The client is safe to share between threads (each thread gets its own connection).
    """

    def __init__(self, url: str = DEFAULT_URL, token: Optional[str] = None, timeout: float = 60,
                 shm_dir: Optional[str] = None):
        self._shm = SharedFiles(shm_dir) if shm_dir else None
        self._unix: Optional[str] = None
        if url.startswith("unix:"):
            # ``unix:/path/to.sock`` or ``unix:///path/to.sock``: a server started with ``--unix`` on this
            # machine (no TCP stack; the socket file's permissions are the access control).
            path = url[len("unix:"):]
            path = "/" + path.lstrip("/") if path.startswith("//") else path
            if not path:
                raise ValueError(f"no socket path in URL {url!r}")
            self._unix = path
            url = "http://localhost"
        parsed = urllib.parse.urlsplit(url if "://" in url else "http://" + url)
        if parsed.scheme not in ("http", "https"):
            raise ValueError(f"unsupported URL scheme in {url!r} (expected http or https)")
        if not parsed.hostname:
            raise ValueError(f"no host in URL {url!r}")
        self.url = f"unix:{self._unix}" if self._unix else url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._https = parsed.scheme == "https"
        self._host = parsed.hostname
        self._port = parsed.port or (443 if self._https else 80)
        self._prefix = parsed.path.rstrip("/")
        self._local = threading.local()
        #: Connections opened so far (all threads); a keep-alive client opens one per thread.
        self.connections_opened = 0
        #: ``diagnostics`` of the last advantages answer in any thread (informational).
        self.last_diagnostics: Dict[str, Any] = {}
        #: per-item outcomes (``"ok"``, ``"timeout"``, ``"not_run"``) of the last :meth:`rewards` answer.
        self.last_outcomes: List[str] = []

    # ------------------------------------------------------------------ transport

    def __repr__(self) -> str:
        return f"Client(url={self.url!r}, token={'***' if self.token else None}, timeout={self.timeout})"

    def close(self) -> None:
        """Close this thread's connection (it is reopened on the next request)."""
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            if self._unix:
                conn = _UnixHTTPConnection(self._unix, timeout=self.timeout)
            else:
                cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
                conn = cls(self._host, self._port, timeout=self.timeout)
            self._local.conn = conn
            self.connections_opened += 1
        return conn

    def request(self, method: str, path: str, body: Any = None) -> Any:
        """Send one request and return the decoded JSON answer.

        ``body`` (a JSON-able object; numpy arrays are converted) is sent as ``application/json``.
        Raises :class:`FineGrainError` on any 4xx/5xx answer and :class:`FineGrainConnectionError` when
        the service cannot be reached. A request on a kept-alive connection that the server had closed
        is retried once on a fresh connection (every route is a pure computation, so this is safe).
        """
        payload = None
        headers = {"Accept": "application/json"}
        if body is not None:
            payload = _dump_body(body)
            headers["Content-Type"] = "application/json"
        status, reason, raw, _ = self._send(method, path, payload, headers)
        if status >= 400:
            raise _error_from(status, reason, raw, f"{method} {path}")
        text = raw.decode("utf-8", errors="replace")
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            doc = None
        if doc is None and text:
            raise FineGrainError(status, f"answer to {method} {path} is not JSON: {text[:200]}", text)
        return doc

    def _post_framed(self, path: str, body: Any, frame: "_tensors.Frame") -> Tuple[Any, memoryview]:
        """POST a framed body (JSON part, then ``frame``'s bytes); returns the answer's JSON part and frame."""
        header = _dump_body(body)
        # The parts as a list with a Content-Length: http.client sends each as it is (no join, no chunking).
        status, reason, raw, headers = self._send("POST", path, [header, *frame.chunks], {
            "Content-Type": _tensors.FRAMED, "FineGrain-Header-Length": str(len(header)), "Accept": _tensors.FRAMED,
            "Content-Length": str(len(header) + frame.size)})
        if status >= 400:
            raise _error_from(status, reason, raw, f"POST {path}")
        n = headers.get("FineGrain-Header-Length")
        if not (n or "").isdigit() or int(n) > len(raw):
            raise FineGrainError(status, f"answer to POST {path} is not framed (FineGrain-Header-Length {n!r})", raw[:200])
        view = memoryview(raw)
        return json.loads(bytes(view[:int(n)])), view[int(n):]

    def _send(self, method: str, path: str, payload: Union[None, bytes, List[Any]],
              headers: Dict[str, str]) -> Tuple[int, str, bytes, Any]:
        """One exchange on this thread's kept-alive connection: (status, reason, body bytes, headers)."""
        headers = dict(headers)
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        full = self._prefix + path
        for attempt in (0, 1):
            reused = getattr(self._local, "conn", None) is not None
            conn = self._connection()
            try:
                conn.request(method, full, body=payload, headers=headers)
                resp = conn.getresponse()
                status, reason, raw, answer_headers = resp.status, resp.reason, resp.read(), resp.headers
                if resp.will_close:
                    self.close()
                return status, reason, raw, answer_headers
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError,
                    http.client.CannotSendRequest, http.client.BadStatusLine) as e:
                self.close()
                if attempt == 0 and reused:
                    continue  # stale keep-alive connection: retry once on a new one
                raise FineGrainConnectionError(f"connection to {self.url} failed: {e!r}") from e
            except (OSError, socket.timeout, http.client.HTTPException) as e:
                self.close()
                raise FineGrainConnectionError(f"cannot reach FineGrain service at {self.url}: {e}") from e
        raise AssertionError("unreachable")

    # ------------------------------------------------------------------ routes

    def health(self) -> Dict[str, Any]:
        """``GET /healthz``: the server's status object (``{"status": "ok"}``); needs no token."""
        return self.request("GET", "/healthz")

    def methods(self) -> List[Dict[str, Any]]:
        """``GET /v1/methods``: the registry listing, one dict per method.

        Each has at least ``name``, ``kind`` (``"estimator"``, a loss kind, or ``"kl"``) and ``params``
        (a list of ``{"name", "type", "default", "doc", ...}``).
        """
        return list(self.request("GET", "/v1/methods")["methods"])

    def estimators(self) -> List[str]:
        """Names of the advantage estimators the server lists (``kind == "estimator"``)."""
        return [m["name"] for m in self.methods() if m.get("kind") == "estimator"]

    def advantages(self, estimator: str, rollouts: Sequence[Mapping[str, Any]],
                   params: Optional[Mapping[str, Any]] = None) -> List[Dict[str, Any]]:
        """``POST /v1/advantages``, rollouts form (DESIGN contract 4).

        Args:
            estimator: registry name, e.g. ``"grpo"``.
            rollouts: objects as in the rollout JSONL contract (``group``, ``tokens``, ``reward``,
                optional ``mask``, ``values``, ``token_rewards``, ``step_ends``, ...).
            params: estimator parameters (see :meth:`methods`).

        Returns:
            the rollout objects as the server returns them, each with ``"advantages"`` (and ``"returns"``
            where defined). The answer's ``diagnostics`` are kept in :attr:`last_diagnostics`.
        """
        body: Dict[str, Any] = {"estimator": estimator, "rollouts": list(rollouts)}
        if params:
            body["params"] = dict(params)
        doc = self.request("POST", "/v1/advantages", body)
        self.last_diagnostics = doc.get("diagnostics") or {}
        return doc["rollouts"]

    def advantages_jsonl(self, estimator: str, lines: Union[bytes, str, "os.PathLike[str]"],
                         params: Optional[Mapping[str, Any]] = None) -> bytes:
        """``POST /v1/advantages`` with a rollout JSON-lines body (``application/x-ndjson``).

        Args:
            estimator: registry name, e.g. ``"grpo"`` (sent in the query, as are ``params``).
            lines: the JSONL text (``bytes`` or ``str``), or a path to a ``.jsonl`` file, one rollout
                object per line exactly as ``finegrain advantages --input`` reads it.
            params: estimator parameters (see :meth:`methods`).

        Returns:
            the answer's JSON lines (bytes): each input line plus ``"advantages"`` (and ``"returns"``
            where defined), in input order, as ``finegrain advantages`` writes them. The diagnostics
            header is kept in :attr:`last_diagnostics`.
        """
        if isinstance(lines, str):
            payload = lines.encode("utf-8")
        elif isinstance(lines, (bytes, bytearray)):
            payload = bytes(lines)
        else:
            with open(lines, "rb") as f:
                payload = f.read()
        query = {"estimator": estimator}
        if params:
            query["params"] = json.dumps(dict(params), default=_json_default, separators=(",", ":"))
        # %20, not "+", for spaces: the server percent-decodes the query but reads "+" as itself.
        path = "/v1/advantages?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
        status, reason, raw, headers = self._send("POST", path, payload, {
            "Content-Type": "application/x-ndjson", "Accept": "application/x-ndjson"})
        if status >= 400:
            raise _error_from(status, reason, raw, "POST /v1/advantages")
        self.last_diagnostics = json.loads(headers.get("FineGrain-Diagnostics") or "{}")
        return raw

    def advantages_padded(self, estimator: str, token_level_rewards: Any, response_mask: Any,
                          index: Optional[Sequence[Any]] = None, values: Any = None,
                          old_log_probs: Any = None, ref_log_prob: Any = None,
                          reward_baselines: Any = None, params: Optional[Mapping[str, Any]] = None,
                          encoding: str = "framed") -> Tuple[np.ndarray, np.ndarray]:
        """``POST /v1/advantages``, verl form: padded ``[B, R]`` tensors in, ``(advantages, returns)`` out.

        Args:
            estimator: registry name.
            token_level_rewards: ``[B, R]`` rewards (outcome on the last valid token, or dense).
            response_mask: ``[B, R]`` 1 on policy tokens, 0 on padding / tool tokens (any int/bool/float dtype).
            index: ``B`` group ids (strings or ints; verl's ``uid``); ``None`` = one group per row.
            values, old_log_probs, ref_log_prob: optional ``[B, R]`` columns the estimator may need.
            reward_baselines: optional ``[B]`` (ReMax).
            params: estimator parameters.
            encoding: ``"framed"`` (default: dense tensors as raw bytes after the JSON, both directions),
                ``"base64"`` (compact tensors inside the JSON) or ``"json"`` (nested lists).

        Inputs may be numpy arrays, nested lists or torch tensors (moved to the CPU).

        Returns:
            ``(advantages, returns)``, numpy float32 arrays of shape ``[B, R]`` (full width: padded
            positions hold what verl computes there). If the server sends no ``returns`` (an estimator
            without them), the advantages are returned twice, as verl's outcome estimators do.
        """
        if encoding not in ("framed", "base64", "json"):
            raise ValueError(f"unknown encoding {encoding!r} (expected 'framed', 'base64' or 'json')")
        raw = encoding != "json"
        shm = self._shm if raw else None
        # Framed unless shared memory carries the big tensors (then the answer goes there too).
        frame = _tensors.Frame() if encoding == "framed" and shm is None else None
        if shm is not None:
            shm.begin()
        response_mask = _tensors.as_numpy(response_mask)  # once: sent, then used to expand row_values
        # base64: the lossless short forms where they are smaller (sparse outcome rewards, a row-lengths
        # mask; the server's WireShortForms), else shared-memory references (shm_dir) or dense compact tensors.
        verl: Dict[str, Any] = {
            "token_level_rewards": _tensors.encode_column(token_level_rewards, encoding, raw=raw, short=True, shm=shm,
                                                          frame=frame),
            "response_mask": (_tensors.encode_mask_short(response_mask, raw=True) if raw
                              else _tensors.encode(response_mask, encoding)),
        }
        if index is not None:
            verl["index"] = _index_list(index)
        for key, val in (("values", values), ("old_log_probs", old_log_probs),
                         ("ref_log_prob", ref_log_prob), ("reward_baselines", reward_baselines)):
            if val is not None:
                verl[key] = _tensors.encode_column(val, encoding, raw=raw, frame=frame,
                                                   shm=shm if key != "reward_baselines" else None)
        # Outcome estimators (GRPO, RLOO, ...) return the advantages as returns: the server then sends one
        # tensor and says so, and the copy is made here (half the answer's bytes).
        body: Dict[str, Any] = {"estimator": estimator, "verl": verl, "encoding": "base64" if raw else "json",
                                "omit_returns_if_advantages": True, "row_values_if_constant": raw}
        if params:
            body["params"] = dict(params)
        if shm is not None and response_mask.ndim == 2:  # room for advantages and returns as float32
            body["answer_shm"] = shm.answer_area(2 * 4 * response_mask.size)
        answer_frame = None
        if frame is not None:
            doc, answer_frame = self._post_framed("/v1/advantages", body, frame)
        else:
            doc = self.request("POST", "/v1/advantages", body)
        self.last_diagnostics = doc.get("diagnostics") or {}
        if "advantages" not in doc:
            raise FineGrainError(200, f"answer has no 'advantages' (keys: {sorted(doc)})", doc)
        adv = _tensors.decode(doc["advantages"], np.float32, mask=response_mask, shm=shm, frame=answer_frame)
        # No "returns" (``returns_are_advantages``, or an estimator without them): verl's outcome estimators
        # hand back the advantages twice.
        ret = (_tensors.decode(doc["returns"], np.float32, mask=response_mask, shm=shm, frame=answer_frame)
               if doc.get("returns") is not None else adv.copy())
        return adv, ret

    def losses(self, loss: str, rollouts: Sequence[Mapping[str, Any]],
               params: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """``POST /v1/losses``: a policy/value loss over rollouts carrying ``logprobs``, ``old_logprobs``,
        ``advantages`` (and ``mask``, ...).

        Returns:
            ``{"loss": float, "metrics": {...}, "gradients": [[d loss / d logprob] per rollout]}``.
        """
        body: Dict[str, Any] = {"loss": loss, "rollouts": list(rollouts)}
        if params:
            body["params"] = dict(params)
        return self.request("POST", "/v1/losses", body)

    def losses_padded(self, loss: str, response_mask: Any, params: Optional[Mapping[str, Any]] = None,
                      encoding: str = "framed", **tensors: Any) -> Tuple[float, Dict[str, float], np.ndarray]:
        """``POST /v1/losses``, verl form: padded ``[B, R]`` tensors in, ``(loss, metrics, gradient)`` out.

        Args:
            loss: registry name (``"vanilla"``, ``"gspo"``, ``"dppo_tv"``, ...).
            response_mask: ``[B, R]`` 0/1.
            params: loss parameters (``clip_ratio``, ``loss_agg_mode``, verl's ``dp_size`` /
                ``batch_num_tokens`` / ``global_batch_size`` ...).
            **tensors: ``[B, R]`` inputs by verl's names: ``log_prob``, ``old_log_prob``, ``advantages``,
                ``rollout_is_weights``, ``ref_log_prob``, ``entropy``, ``values``, ``vpreds``, ``returns``
                (``None`` values are skipped).

        Returns:
            the loss value, its metrics, and ``gradient`` = d loss / d (``log_prob``, or ``vpreds`` for
            value losses) as a float32 ``[B, R]`` array.
        """
        if encoding not in ("framed", "base64", "json"):
            raise ValueError(f"unknown encoding {encoding!r} (expected 'framed', 'base64' or 'json')")
        raw = encoding != "json"
        frame = _tensors.Frame() if encoding == "framed" else None  # the gradient then comes back framed too
        verl: Dict[str, Any] = {"response_mask": (_tensors.encode_mask_short(response_mask, raw=True) if raw
                                                  else _tensors.encode(response_mask, encoding))}
        for key, val in tensors.items():
            if val is not None:
                verl[key] = _tensors.encode_column(val, encoding, raw=raw, frame=frame)
        body: Dict[str, Any] = {"loss": loss, "verl": verl, "encoding": "base64" if raw else "json"}
        if params:
            body["params"] = dict(params)
        doc, answer_frame = (self._post_framed("/v1/losses", body, frame) if frame is not None
                             else (self.request("POST", "/v1/losses", body), None))
        if "gradient" not in doc or "loss" not in doc:
            raise FineGrainError(200, f"answer has no 'loss'/'gradient' (keys: {sorted(doc)})", doc)
        gradient = _tensors.decode(doc["gradient"], np.float32, frame=answer_frame)
        return float(doc["loss"]), dict(doc.get("metrics") or {}), gradient

    def rewards(self, verifier: str, responses: Sequence[str], labels: Sequence[str],
                item_timeout_s: Optional[float] = None) -> List[Optional[float]]:
        """``POST /v1/rewards``: score ``responses`` against ``labels`` with a built-in verifier
        (``"math_answer"``, ``"exact_match"``, ``"gsm8k"``).

        Each item has its own deadline, counted from the start of its own scoring (``item_timeout_s``,
        else the server's ``--reward-item-timeout``). Returns one float per response, or ``None`` for an
        item that timed out (a distinct outcome, not a reward of 0); the per-item outcomes (``"ok"``,
        ``"timeout"``, ``"not_run"``) are kept in :attr:`last_outcomes`."""
        if len(responses) != len(labels):
            raise ValueError(f"{len(responses)} responses but {len(labels)} labels")
        body: Dict[str, Any] = {"verifier": verifier, "responses": list(responses), "labels": list(labels)}
        if item_timeout_s is not None:
            body["item_timeout_s"] = float(item_timeout_s)
        doc = self.request("POST", "/v1/rewards", body)
        self.last_outcomes = list(doc.get("outcomes") or [])
        return [None if r is None else float(r) for r in doc["rewards"]]

    def openrlhf_reward(self, queries: Sequence[str], prompts: Sequence[str], labels: Sequence[str]) -> Dict[str, Any]:
        """``POST /v1/openrlhf/reward`` (OpenRLHF's remote reward protocol): the answer
        ``{"rewards": [...], "scores": [...], "extra_logs": {...}}``."""
        return self.request("POST", "/v1/openrlhf/reward",
                            {"query": list(queries), "prompts": list(prompts), "labels": list(labels)})


# From the environment, and one cached client per configuration (``_shared``; re-exported here).
from ._shared import client_from_env, shared_client  # noqa: E402
