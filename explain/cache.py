"""A disk cache of explanations keyed by (model digest, sentence text, label, settings, method).

Boilerplate repeats across filings and years ("The Company's auditors have issued an
unqualified opinion"); it is explained once per model. The cache is one SQLite file in WAL mode
so Ray actors in several processes can read while one writes; every call opens its own short
connection (sqlite3 connections may not cross threads) and a busy writer is waited for.
A cache that cannot be read or written never fails an explanation: it is logged and skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS explanations (
    key TEXT PRIMARY KEY,
    model_digest TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at REAL NOT NULL
)
"""


def cache_key(
    model_digest: str,
    text: str,
    label: str,
    settings: Mapping[str, Any],
    *,
    method: str,
) -> str:
    """sha256 over everything that changes an explanation's numbers, the method first of all.

    Sampled keys keep the layout they had before there were methods, so a cache filled then
    (hours of model passes) stays valid; every other method adds its name to the key, so
    sampled and amortized values never mix whatever their settings.
    """
    parts: list[Any] = [model_digest, text, label, dict(sorted(settings.items()))]
    if method != "sampled":
        parts.append({"method": method})
    blob = json.dumps(parts, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class ExplanationCache:
    """Explanations' numbers on disk, shared safely between threads and processes."""

    def __init__(self, path: Path, *, timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.timeout_s = timeout_s
        self.hits = 0
        self.misses = 0
        self.usable = True
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self._connect() as con:
                con.execute("PRAGMA journal_mode=WAL")
                con.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            self._disable(f"cannot open the explanation cache at {self.path}: {e}")

    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.path, timeout=self.timeout_s)
        con.execute("PRAGMA synchronous=NORMAL")
        return con

    def _disable(self, why: str) -> None:
        _log.warning("%s; explaining without the cache", why)
        self.usable = False

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The cached payloads among `keys` (missing keys are simply absent)."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        if not self.usable or not wanted:
            self.misses += len(wanted)
            return found
        try:
            con = self._connect()
            try:
                for start in range(0, len(wanted), 500):  # stay under SQLite's variable limit
                    part = wanted[start : start + 500]
                    marks = ",".join("?" * len(part))
                    rows = con.execute(
                        f"SELECT key, payload FROM explanations WHERE key IN ({marks})", part
                    )
                    found.update((k, json.loads(p)) for k, p in rows)
            finally:
                con.close()
        except (OSError, sqlite3.Error, json.JSONDecodeError) as e:
            self._disable(f"cannot read the explanation cache at {self.path}: {e}")
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        return found

    def put_many(self, items: Mapping[str, tuple[str, dict[str, Any]]]) -> None:
        """Store payloads: key -> (model digest, payload)."""
        if not self.usable or not items:
            return
        now = time.time()
        rows = [
            (k, digest, json.dumps(p, separators=(",", ":")), now)
            for k, (digest, p) in items.items()
        ]
        try:
            con = self._connect()
            try:
                with con:
                    con.executemany("INSERT OR REPLACE INTO explanations VALUES (?, ?, ?, ?)", rows)
            finally:
                con.close()
        except (OSError, sqlite3.Error) as e:
            self._disable(f"cannot write the explanation cache at {self.path}: {e}")

    def __len__(self) -> int:
        if not self.usable:
            return 0
        con = self._connect()
        try:
            return int(con.execute("SELECT COUNT(*) FROM explanations").fetchone()[0])
        finally:
            con.close()
