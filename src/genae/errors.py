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


class GenaeError(Exception):
    """Base of the user-facing errors."""


class ConfigError(GenaeError, ValueError):
    """An unknown key, a wrong type or an impossible combination in a config (names the key)."""


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
