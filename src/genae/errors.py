"""Exceptions with messages meant for the person at the terminal.

The CLI turns each of these into one clear line on stderr and a non-zero exit code, without a
traceback: they describe a problem with the user's input or environment, not a bug in genae.
"""
from __future__ import annotations

import difflib
from typing import Iterable


def did_you_mean(name: object, choices: Iterable[str]) -> str:
    """`` (did you mean 'vae'?)`` for a name close to one of ``choices`` (a typo), else ``""``;
    goes right after the unknown name in a message."""
    close = difflib.get_close_matches(str(name), list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def short_repr(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to about ``limit`` characters, for messages: never builds the whole
    repr of a huge value (a 10⁶-element list, a 10⁵-digit integer, a 1 MB string), so an error
    about an unbounded input stays one short line and costs no memory."""
    text = _brief(value, limit, 0)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def short_key(key: object) -> str:
    """A mapping key as a message shows it in a dotted name (``train.grad_clip.vae``): as written
    when a short string, else ``short_repr`` (a key of a hand-edited file can be anything)."""
    return key if isinstance(key, str) and len(key) <= 40 else short_repr(key, 40)


def _brief(v: object, budget: int, depth: int) -> str:
    if v is None or isinstance(v, (bool, float)):
        return repr(v)
    if isinstance(v, int):  # str() of an int over 4300 digits raises; over 64 bits nobody reads it
        return repr(v) if v.bit_length() <= 64 else f"<a {v.bit_length()}-bit integer>"
    if isinstance(v, (str, bytes)):
        return repr(v[:budget]) + ("…" if len(v) > budget else "")
    if isinstance(v, (list, tuple, dict, set, frozenset)):
        opening, closing = {list: "[]", tuple: "()", dict: "{}"}.get(type(v), "{}")
        if depth >= 3:
            return f"{opening}…{closing}"
        parts, used = [], 0
        items = v.items() if isinstance(v, dict) else v
        for i, item in enumerate(items):
            if used > budget:
                parts.append("…")
                break
            part = (f"{_brief(item[0], budget, depth + 1)}: {_brief(item[1], budget, depth + 1)}"
                    if isinstance(v, dict) else _brief(item, budget, depth + 1))
            parts.append(part)
            used += len(part) + 2
        return opening[0] + ", ".join(parts) + ("," if type(v) is tuple and len(parts) == 1 else "") + closing[-1]
    shape = getattr(v, "shape", None)
    if shape is not None:  # a tensor or an array: what it is, not its values
        return f"<{type(v).__name__} of shape {tuple(shape)}, {getattr(v, 'dtype', '?')}>"
    return f"<{type(v).__name__}>"


class GenaeError(Exception):
    """Base of the user-facing errors."""


class ConfigError(GenaeError, ValueError):
    """An unknown key, a wrong type or an impossible combination in a config (names the key)."""


class RunFileError(GenaeError, ValueError):
    """A file genae reads back (from a run, a checkpoint, a sweep or its cache) that is too large,
    does not parse, or holds the wrong types; the message names the file and the field
    (``genae.schema``)."""


class DatasetNotFound(GenaeError, FileNotFoundError):
    """A dataset that is in none of the places looked (the message lists them and the fix)."""


class CorruptDataset(GenaeError, ValueError):
    """A dataset file with a wrong magic number, size or checksum (the message names the file)."""


class NonFiniteLoss(GenaeError, FloatingPointError):
    """A loss became NaN or infinite; names the step, the player and the offending term."""

    def __init__(self, step: int, player: str, term: str, value: float):
        self.step, self.player, self.term, self.value = step, player, term, value
        super().__init__(f"non-finite loss at step {step}: player {player!r}, term {term!r} = {value}")


class Interrupted(GenaeError):
    """SIGINT/SIGTERM arrived; a checkpoint of the last completed step was written."""
