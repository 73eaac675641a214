"""``train.amp=auto``: bf16 autocast where this machine's matrix units make it faster, fp32 elsewhere;
``train.channels_last=auto``: the channels-last layout where low-precision convolutions want it.

The choice is measured, not assumed from a CPU model name: on the CPU a bf16 matrix product of a
training-sized shape is timed against the same product in fp32, on the threads the run will use,
and bf16 is chosen when it is at least ``MIN_SPEEDUP`` times faster. CPUs with bf16 matrix units
(Intel AMX, AVX512-BF16) pass by a wide margin (5–7× measured by this probe on a Xeon with AMX,
docs/results.md issue 38); CPUs without them emulate bf16 through fp32 and come out slower, so they keep fp32. On
CUDA, bf16 where the device supports it (Ampere and later); on MPS, fp32.

The resolved value replaces ``auto`` in the run's config before it is written, so ``config.yaml``
holds the dtype the run trained in and ``genae resume`` keeps it on any machine; the measurement is
printed and recorded in ``run.json`` (``amp_auto``).

``channels_last=auto`` depends only on the method and the (resolved) dtype, so it needs no
measurement and is resolved afresh at every start, resume included: channels-last for a method
with 2-D convolutions trained under bf16/fp16 autocast, NCHW otherwise (fp32 runs keep the layout
their results were recorded in). oneDNN's bf16 convolutions on the CPU, like cuDNN's tensor-core
ones, compute in NHWC: with NCHW activations every layer reorders its input and output, which took
a third of LSR-GAN's Table 3 ResNet step in bf16 (docs/results.md, issue 38: 2.0× fp32 in NCHW,
3.5× in channels-last).
"""
from __future__ import annotations

import time

import torch

__all__ = ["MIN_SPEEDUP", "bf16_matmul_speedup", "resolve_amp", "resolve_channels_last"]

#: bf16 must beat fp32 by this factor on the probe to be chosen: below it, autocast's casts
#: (a weight copy per forward, activations at fp32 islands) eat what the products gain.
MIN_SPEEDUP = 1.5


def bf16_matmul_speedup(n: int = 512, k: int = 1024, repeats: int = 3) -> float:
    """fp32 time / bf16 time of an ``(n, k) @ (k, k)`` product on the CPU (best of ``repeats``
    each, after one warm-up; about 0.1 s where bf16 is fast, a few tenths where it is emulated)."""
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, k, generator=gen), torch.randn(k, k, generator=gen)

    def best(x: torch.Tensor, y: torch.Tensor) -> float:
        torch.mm(x, y)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            torch.mm(x, y)
            times.append(time.perf_counter() - t0)
        return min(times)

    return best(a, b) / best(a.bfloat16(), b.bfloat16())


def resolve_amp(device: torch.device) -> tuple[str, str]:
    """``(amp, why)`` for ``train.amp=auto`` on ``device``: amp is "bf16" or "none"."""
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return "bf16", f"{torch.cuda.get_device_name(device)} supports bf16"
        return "none", f"{torch.cuda.get_device_name(device)} has no bf16 support"
    if device.type != "cpu":
        return "none", f"no bf16 autocast measured on {device.type}"
    speedup = bf16_matmul_speedup()
    choice = "bf16" if speedup >= MIN_SPEEDUP else "none"
    rel = "≥" if choice == "bf16" else "<"
    return choice, (f"a bf16 matrix product ran {speedup:.1f}× as fast as fp32 on this CPU "
                    f"({rel} {MIN_SPEEDUP}×, {torch.get_num_threads()} thread(s))")


def resolve_channels_last(setting: bool | str, amp: str, method: torch.nn.Module) -> tuple[bool, str]:
    """``(channels_last, why)`` for ``train.channels_last`` (True, False or "auto") given the
    resolved ``train.amp`` and the built method: "auto" is True exactly when ``amp`` is bf16/fp16
    and the method holds a ``Conv2d``/``ConvTranspose2d``; ``why`` is empty unless "auto" chose."""
    if setting != "auto":
        return bool(setting), ""
    convs = sum(isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) for m in method.modules())
    if amp in ("bf16", "fp16") and convs:
        return True, f"{convs} 2-D convolution(s) under {amp} autocast"
    return False, ("no 2-D convolution" if not convs else f"{convs} 2-D convolution(s) in fp32")
