"""Provenance of loaded data: which files a split was read from, and their SHA-256.

Every reader fills ``ArrayDataset.files`` (absolute path -> SHA-256 hex of the bytes it read) in
the same pass that reads the bytes, so hashing costs one pass over data already in memory.
Generated data (``fake``, ``synthetic``) has no files. A ``folder:`` dataset may hold hundreds of
thousands of images, so it records one entry instead: the folder's absolute path -> the SHA-256
over the split's files as sorted ``"<relative posix path>\\t<file sha256>\\n"`` lines
(``folder_digest``); any added, removed, renamed or changed image of the split changes it.

``provenance(ds)`` gives the JSON-able record the trainer writes with a run; ``compare_provenance``
says, in one line per file, how a recorded run's data differs from what is loaded now.
"""
from __future__ import annotations

import hashlib
import os
from typing import Any, Iterable

from ..errors import short_repr

__all__ = ["compare_provenance", "file_key", "folder_digest", "provenance", "sha256_bytes"]


def sha256_bytes(data: bytes | memoryview) -> str:
    """SHA-256 hex digest of ``data``."""
    return hashlib.sha256(data).hexdigest()


def file_key(path: str | os.PathLike) -> str:
    """The key of ``path`` in ``ArrayDataset.files``: absolute, but symlinks kept as given (the
    path the user named is the one to report)."""
    return os.path.abspath(os.fspath(path))


def folder_digest(entries: Iterable[tuple[str, str]]) -> str:
    """SHA-256 over ``(relative posix path, file sha256)`` pairs, sorted by path, one
    ``"path\\tsha256\\n"`` line each (UTF-8)."""
    h = hashlib.sha256()
    for rel, digest in sorted(entries):
        h.update(f"{rel}\t{digest}\n".encode("utf-8", "surrogateescape"))
    return h.hexdigest()


def provenance(ds: Any) -> dict:
    """``{"source": str, "files": {absolute path: sha256 hex}}`` of a loaded ``ArrayDataset``.

    JSON-able (plain strings); ``files`` is empty for generated data. The trainer writes it with
    a run (one per split) and compares it on resume and evaluation with ``compare_provenance``.
    """
    return {"source": str(ds.source) if ds.source is not None else "",
            "files": {str(k): str(v) for k, v in sorted(dict(getattr(ds, "files", {}) or {}).items())}}


def compare_provenance(recorded: dict, current: dict) -> list[str]:
    """Human-readable differences between a ``recorded`` and a ``current`` ``provenance``.

    One line per file whose SHA-256 differs, that was recorded but is not read now ("missing"),
    or that is read now but was not recorded ("new"), in path order; plus a first line when the
    ``source`` differs. Files are matched by path: the same bytes at another path count as one
    missing and one new file. Empty when the two are equal. Tolerates records lacking a key
    (written by older versions): an absent ``files`` is taken as no files. The record comes from
    a run's ``data.json``, which may have been edited: what it contributes to a line is cut
    short, and after ``MAX_DIFF_LINES`` lines the rest is counted, not listed.
    """
    rec_files = dict((recorded or {}).get("files") or {})
    cur_files = dict((current or {}).get("files") or {})
    lines = []
    rec_src, cur_src = (recorded or {}).get("source"), (current or {}).get("source")
    if rec_src != cur_src:
        lines.append(f"data source changed: recorded {short_repr(rec_src, 200)}, now {short_repr(cur_src, 200)}")
    differing = [p for p in sorted(set(rec_files) | set(cur_files)) if rec_files.get(p) != cur_files.get(p)]
    for path in differing[:MAX_DIFF_LINES]:
        old, new = _cut(rec_files.get(path)), _cut(cur_files.get(path))
        if new is None:
            lines.append(f"{_cut(path)}: missing (recorded with SHA-256 {old}, not read now)")
        elif old is None:
            lines.append(f"{_cut(path)}: new (read now with SHA-256 {new}, not in the record)")
        else:
            lines.append(f"{_cut(path)}: changed (SHA-256 recorded {old}, now {new})")
    if len(differing) > MAX_DIFF_LINES:
        lines.append(f"and {len(differing) - MAX_DIFF_LINES:,} more file(s) differ")
    return lines


#: Differences listed one per line by ``compare_provenance`` (a whole changed dataset is counted).
MAX_DIFF_LINES = 20


def _cut(text: Any, limit: int = 200) -> Any:
    """A path or digest of a record as a message shows it: at most ``limit`` characters."""
    return text[:limit - 1] + "…" if isinstance(text, str) and len(text) > limit else text
