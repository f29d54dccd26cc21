"""The explanation cache: keys, round trips, concurrent writers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from explain.cache import ExplanationCache, cache_key


def test_key_changes_with_model_text_label_settings_and_method():
    def key(*args: object, method: str = "sampled") -> str:
        return cache_key(*args, method=method)  # type: ignore[arg-type]

    base = key("m1", "Sales rose.", "positive", {"a": 1})
    assert base == key("m1", "Sales rose.", "positive", {"a": 1})
    assert (
        len(
            {
                base,
                key("m2", "Sales rose.", "positive", {"a": 1}),
                key("m1", "Sales rose!", "positive", {"a": 1}),
                key("m1", "Sales rose.", "neutral", {"a": 1}),
                key("m1", "Sales rose.", "positive", {"a": 2}),
                key("m1", "Sales rose.", "positive", {"a": 1}, method="amortized"),
            }
        )
        == 6
    )


def test_sampled_keys_are_those_of_caches_filled_before_methods_existed():
    import hashlib
    import json

    before = json.dumps(["m1", "Sales rose.", "positive", {"a": 1}], separators=(",", ":"))
    assert cache_key("m1", "Sales rose.", "positive", {"a": 1}, method="sampled") == (
        hashlib.sha256(before.encode()).hexdigest()
    )


def test_round_trip(tmp_path: Path):
    cache = ExplanationCache(tmp_path / "c.sqlite")
    cache.put_many({"k1": ("m1", {"values": [0.5, -0.25], "words": ["a", "b"]})})
    again = ExplanationCache(tmp_path / "c.sqlite")
    assert again.get_many(["k1", "k2"]) == {"k1": {"values": [0.5, -0.25], "words": ["a", "b"]}}
    assert (again.hits, again.misses) == (1, 1)
    assert len(again) == 1


_WRITER = """
import sys
from pathlib import Path
from explain.cache import ExplanationCache
cache = ExplanationCache(Path(sys.argv[1]))
me, other = sys.argv[2], sys.argv[3]
for i in range(40):
    cache.put_many({f"{me}-{i}": ("m", {"i": i})})
    cache.get_many([f"{other}-{i}"])
sys.exit(0 if cache.usable else 3)
"""


def test_two_processes_write_concurrently(tmp_path: Path):
    path = tmp_path / "shared.sqlite"
    ExplanationCache(path)
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(path), me, other], cwd=root)
        for me, other in (("a", "b"), ("b", "a"))
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    assert len(ExplanationCache(path)) == 80


def test_a_corrupt_cache_file_is_skipped(tmp_path: Path):
    path = tmp_path / "bad.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    cache = ExplanationCache(path)
    assert cache.get_many(["k"]) == {}
    cache.put_many({"k": ("m", {})})
    assert not cache.usable
