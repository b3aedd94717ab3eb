"""Exact and near-duplicate detection over a stream of texts (the first occurrence is kept)."""

from __future__ import annotations

import hashlib
import re
from typing import Any

from .._core.errors import require
from .rules import DedupRule

_SPACES = re.compile(r"\s+")


class Deduplicator:
    """Remembers the texts it has let through: ``check(text)`` -> ``duplicate`` / ``near_duplicate`` / None (and
    remembers a text that passes). Memory grows with the texts kept: 16 bytes each for exact, ``num_perm`` x 4
    bytes plus the LSH tables for near."""

    def __init__(self, rule: DedupRule) -> None:
        self.rule = rule
        self._seen: set[bytes] = set()
        self._lsh: Any = None
        self._count = 0
        if rule.near is not None:
            datasketch = require("datasketch", "near-duplicate removal", "datasketch==2.0.0")
            self._lsh = datasketch.MinHashLSH(threshold=rule.near, num_perm=rule.num_perm)
            self._minhash = datasketch.MinHash
            self._permutations = datasketch.MinHash(num_perm=rule.num_perm, seed=1).permutations

    def check(self, text: str) -> str | None:
        normal = _SPACES.sub(" ", text.strip().lower())
        key = hashlib.blake2b(normal.encode(), digest_size=16).digest()
        if self.rule.exact and key in self._seen:
            return "duplicate"
        if self._lsh is not None:
            m = self._signature(normal)
            if self._lsh.query(m):
                return "near_duplicate"
            self._lsh.insert(str(self._count), m)
        self._seen.add(key)
        self._count += 1
        return None

    def _signature(self, normal: str) -> Any:
        words = normal.split(" ")
        k = self.rule.shingle
        shingles = {" ".join(words[i:i + k]).encode() for i in range(max(1, len(words) - k + 1))}
        m = self._minhash(num_perm=self.rule.num_perm, seed=1, permutations=self._permutations, scheme="affine32")
        m.update_batch(list(shingles))
        return m
