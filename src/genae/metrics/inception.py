"""The standard FID Inception-v3 network, in plain PyTorch.

This is the network of the original TensorFlow FID code (Heusel et al. 2017, graph
``inception-2015-12-05``) as ported to PyTorch by pytorch-fid: torchvision's Inception-v3 layout
(module names and shapes identical, so the converted weights load as is) with the FID-specific
differences — average pools that exclude padding in the A, C and first E blocks, a max pool in the
last E block's pool branch, 1008 output classes and no auxiliary head. Inputs in [0, 1] are
resized to 299×299 (bilinear, ``align_corners=False``) and scaled to [-1, 1]; features are the
2048-d global average pool after ``Mixed_7c`` ("pool3"); ``logits`` gives the 1008-way logits
used by the Inception Score.

Weights: ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid's converted file, 95,628,359
bytes, SHA-256 ``WEIGHTS_SHA256``; the name carries its first 8 hex digits, torch.hub's
convention). Looked for at ``$GENAE_INCEPTION_WEIGHTS`` (a file path, used as given: a digest
other than ``WEIGHTS_SHA256`` only warns), then ``~/.cache/genae/weights/`` (or
``$GENAE_CACHE/weights/``), where the file must match the full SHA-256; otherwise downloaded once
from the official release URL into a uniquely named temporary file beside the target, checked
against the size and full SHA-256, fsynced and renamed into place. Any failure (network error,
wrong bytes, Ctrl-C) removes the temporary file, so the weights directory holds either nothing
or the verified file. The weights are read with ``torch.load(weights_only=True)``.
"""
from __future__ import annotations

import http.client
import os
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, CorruptDataset
from ..fileio import cache_root, sha256_file

__all__ = ["FIDInceptionV3", "WEIGHTS_NAME", "WEIGHTS_SHA256", "WEIGHTS_URL", "download_weights",
           "inception_weights_path", "load_fid_inception", "weights_sha256"]

WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + WEIGHTS_NAME
# The full SHA-256 and size of pytorch-fid's release file, as pinned independently by several
# public FID pipelines (the same bytes are torch-fidelity's weights-inception-2015-12-05-6726825d.pth).
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
WEIGHTS_SIZE = 95_628_359
WEIGHTS_SHA256_PREFIX = WEIGHTS_SHA256[:8]


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm (eps 1e-3, TensorFlow's) -> ReLU."""

    def __init__(self, cin: int, cout: int, **kw):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, bias=False, **kw)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg3(x):
    # TensorFlow's average pool ignores padded zeros (count_include_pad=False).
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch5x5_1 = BasicConv2d(cin, 48, kernel_size=1)
        self.branch5x5_2 = BasicConv2d(48, 64, kernel_size=5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, kernel_size=1)

    def forward(self, x):
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg3(x))], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, kernel_size=3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, kernel_size=3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch3x3(x), b3, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, channels_7x7: int):
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7_2 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, kernel_size=1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = x
        for m in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3,
                  self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = m(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg3(x))], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch3x3_2 = BasicConv2d(192, 320, kernel_size=3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, kernel_size=1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, kernel_size=(1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, kernel_size=(7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, kernel_size=3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([b3, b7, F.max_pool2d(x, kernel_size=3, stride=2)], 1)


class InceptionE(nn.Module):
    """``max_pool``: the last block of the FID graph pools its pool branch with a max, not a mean."""

    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, kernel_size=1)
        self.branch3x3_1 = BasicConv2d(cin, 384, kernel_size=1)
        self.branch3x3_2a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, kernel_size=1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, kernel_size=3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, kernel_size=(1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, kernel_size=(3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, kernel_size=1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pooled = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg3(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pooled)], 1)


class FIDInceptionV3(nn.Module):
    """FID Inception-v3. ``forward(x)``: ``(B, C, H, W)`` in [0, 1] (C = 1 or 3) -> ``(B, 2048)``
    pool3 features. ``features_and_logits(x)`` also returns the ``(B, 1008)`` logits."""

    num_features = 2048

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(2048, 1008)

    def _prepare(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        return 2 * x - 1

    def features_and_logits(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self._prepare(x)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b,
                      self.Mixed_6c, self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b,
                      self.Mixed_7c):
            x = block(x)
        feats = x.mean(dim=(2, 3))
        return feats, self.fc(feats)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features_and_logits(x)[0]

    def load_checked(self, state_dict: dict[str, torch.Tensor], source: str = "state dict") -> None:
        """Strict load with a message naming missing/unexpected keys and shape mismatches.

        ``num_batches_tracked`` buffers may be absent (the converted file predates them).
        """
        own = {k: v for k, v in self.state_dict().items() if not k.endswith("num_batches_tracked")}
        given = {k: v for k, v in state_dict.items() if not k.endswith("num_batches_tracked")}
        missing = sorted(set(own) - set(given))
        unexpected = sorted(set(given) - set(own))
        bad = sorted(k for k in set(own) & set(given) if tuple(own[k].shape) != tuple(given[k].shape))
        if missing or unexpected or bad:
            def show(keys):
                return ", ".join(keys[:5]) + (f" (+{len(keys) - 5} more)" if len(keys) > 5 else "")
            parts = [f"{len(missing)} missing keys: {show(missing)}" if missing else "",
                     f"{len(unexpected)} unexpected keys: {show(unexpected)}" if unexpected else "",
                     f"{len(bad)} shape mismatches: {show(bad)}" if bad else ""]
            raise ConfigError(f"{source} is not the FID Inception-v3 weights ({WEIGHTS_NAME}): "
                              + "; ".join(p for p in parts if p))
        self.load_state_dict(given, strict=False)


def weights_sha256(path: str | os.PathLike) -> str:
    return sha256_file(path)


def download_weights(target: Path, url: str = WEIGHTS_URL, sha256: str = WEIGHTS_SHA256,
                     size: int | None = WEIGHTS_SIZE) -> Path:
    """Download ``url`` to ``target`` through ``genae.data.download.download_file`` (temporary file
    beside it, size and full SHA-256 check, fsync, atomic rename; on any failure, Ctrl-C included,
    the temporary file and any directory the call created are removed). Raises ``OSError`` for
    network trouble and ``ConfigError`` naming both digests for wrong bytes."""
    from ..data.download import RemoteFile, download_file

    try:
        return download_file(RemoteFile(target.name, (url,), sha256, size), target)
    except CorruptDataset as e:
        raise ConfigError(f"downloaded {url}: {e}") from None


def inception_weights_path(download: bool = True) -> Path:
    """Locate (or download once) the FID Inception weights; clear ``ConfigError`` if impossible.

    ``$GENAE_INCEPTION_WEIGHTS`` is used as given (a ``RuntimeWarning`` when its SHA-256 is not
    ``WEIGHTS_SHA256``); the cached file must match ``WEIGHTS_SHA256`` (else ``ConfigError``
    naming it and saying to delete it); a download is verified before it is kept.
    """
    env = os.environ.get("GENAE_INCEPTION_WEIGHTS")
    if env:
        p = Path(env).expanduser()
        if not p.is_file():
            raise ConfigError(f"GENAE_INCEPTION_WEIGHTS={env} is not a file")
        digest = weights_sha256(p)
        if digest != WEIGHTS_SHA256:
            warnings.warn(f"GENAE_INCEPTION_WEIGHTS={env} has SHA-256 {digest}, not that of "
                          f"{WEIGHTS_NAME} ({WEIGHTS_SHA256}); FIDs computed with it are not "
                          f"comparable with the standard ones", RuntimeWarning, stacklevel=2)
        return p
    target = cache_root() / "weights" / WEIGHTS_NAME
    if target.is_file():
        digest = weights_sha256(target)
        if digest != WEIGHTS_SHA256:
            raise ConfigError(f"{target} has SHA-256 {digest}, expected {WEIGHTS_SHA256} "
                              f"({WEIGHTS_NAME}): the file is damaged or not the FID weights. "
                              f"Delete it (it is downloaded again) or replace it.")
        return target
    how = (f"The 'inception' backbone needs the FID Inception weights {WEIGHTS_NAME}. Download "
           f"{WEIGHTS_URL} and either put it at {target} or set GENAE_INCEPTION_WEIGHTS=/path/to/"
           f"{WEIGHTS_NAME}; or use the offline backbone: --backbone domain.")
    if not download:
        raise ConfigError(how)
    try:
        return download_weights(target, WEIGHTS_URL, WEIGHTS_SHA256, WEIGHTS_SIZE)
    except ConfigError as e:
        raise ConfigError(f"{e}. {how}") from None
    except (OSError, http.client.HTTPException) as e:   # URLError, timeouts, IncompleteRead
        raise ConfigError(f"download failed ({e}). {how}") from None


def load_fid_inception(device: str | torch.device = "cpu", download: bool = True) -> tuple[FIDInceptionV3, str]:
    """The FID Inception network with its weights, in eval mode -> ``(net, sha256 of weights)``."""
    path = inception_weights_path(download)
    try:  # the restricted unpickler: a file naming any code is refused (UnpicklingError), never run
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError, RuntimeError (not a zip/pickle), EOFError, ...
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        why = next((line for line in lines if "Unsupported global" in line), lines[0] if lines else type(e).__name__)
        raise ConfigError(f"{path} is not the FID Inception weights {WEIGHTS_NAME}: it could not be read as "
                          f"a file of tensors ({why[:200]}), so it was not loaded. Point "
                          f"GENAE_INCEPTION_WEIGHTS at {WEIGHTS_NAME}, or use --backbone domain") from None
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        raise ConfigError(f"{path} is not the FID Inception weights {WEIGHTS_NAME}: it holds a "
                          f"{type(state).__name__}, not a mapping of names to tensors")
    net = FIDInceptionV3()
    net.load_checked(state, source=str(path))
    return net.to(device).eval(), weights_sha256(path)
