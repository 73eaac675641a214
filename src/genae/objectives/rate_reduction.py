"""Rate reduction (MCR², Yu et al. 2020) and the CTRL utilities (Dai et al. 2022, "CTRL: Closed-Loop
Transcription to an LDR via Minimaxing Rate Reduction").

Conventions (library-wide for this module):

* ``z``: ``(n, d)``, **one sample per row**; features are expected on the unit sphere (the CTRL
  encoder normalises them) but nothing here assumes it. ``y``: ``(n,)`` integer labels in
  ``[0, num_classes)``. ``z_hat`` (ẑ = f(g(z))) has the shape of ``z`` and, where labelled, the
  labels ``y`` of the rows it was transcribed from.
* ``eps2`` is ε² itself (default 0.5, the value the reference code passes as "eps").
* Every function returns a **scalar for the whole batch** (rates are not per-example quantities;
  there is nothing to average), in nats. The multi/binary utilities are the quantity the
  **encoder maximises** and the decoder minimises (a trainer minimises ``-value`` for the encoder).
* ``precision`` ("float32" | "float64") is the dtype of the Gram matrices and of the Cholesky
  factorisation; autocast is disabled inside. The result has ``z``'s dtype (float32 for
  half-precision ``z``, so that an autocast region never returns a bf16/fp16 loss).
* An empty class contributes exactly 0 (weight n_j/n = 0 and a zero Gram matrix; the per-class
  scale d/(n_j ε²) is guarded, so no 0/0 appears). The pair term of an empty class is 0 as well.

Implementation. R(Z) = ½ logdet(I_d + c ZᵀZ) = ½ logdet(I_n + c ZZᵀ), c = d/(nε²): the smaller
of the two Gram matrices is used. Rows are scattered into a zero-padded per-class tensor
``(k, P, d)`` (P = the largest class count on CPU, where reading it is free; P = n on
accelerators, which avoids a host synchronisation at k·n·d² instead of n·d² Gram work, unless
k > 16), so all class Gram matrices come from one batched matmul. The coding rate of a union is a
function of the *sum* of the two Gram matrices (with count n_j + n̂_j), and the total Gram matrix
is the sum of the class ones, so the CTRL utility needs only the class Gram matrices of z and ẑ;
its 3k + 2 log-determinants come from ONE batched Cholesky (½ logdet A = Σ log diag U, A = UᵀU),
whose backward is ½ A⁻¹ from ``cholesky_inverse``.

Distributed data parallel. When ``torch.distributed`` is initialised with world size W > 1
(``distributed="auto"``, the default) or ``distributed=True`` / an explicit ``group``, every function
all-reduces the d×d class Gram matrices and class counts (one collective per call, over ``group``)
and evaluates the objective of the **global batch**; d×d Grams are always used then, as they add
across ranks. The value is bitwise identical on every rank. Gradients follow the data-parallel
convention of the trainer (``genae.distributed``): the objective optimised is the mean of the W
ranks' losses, and each rank's backward yields the gradient of the *sum* of the ranks' losses with
respect to its own inputs, so that averaging parameter gradients over ranks (what the trainer does
after every update, and what DDP does) gives the gradient of that mean. The backward of the Gram
all-reduce is therefore a SUM all-reduce (no 1/W): the gradient w.r.t. the local ``z`` rows is W
times the corresponding rows of the single-process gradient on the concatenated batch, each rank's
parameter gradient is W times its share, and the **average** over ranks is exactly the
single-process gradient of the global batch, with no manual scaling (the same holds for a loss
that is a mean over each rank's equal shard: its local gradient is W times the global mean's).
Every rank must call these functions (and back-propagate through them) in the same order; pass
``distributed=False`` for a rank-local evaluation (e.g. on rank 0 only); inside
``genae.collectives.local_only()`` the "auto" mode is rank-local too.
The collective is an autograd-aware SUM all-reduce (the forward and backward collectives of
``torch.distributed.nn.functional.all_reduce``, which torch 2.13 deprecates without an autograd-aware
replacement), fused into the Gram/Cholesky autograd function.

Gradients are first-order only (``once_differentiable``: no double backward).
"""
from __future__ import annotations

from typing import Literal, Union

import torch
import torch.distributed as dist
from torch.autograd.function import once_differentiable

__all__ = ["class_compression", "coding_rate", "ctrl_binary_objective", "ctrl_multi_objective",
           "delta_r", "pair_delta_r"]

Precision = Literal["float32", "float64"]
Distributed = Union[bool, Literal["auto"]]
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_COMPACT_DEVICES = frozenset({"cpu"})  # devices where reading a count on the host is free
_MAX_STATIC_CLASSES = 16  # above this, padding every class to n costs more than one host read


# --- public API ---------------------------------------------------------------------------------
def coding_rate(z: torch.Tensor, eps2: float = 0.5, precision: Precision = "float32", *,
                group=None, distributed: Distributed = "auto") -> torch.Tensor:
    """Coding rate R(Z) = ½ logdet(I_d + d/(n ε²) ZᵀZ) of the rows of ``z: (n, d)`` (CTRL eq. 2).

    Returns a scalar (nats); R of an empty set is 0.

    Keyword-only in every function: ``group`` (a process group) and ``distributed`` (True, False or
    "auto": on when ``torch.distributed`` is initialised with world size > 1) select the DDP mode,
    in which the value and gradients are those of the global batch (see the module docstring).
    """
    r = _rates(z, None, 1, eps2=eps2, precision=precision, group=group, distributed=distributed)
    return r["z_j"][0].to(_out_dtype(z))


def class_compression(z: torch.Tensor, y: torch.Tensor, num_classes: int, eps2: float = 0.5,
                      precision: Precision = "float32", *, group=None,
                      distributed: Distributed = "auto") -> torch.Tensor:
    """Rc(Z | Π) = Σ_j (n_j/n) R(Z_j), each R(Z_j) = ½ logdet(I + d/(n_j ε²) Z_jᵀZ_j) with its own n_j.

    z: ``(n, d)``; y: ``(n,)`` labels in ``[0, num_classes)``. Returns a scalar; an empty class adds 0.
    """
    r = _rates(z, y, num_classes, eps2=eps2, precision=precision, group=group,
               distributed=distributed)
    return _compress(r["z_j"], r["n_z"]).to(_out_dtype(z))


def delta_r(z: torch.Tensor, y: torch.Tensor, num_classes: int, eps2: float = 0.5,
            precision: Precision = "float32", *, group=None,
            distributed: Distributed = "auto") -> torch.Tensor:
    """Rate reduction ΔR(Z, Π) = R(Z) − Rc(Z | Π) (MCR², Yu et al. 2020; as used by CTRL), a scalar.

    z: ``(n, d)``; y: ``(n,)`` labels in ``[0, num_classes)``.
    """
    r = _rates(z, y, num_classes, total=True, eps2=eps2, precision=precision, group=group,
               distributed=distributed)
    return (r["z"] - _compress(r["z_j"], r["n_z"])).to(_out_dtype(z))


def pair_delta_r(z: torch.Tensor, z_hat: torch.Tensor, y: torch.Tensor, num_classes: int,
                 eps2: float = 0.5, precision: Precision = "float32", *, group=None,
                 distributed: Distributed = "auto") -> torch.Tensor:
    """Σ_j ΔR(Z_j, Ẑ_j) = Σ_j [R(Z_j ∪ Ẑ_j) − ½R(Z_j) − ½R(Ẑ_j)] (CTRL's pair distance, per class).

    z, z_hat: ``(n, d)``, row i of ``z_hat`` carries label ``y[i]``. Each rate uses its own count
    (n_j, n_j and 2n_j for the union). A sum (not a mean) over classes; an empty class adds 0.
    """
    _check_pair(z, z_hat)
    r = _rates(z, y, num_classes, z_hat, y, union=True, eps2=eps2, precision=precision,
               group=group, distributed=distributed)
    return (r["u_j"] - 0.5 * (r["z_j"] + r["h_j"])).sum().to(_out_dtype(z))


def ctrl_multi_objective(z: torch.Tensor, z_hat: torch.Tensor, y: torch.Tensor, num_classes: int,
                         eps2: float = 0.5, precision: Precision = "float32", *, group=None,
                         distributed: Distributed = "auto"
                         ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """LDR-Multi utility J = ΔR(Z) + ΔR(Ẑ) + Σ_j ΔR(Z_j, Ẑ_j) (CTRL's labelled game).

    The encoder maximises J, the decoder minimises it. z, z_hat: ``(n, d)``; y: ``(n,)`` labels of
    both. Returns ``(J, terms)``: J a scalar with gradient; ``terms`` detached scalars for logging:
    ``delta_r_z``, ``delta_r_zhat``, ``pair``, ``rate_z``, ``rate_zhat``, ``compress_z``,
    ``compress_zhat`` (Rc of z and ẑ).
    """
    _check_pair(z, z_hat)
    r = _rates(z, y, num_classes, z_hat, y, total=True, union=True, eps2=eps2,
               precision=precision, group=group, distributed=distributed)
    rc_z, rc_h = _compress(r["z_j"], r["n_z"]), _compress(r["h_j"], r["n_h"])
    dr_z, dr_h = r["z"] - rc_z, r["h"] - rc_h
    pair = (r["u_j"] - 0.5 * (r["z_j"] + r["h_j"])).sum()
    dt = _out_dtype(z)
    value = (dr_z + dr_h + pair).to(dt)
    terms = {"delta_r_z": dr_z, "delta_r_zhat": dr_h, "pair": pair, "rate_z": r["z"],
             "rate_zhat": r["h"], "compress_z": rc_z, "compress_zhat": rc_h}
    return value, {k: v.detach().to(dt) for k, v in terms.items()}


def ctrl_binary_objective(z: torch.Tensor, z_hat: torch.Tensor, eps2: float = 0.5,
                          precision: Precision = "float32", *, group=None,
                          distributed: Distributed = "auto"
                          ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """LDR-Binary utility ΔR(Z, Ẑ) = R(Z ∪ Ẑ) − ½R(Z) − ½R(Ẑ) (CTRL's unlabelled game).

    z: ``(n, d)``, z_hat: ``(m, d)`` (usually m = n). Returns ``(value, terms)`` with detached
    ``rate_union``, ``rate_z``, ``rate_zhat``.
    """
    if z.dim() != 2 or z_hat.dim() != 2 or z.shape[1] != z_hat.shape[1]:
        raise ValueError(f"z and z_hat must be (n, d) and (m, d); got {tuple(z.shape)} and "
                         f"{tuple(z_hat.shape)}")
    r = _rates(z, None, 1, z_hat, None, union=True, eps2=eps2, precision=precision, group=group,
               distributed=distributed)
    rz, rh, ru = r["z_j"][0], r["h_j"][0], r["u_j"][0]
    dt = _out_dtype(z)
    value = (ru - 0.5 * (rz + rh)).to(dt)
    return value, {k: v.detach().to(dt) for k, v in
                   {"rate_union": ru, "rate_z": rz, "rate_zhat": rh}.items()}


# --- engine -------------------------------------------------------------------------------------
def _rates(z, y, k, z_hat=None, y_hat=None, *, total=False, union=False, eps2, precision, group,
           distributed) -> dict[str, torch.Tensor]:
    """Coding rates of the sets the callers need, all from ONE batched Cholesky.

    Always: per-class rates ``z_j`` ``(k,)`` and counts ``n_z`` ``(k,)`` of z (and ``h_j``, ``n_h``
    of ẑ if given). ``total``: R of the whole z (ẑ) as ``z`` (``h``). ``union``: ``u_j`` ``(k,)``,
    R(Z_j ∪ Ẑ_j). Rates and counts are in ``precision``; under DDP they are global-batch ones.
    """
    if precision not in _DTYPES:
        raise ValueError(f"precision must be one of {sorted(_DTYPES)}; got {precision!r}")
    if z.dim() != 2:
        raise ValueError(f"z must be (n, d) with one sample per row; got shape {tuple(z.shape)}")
    if not eps2 > 0:
        raise ValueError(f"eps2 (ε²) must be positive; got {eps2}")
    k = int(k)
    if k < 1:
        raise ValueError(f"num_classes must be >= 1; got {k}")
    dtype, d = _DTYPES[precision], z.shape[1]
    world = _world_size(group, distributed)
    total = total and k > 1  # with one class the total *is* class 0
    has_h = z_hat is not None
    compact = z.device.type in _COMPACT_DEVICES or k > _MAX_STATIC_CLASSES  # P = max n_j: host read

    with torch.autocast(z.device.type, enabled=False):
        zp, n_z = _class_rows(z.to(dtype), y, k, compact)
        hp, n_h = _class_rows(z_hat.to(dtype), y_hat, k, compact) if has_h else (None, None)
        # The largest set (padded row counts: upper bounds) decides between n×n and d×d Grams.
        sizes = [zp.shape[1]] + ([z.shape[0]] if total else [])
        if has_h:
            sizes += [hp.shape[1]] + ([zp.shape[1] + hp.shape[1]] if union else [])
            sizes += [z_hat.shape[0]] if total else []
        m = max(sizes)
        if world > 1 or m >= d:
            rates, n_z, n_h = _GramRates.apply(zp, hp, n_z, n_h, total, union, eps2, group, world)
        else:
            rates = _small_set_rates(z, z_hat, zp, hp, n_z, n_h, m, total, union, eps2, dtype)

    # Unpack in the layout order: [z_j (k), h_j (k), u_j (k), z (1), h (1)].
    out, i = {"n_z": n_z, "n_h": n_h}, 0
    for name, present, size in (("z_j", True, k), ("h_j", has_h, k), ("u_j", has_h and union, k),
                                ("z", total, 1), ("h", total and has_h, 1)):
        if present:
            out[name], i = (rates[i:i + size] if name.endswith("_j") else rates[i]), i + size
    if k == 1:  # one class: the total is class 0
        out["z"], out["h"] = out["z_j"][0], (out["h_j"][0] if has_h else None)
    return out


class _GramRates(torch.autograd.Function):
    """Rates of class sets, unions and totals from the d×d class Gram matrices (one Cholesky).

    Inputs: zp, hp ``(k, P, d)`` zero-padded class rows of z and ẑ (hp may be None), counts
    ``(k,)``. Builds the batch A = [I + c·G_j(z)]_j, [I + c·G_j(ẑ)]_j, [I + c·(G_j(z) + G_j(ẑ))]_j
    (``union``), I + c·Σ_j G_j(z), I + c·Σ_j G_j(ẑ) (``total``), each c = d/(count·ε²), and returns
    Σ log diag U (U = chol(A), = ½ logdet A = R) for every matrix, with the (global) counts.
    Under DDP (world > 1) the class Grams and counts are SUM-all-reduced in one collective; the
    backward SUM-all-reduces the Gram gradients (see the module docstring).
    Backward: ∂R_b/∂G_b = ½ c_b A_b⁻¹ (``cholesky_inverse``), summed over the matrices that contain
    G_j, then ∂/∂X of XᵀX = 2·X·(∂/∂G) (the gradient is symmetric). Fusing these steps keeps the
    number of large temporaries (and their page faults) low: this is the hot path of CTRL.
    """

    @staticmethod
    def forward(ctx, zp, hp, n_z, n_h, total, union, eps2, group, world):
        k, d = zp.shape[0], zp.shape[2]
        has_h = hp is not None
        nk = 2 * k if has_h else k
        b = nk + (k if has_h and union else 0) + (1 + has_h if total else 0)
        a = zp.new_empty(b, d, d)
        counts = torch.cat([n_z, n_h]) if has_h else n_z
        if world > 1:  # one collective for Grams and counts (the all-reduce itself)
            buf = zp.new_empty(nk * d * d + nk)
            torch.bmm(zp.transpose(1, 2), zp, out=buf[:k * d * d].view(k, d, d))
            if has_h:
                torch.bmm(hp.transpose(1, 2), hp, out=buf[k * d * d:nk * d * d].view(k, d, d))
            buf[nk * d * d:] = counts
            dist.all_reduce(buf, op=dist.ReduceOp.SUM, group=group)
            a[:nk] = buf[:nk * d * d].view(nk, d, d)
            counts = buf[nk * d * d:].clone()
        else:
            torch.bmm(zp.transpose(1, 2), zp, out=a[:k])
            if has_h:
                torch.bmm(hp.transpose(1, 2), hp, out=a[k:nk])
        n_z, n_h = counts[:k], (counts[k:] if has_h else None)
        parts, i = [counts], nk
        if has_h and union:  # G(Z_j ∪ Ẑ_j) = G_j(z) + G_j(ẑ), count n_j + n̂_j
            torch.add(a[:k], a[k:nk], out=a[i:i + k])
            parts.append(n_z + n_h)
            i += k
        if total:  # G(Z) = Σ_j G_j(z), count n
            torch.sum(a[:k], 0, out=a[i])
            parts.append(n_z.sum(0, keepdim=True))
            if has_h:
                torch.sum(a[k:nk], 0, out=a[i + 1])
                parts.append(n_h.sum(0, keepdim=True))
        # R = ½ logdet(I + d/(n ε²) G) (CTRL eq. 2); the clamp guards empty sets (G = 0, R = 0).
        scale = d / (eps2 * torch.cat(parts).clamp(min=1))
        a.mul_(scale[:, None, None]).diagonal(dim1=-2, dim2=-1).add_(1.0)
        # In place: A is symmetric, so its buffer read column-major (a.mT) is A again (the
        # factorisation reads one triangle); the upper factor of that layout is LAPACK's fast path
        # and needs no copy.
        at, info = a.mT, torch.empty(b, dtype=torch.int32, device=a.device)
        u = torch.linalg.cholesky_ex(at, upper=True, out=(at, info))[0]
        ctx.save_for_backward(zp, hp, u, scale)
        ctx.layout = (k, nk, has_h and union, total, group, world)
        if has_h:
            ctx.mark_non_differentiable(n_z, n_h)
        else:
            ctx.mark_non_differentiable(n_z)
        return _half_logdet(u, info), n_z, n_h

    @staticmethod
    @once_differentiable
    def backward(ctx, g, _g_nz, _g_nh):
        zp, hp, u, scale = ctx.saved_tensors
        k, nk, union, total, group, world = ctx.layout
        # A⁻¹ (exactly symmetric: LAPACK computes one triangle); .mT is its row-major layout.
        gram_grad = torch.cholesky_inverse(u, upper=True).mT
        gram_grad.mul_((0.5 * g * scale)[:, None, None])  # ∂J/∂G_b = ½ g_b c_b A_b⁻¹
        gz, gh, i = gram_grad[:k], gram_grad[k:nk], nk
        if union:
            gz.add_(gram_grad[i:i + k])
            gh.add_(gram_grad[i:i + k])
            i += k
        if total:
            gz.add_(gram_grad[i])
            if hp is not None:
                gh.add_(gram_grad[i + 1])
        if world > 1:  # backward of the SUM all-reduce: the gradient of the sum of the ranks' losses
            g_class = gram_grad[:nk]  # contiguous
            dist.all_reduce(g_class, op=dist.ReduceOp.SUM, group=group)
        dz = torch.bmm(zp, gz).mul_(2.0) if ctx.needs_input_grad[0] else None
        dh = torch.bmm(hp, gh).mul_(2.0) if hp is not None and ctx.needs_input_grad[1] else None
        return dz, dh, None, None, None, None, None, None, None


def _small_set_rates(z, z_hat, zp, hp, n_z, n_h, m, total, union, eps2, dtype):
    """Rates from n×n Gram matrices when every set has fewer than d rows (same layout as
    ``_GramRates``): the rows of each set, zero-padded to m (zero rows leave logdet(I + cXXᵀ)
    unchanged), one bmm, one batched Cholesky. Plain autograd; small sizes only."""
    def pad(rows):  # (B, s, d) -> (B, m, d)
        return torch.nn.functional.pad(rows, (0, 0, 0, m - rows.shape[1]))
    sets, counts = [pad(zp)], [n_z]
    if hp is not None:
        sets.append(pad(hp)); counts.append(n_h)
        if union:
            sets.append(pad(torch.cat([zp, hp], 1))); counts.append(n_z + n_h)
    if total:
        sets.append(pad(z.to(dtype)[None])); counts.append(n_z.sum(0, keepdim=True))
        if hp is not None:
            sets.append(pad(z_hat.to(dtype)[None])); counts.append(n_h.sum(0, keepdim=True))
    x = torch.cat(sets)
    scale = z.shape[1] / (eps2 * torch.cat(counts).clamp(min=1))  # d/(n ε²), guarded
    a = torch.bmm(x, x.transpose(1, 2)) * scale[:, None, None]
    a.diagonal(dim1=-2, dim2=-1).add_(1.0)
    return _HalfLogdet.apply(a)


def _compress(rates_j: torch.Tensor, counts_j: torch.Tensor) -> torch.Tensor:
    """Σ_j (n_j/n) R_j (the class-wise compression Rc; n = Σ_j n_j, guarded for an empty batch)."""
    return (rates_j * counts_j).sum() / counts_j.sum().clamp(min=1)


def _class_rows(z: torch.Tensor, y, k: int, compact: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Scatter the rows of ``z: (n, d)`` into a zero-padded per-class tensor ``(k, P, d)``.

    Row i goes to ``[y_i, p_i]``: p_i = its rank within its class and P = max_j n_j (``compact``,
    reads P on the host), or p_i = i and P = n (no host synchronisation; k·n·d² Gram work, which
    is what a one-hot weighting costs). Returns ``(rows, counts (k,))``, counts in z's dtype.
    """
    n, d = z.shape
    if k == 1:
        if y is not None:
            _check_labels(y, n)
        return z[None], torch.full((1,), n, dtype=z.dtype, device=z.device)
    y = _check_labels(y, n).to(z.device)
    onehot = torch.zeros(n, k, dtype=torch.long, device=z.device).scatter_(1, y[:, None], 1)
    counts = onehot.sum(0)
    if compact:
        pos = (onehot.cumsum(0) - 1).gather(1, y[:, None]).squeeze(1)
        p = int(counts.max()) if n else 0
    else:
        pos, p = torch.arange(n, device=z.device), n
    rows = z.new_zeros(k * p, d).index_add(0, y * p + pos, z).view(k, p, d)
    return rows, counts.to(z.dtype)


def _check_labels(y, n: int) -> torch.Tensor:
    y = torch.as_tensor(y)
    if y.shape != (n,) or y.is_floating_point() or y.is_complex():
        raise ValueError(f"y must be integer labels of shape ({n},); got {y.dtype} {tuple(y.shape)}")
    return y.long()


def _check_pair(z, z_hat):
    if z.shape != z_hat.shape or z.dim() != 2:
        raise ValueError("z and z_hat must both be (n, d) with z_hat[i] = f(g(z_i)); got "
                         f"{tuple(z.shape)} and {tuple(z_hat.shape)}")


def _out_dtype(z: torch.Tensor) -> torch.dtype:
    return z.dtype if z.dtype in (torch.float32, torch.float64) else torch.float32


def _half_logdet(u: torch.Tensor, info: torch.Tensor) -> torch.Tensor:
    """Σ_i log U_ii = ½ logdet A per matrix; NaN where the factorisation failed (info ≠ 0: a
    non-finite input), so that a failure is a non-finite loss, never a silently wrong one, and
    without reading ``info`` on the host."""
    return u.diagonal(dim1=-2, dim2=-1).log().sum(-1).masked_fill(info != 0, float("nan"))


class _HalfLogdet(torch.autograd.Function):
    """½ logdet(A) of a batch of SPD matrices ``(B, m, m) -> (B,)`` from one batched Cholesky.

    A = UᵀU, ½ logdet A = Σ_i log U_ii; backward ½ g A⁻¹ with A⁻¹ from ``cholesky_inverse(U)``
    (a fraction of the cost of differentiating through the factorisation). ``cholesky_ex`` does not
    synchronise with the host; A = I + cG is SPD with eigenvalues ≥ 1, and a non-finite input gives
    a NaN rate rather than an exception (the trainer catches non-finite losses).
    """

    @staticmethod
    def forward(ctx, a):
        u, info = torch.linalg.cholesky_ex(a, upper=True)
        ctx.save_for_backward(u)
        return _half_logdet(u, info)

    @staticmethod
    @once_differentiable
    def backward(ctx, g):
        (u,) = ctx.saved_tensors
        return torch.cholesky_inverse(u, upper=True) * (0.5 * g)[:, None, None]


# --- distributed --------------------------------------------------------------------------------
def _world_size(group, distributed) -> int:
    if distributed not in (True, False, "auto"):
        raise ValueError(f"distributed must be True, False or 'auto'; got {distributed!r}")
    if distributed is False:
        return 1
    if distributed == "auto" and group is None:
        from ..collectives import is_local_only  # rank-local work inside a DDP job (images, prior fit)
        if is_local_only():
            return 1
    if not (dist.is_available() and dist.is_initialized()):
        if distributed is True or group is not None:
            raise RuntimeError("distributed rate reduction requested (distributed=True or a group) "
                               "but torch.distributed is not initialised")
        return 1
    return dist.get_world_size(group)
