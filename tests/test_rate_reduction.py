"""Rate reduction objectives against a float64 NumPy reference written from the formulas, closed
forms, gradient checks, autocast, and a 2-process gloo test of the distributed (global-batch) mode."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from genae.metrics.subspace import rate_reduction as metric_rate_reduction
from genae.objectives import rate_reduction as rr
from genae.objectives import (class_compression, coding_rate, ctrl_binary_objective,
                              ctrl_multi_objective, delta_r, pair_delta_r)

EPS2 = 0.5


# --- the reference: float64 NumPy, boolean masks, slogdet of the d×d matrix ------------------------
def ref_rate(z: np.ndarray, eps2: float = EPS2) -> float:
    """½ logdet(I_d + d/(n ε²) ZᵀZ); 0 for an empty set."""
    n, d = z.shape
    if n == 0:
        return 0.0
    sign, logdet = np.linalg.slogdet(np.eye(d) + d / (n * eps2) * z.T @ z)
    assert sign > 0
    return 0.5 * logdet


def ref_all(z, zh, y, k, eps2=EPS2) -> dict[str, float]:
    n = len(z)
    masks = [y == j for j in range(k)]
    rc_z = sum(m.sum() / n * ref_rate(z[m], eps2) for m in masks)
    rc_h = sum(m.sum() / n * ref_rate(zh[m], eps2) for m in masks)
    r_z, r_h = ref_rate(z, eps2), ref_rate(zh, eps2)
    pair = sum(ref_rate(np.concatenate([z[m], zh[m]]), eps2) - 0.5 * ref_rate(z[m], eps2)
               - 0.5 * ref_rate(zh[m], eps2) for m in masks)
    return {"rate": r_z, "compress": rc_z, "delta_r": r_z - rc_z, "pair": pair,
            "multi": (r_z - rc_z) + (r_h - rc_h) + pair,
            "binary": ref_rate(np.concatenate([z, zh]), eps2) - 0.5 * r_z - 0.5 * r_h,
            "delta_r_zhat": r_h - rc_h, "rate_zhat": r_h, "compress_zhat": rc_h}


def ours_all(z, zh, y, k, precision, eps2=EPS2) -> dict[str, float]:
    multi, terms = ctrl_multi_objective(z, zh, y, k, eps2, precision)
    binary, bterms = ctrl_binary_objective(z, zh, eps2, precision)
    out = {"rate": coding_rate(z, eps2, precision),
           "compress": class_compression(z, y, k, eps2, precision),
           "delta_r": delta_r(z, y, k, eps2, precision),
           "pair": pair_delta_r(z, zh, y, k, eps2, precision),
           "multi": multi, "binary": binary, "delta_r_zhat": terms["delta_r_zhat"],
           "rate_zhat": terms["rate_zhat"], "compress_zhat": terms["compress_zhat"]}
    # the logged terms are consistent with the functions
    assert torch.allclose(terms["delta_r_z"], out["delta_r"], rtol=1e-6)
    assert torch.allclose(terms["pair"], out["pair"], rtol=1e-6, atol=1e-6)
    assert torch.allclose(terms["rate_z"], out["rate"], rtol=1e-6)
    assert torch.allclose(bterms["rate_z"], out["rate"], rtol=1e-6)
    assert all(not v.requires_grad for v in (*terms.values(), *bterms.values()))
    return {name: v.item() for name, v in out.items()}


def make_batch(n, d, k, seed, empty_class=None, unit=True):
    rng = np.random.default_rng(seed)
    z, zh = rng.normal(size=(n, d)), rng.normal(size=(n, d))
    if unit:
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        zh /= np.linalg.norm(zh, axis=1, keepdims=True)
    y = rng.integers(0, k, size=n)
    if empty_class is not None:
        y[y == empty_class] = (empty_class + 1) % k
    return z, zh, y


# (n, d, k, empty class): n > d, n < d (n×n Grams), k = 1, an empty class, and mixed cases where
# the totals use d×d but the per-class sets and unions use n×n Gram matrices.
CASES = [(64, 8, 3, None), (12, 32, 3, None), (40, 16, 1, None), (30, 8, 4, 2), (10, 24, 4, 1),
         (48, 32, 4, None), (7, 5, 2, None)]


@pytest.mark.parametrize("n,d,k,empty", CASES)
@pytest.mark.parametrize("precision,rtol", [("float64", 1e-10), ("float32", 1e-4)])
def test_matches_numpy_reference(n, d, k, empty, precision, rtol):
    z, zh, y = make_batch(n, d, k, seed=n * 100 + d, empty_class=empty)
    dtype = torch.float64 if precision == "float64" else torch.float32
    ours = ours_all(torch.tensor(z, dtype=dtype), torch.tensor(zh, dtype=dtype), torch.tensor(y), k,
                    precision)
    ref = ref_all(z, zh, y, k)
    for name in ref:  # the pair term can be ~0: absolute tolerance scaled by the rates' size
        np.testing.assert_allclose(ours[name], ref[name], rtol=rtol, atol=rtol * abs(ref["rate"]),
                                   err_msg=name)


@pytest.mark.parametrize("precision", ["float64", "float32"])
def test_accelerator_layout_matches(monkeypatch, precision):
    """The sync-free layout (P = n, used off the CPU) gives the compact layout's values and grads."""
    z, zh, y = make_batch(40, 6, 3, seed=3, empty_class=1)
    dtype = torch.float64 if precision == "float64" else torch.float32

    def run():
        zt = torch.tensor(z, dtype=dtype, requires_grad=True)
        ht = torch.tensor(zh, dtype=dtype, requires_grad=True)
        v, _ = ctrl_multi_objective(zt, ht, torch.tensor(y), 3, precision=precision)
        v.backward()
        return v.detach(), zt.grad, ht.grad

    compact = run()
    monkeypatch.setattr(rr, "_COMPACT_DEVICES", frozenset())
    static = run()
    for a, b in zip(compact, static):
        torch.testing.assert_close(a, b, rtol=1e-12 if precision == "float64" else 1e-5, atol=1e-7)


def test_matches_metrics_implementation():
    """Cross-check against the evaluation metric's own float64 ΔR (metrics/subspace.py)."""
    z, _, y = make_batch(200, 16, 5, seed=11)
    m = metric_rate_reduction(z, y, eps2=EPS2, normalize=False)
    zt, yt, kw = torch.tensor(z), torch.tensor(y), dict(precision="float64")
    assert coding_rate(zt, **kw).item() == pytest.approx(m["R"], rel=1e-12)
    assert class_compression(zt, yt, 5, **kw).item() == pytest.approx(m["Rc"], rel=1e-12)
    assert delta_r(zt, yt, 5, **kw).item() == pytest.approx(m["delta_R"], rel=1e-12)


# --- closed forms -----------------------------------------------------------------------------
def closed_rate(eigs, n, d, eps2=EPS2):
    """R from the eigenvalues of ZᵀZ: ½ Σ_i log(1 + d/(n ε²) λ_i)."""
    return 0.5 * sum(np.log1p(d / (n * eps2) * lam) for lam in eigs)


def basis_features(d, dims_per_class, k, m, offset, q):
    """Rows = standard basis vectors e_i (class j: dims offset + j·r … + r − 1), each repeated m
    times, rotated by the orthogonal q: unit-norm rows, Z_jᵀZ_j = m·(projector on r dims)."""
    rows, labels = [], []
    for j in range(k):
        for i in range(dims_per_class):
            e = np.zeros(d)
            e[offset + j * dims_per_class + i] = 1.0
            rows += [e] * m
            labels += [j] * m
    return np.array(rows) @ q, np.array(labels)


@pytest.mark.parametrize("precision,rtol", [("float64", 1e-12), ("float32", 1e-5)])
def test_closed_forms_orthogonal_subspaces(precision, rtol):
    d, r, k, m = 24, 4, 3, 5  # z classes on dims 0..11, ẑ classes on dims 12..23 (orthogonal)
    q = np.linalg.qr(np.random.default_rng(0).normal(size=(d, d)))[0]
    z, y = basis_features(d, r, k, m, 0, q)
    zh, _ = basis_features(d, r, k, m, k * r, q)
    n, nj = len(z), r * m
    dtype = torch.float64 if precision == "float64" else torch.float32
    zt, ht, yt = torch.tensor(z, dtype=dtype), torch.tensor(zh, dtype=dtype), torch.tensor(y)

    r_total = closed_rate([m] * (k * r), n, d)  # ZᵀZ = m on 12 dims
    r_class = closed_rate([m] * r, nj, d)  # Z_jᵀZ_j = m on 4 dims, n_j = 20
    r_union = closed_rate([m] * (2 * r), 2 * nj, d)  # Z_j ∪ Ẑ_j: m on 8 dims, 40 rows
    assert coding_rate(zt, precision=precision).item() == pytest.approx(r_total, rel=rtol)
    assert class_compression(zt, yt, k, precision=precision).item() == pytest.approx(r_class, rel=rtol)
    dr = r_total - r_class  # every class has weight 1/3 and the same rate
    assert delta_r(zt, yt, k, precision=precision).item() == pytest.approx(dr, rel=rtol)
    pair = k * (r_union - r_class)
    assert pair_delta_r(zt, ht, yt, k, precision=precision).item() == pytest.approx(pair, rel=rtol)
    multi, _ = ctrl_multi_objective(zt, ht, yt, k, precision=precision)
    assert multi.item() == pytest.approx(2 * dr + pair, rel=rtol)
    binary, _ = ctrl_binary_objective(zt, ht, precision=precision)
    r_all = closed_rate([m] * d, 2 * n, d)  # the union of z and ẑ spans all 24 dims
    assert binary.item() == pytest.approx(r_all - r_total, rel=rtol)
    # a set against itself: no rate reduction
    assert abs(ctrl_binary_objective(zt, zt, precision=precision)[0].item()) < 10 * rtol
    assert abs(pair_delta_r(zt, zt, yt, k, precision=precision).item()) < 10 * rtol * k


def test_closed_form_orthonormal_rows_fewer_than_d():
    n, d, s = 5, 16, 0.7  # ZZᵀ = s² I_n: n eigenvalues s² (the n×n Gram path)
    q = np.linalg.qr(np.random.default_rng(1).normal(size=(d, d)))[0]
    z = torch.tensor(s * q[:n])
    assert coding_rate(z, precision="float64").item() == pytest.approx(
        closed_rate([s * s] * n, n, d), rel=1e-12)
    assert coding_rate(z[:0], precision="float64").item() == 0.0  # empty set


# --- gradients --------------------------------------------------------------------------------
GRAD_CASES = [(14, 5, 3), (6, 9, 3), (4, 10, 2)]  # d×d / n×n Grams (all sets n×n in the last)


@pytest.mark.parametrize("n,d,k", GRAD_CASES)
def test_gradcheck(n, d, k):
    z, zh, y = make_batch(n, d, k, seed=7, empty_class=k - 1)
    zt = torch.tensor(z, requires_grad=True)
    ht = torch.tensor(zh, requires_grad=True)
    yt = torch.tensor(y)
    kw = dict(eps2=EPS2, precision="float64")
    assert torch.autograd.gradcheck(lambda a: delta_r(a, yt, k, **kw), (zt,))
    assert torch.autograd.gradcheck(lambda a: coding_rate(a, **kw), (zt,))
    assert torch.autograd.gradcheck(lambda a, b: pair_delta_r(a, b, yt, k, **kw), (zt, ht))
    assert torch.autograd.gradcheck(lambda a, b: ctrl_multi_objective(a, b, yt, k, **kw)[0], (zt, ht))
    assert torch.autograd.gradcheck(lambda a, b: ctrl_binary_objective(a, b, **kw)[0], (zt, ht))


def test_backward_twice_and_no_grad():
    """retain_graph: a second backward gives the same gradient (nothing is overwritten)."""
    z, zh, y = make_batch(60, 8, 3, seed=9)
    zt, ht = torch.tensor(z, requires_grad=True), torch.tensor(zh, requires_grad=True)
    v, _ = ctrl_multi_objective(zt, ht, torch.tensor(y), 3)
    g1 = torch.autograd.grad(v, (zt, ht), retain_graph=True)
    g2 = torch.autograd.grad(v, (zt, ht))
    assert all(torch.equal(a, b) for a, b in zip(g1, g2))
    with torch.no_grad():
        assert ctrl_multi_objective(zt, ht, torch.tensor(y), 3)[0].item() == v.item()


@pytest.mark.parametrize("n,d", [(40, 8), (4, 8)])  # d×d and n×n Gram paths
def test_non_finite_features_give_nan_not_error(n, d):
    z, zh, y = make_batch(n, d, 2, seed=1)
    z[1, 2] = np.nan
    v, _ = ctrl_multi_objective(torch.tensor(z), torch.tensor(zh), torch.tensor(y), 2)
    assert torch.isnan(v)


def test_float32_gradient_matches_float64():
    z, zh, y = make_batch(300, 32, 4, seed=5)
    grads = []
    for dtype, precision in ((torch.float64, "float64"), (torch.float32, "float32")):
        zt = torch.tensor(z, dtype=dtype, requires_grad=True)
        ht = torch.tensor(zh, dtype=dtype, requires_grad=True)
        ctrl_multi_objective(zt, ht, torch.tensor(y), 4, precision=precision)[0].backward()
        grads.append(torch.cat([zt.grad, ht.grad]).double())
    err = (grads[0] - grads[1]).abs().max() / grads[0].abs().max()
    assert err < 1e-4


# --- dtypes, autocast, validation ----------------------------------------------------------------
def test_autocast_bf16_gives_float32_value():
    z, zh, y = make_batch(100, 16, 4, seed=2)
    zt, ht = torch.tensor(z, dtype=torch.float32), torch.tensor(zh, dtype=torch.float32)
    yt = torch.tensor(y)
    ref, _ = ctrl_multi_objective(zt, ht, yt, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside, _ = ctrl_multi_objective(zt, ht, yt, 4)
        r_inside = coding_rate(zt)
        half = ctrl_binary_objective(zt.bfloat16(), ht.bfloat16())[0]
    assert inside.dtype == torch.float32 and torch.equal(inside, ref)
    assert torch.equal(r_inside, coding_rate(zt))
    assert half.dtype == torch.float32  # half-precision features: the loss comes back in float32


def test_precision_and_dtype():
    z, zh, y = make_batch(50, 8, 2, seed=4)
    z64 = torch.tensor(z)
    assert coding_rate(z64).dtype == torch.float64  # computed in float32, returned in z's dtype
    r64 = coding_rate(z64, precision="float64").item()
    assert r64 == pytest.approx(coding_rate(z64).item(), rel=1e-5)
    with pytest.raises(ValueError, match="precision"):
        coding_rate(z64, precision="float16")
    with pytest.raises(ValueError, match="labels"):
        delta_r(z64, torch.tensor(y[:-1]), 2)
    with pytest.raises(ValueError, match="z_hat"):
        pair_delta_r(z64, z64[:-1], torch.tensor(y), 2)
    with pytest.raises(RuntimeError, match="not initialised"):
        coding_rate(z64, distributed=True)


# --- DDP: 2 processes, gloo -------------------------------------------------------------------
N_DDP, D_DDP, K_DDP, X_DIM = 22, 24, 3, 5  # d > n: one process uses n×n Grams, DDP d×d


def ddp_problem():
    """Global batch: inputs x, x_hat (N, 5), labels, and a tiny linear encoder's weight.
    Rank 0 holds rows 0..12 (all classes, uneven), rank 1 rows 13..21 (class 2 missing)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(N_DDP, X_DIM, generator=g, dtype=torch.float64)
    xh = torch.randn(N_DDP, X_DIM, generator=g, dtype=torch.float64)
    y = torch.tensor([0, 1, 2, 2, 0, 1, 2, 0, 2, 2, 1, 2, 0] + [0, 1, 1, 0, 1, 0, 0, 1, 1])
    w = torch.randn(X_DIM, D_DDP, generator=g, dtype=torch.float64)
    return x, xh, y, w, [slice(0, 13), slice(13, N_DDP)]


def encode(x, w):
    return torch.nn.functional.normalize(x @ w, dim=1)


def ddp_worker(rank, world, tmp):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world)
    try:
        x, xh, y, w0, parts = ddp_problem()
        sl = parts[rank]
        out = {}
        for precision in ("float64", "float32"):
            w = w0.clone().requires_grad_(True)  # the encoder, replicated on both ranks
            z, zh = encode(x[sl], w), encode(xh[sl], w)
            value, terms = ctrl_multi_objective(z, zh, y[sl], K_DDP, precision=precision)
            gz, gh, gw = torch.autograd.grad(value, (z, zh, w))
            gw_sum = gw.clone()
            dist.all_reduce(gw_sum)  # DDP all-reduces parameter gradients (then divides by W)
            out[precision] = dict(value=value.detach(), terms=terms, gz=gz, gh=gh, gw=gw,
                                  gw_ddp=gw_sum / world)
        z = encode(x[sl], w0)
        out["dr"] = delta_r(z, y[sl], K_DDP, precision="float64", group=dist.group.WORLD)
        out["rate"] = coding_rate(z, precision="float64")
        out["binary"] = ctrl_binary_objective(z, encode(xh[sl], w0), precision="float64")[0]
        out["local"] = delta_r(z, y[sl], K_DDP, precision="float64", distributed=False)
        torch.save(out, os.path.join(tmp, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_ddp_two_processes_equal_global_batch(tmp_path):
    mp.spawn(ddp_worker, args=(2, str(tmp_path)), nprocs=2, join=True)
    res = [torch.load(tmp_path / f"rank{r}.pt") for r in range(2)]
    x, xh, y, w0, parts = ddp_problem()
    # ptol: the parameter gradient sums per-sample terms as two partial sums and an all-reduce,
    # another order than one matmul; in float32 that rounding reached 1.07e-5 · max|g| on an Intel
    # Xeon (AVX-512), so its check allows 10× the activation-gradient tolerance there
    for precision, tol, ptol in (("float64", 1e-12, 1e-12), ("float32", 1e-5, 1e-4)):
        w = w0.clone().requires_grad_(True)
        z, zh = encode(x, w), encode(xh, w)
        value, terms = ctrl_multi_objective(z, zh, y, K_DDP, precision=precision)
        gz, gh, gw = torch.autograd.grad(value, (z, zh, w))
        r0, r1 = res[0][precision], res[1][precision]
        assert torch.equal(r0["value"], r1["value"])  # bitwise the same loss on every rank
        for r, sl in zip((r0, r1), parts):
            torch.testing.assert_close(r["value"], value.detach(), rtol=tol, atol=0)
            for name in terms:
                torch.testing.assert_close(r["terms"][name], terms[name], rtol=tol, atol=tol)
            # local-z gradients = W × the rows of the single-process gradient on the concatenated
            # batch (the gradient of the sum of the W ranks' identical losses)
            torch.testing.assert_close(r["gz"], 2 * gz[sl], rtol=tol, atol=2 * tol * gz.abs().max().item())
            torch.testing.assert_close(r["gh"], 2 * gh[sl], rtol=tol, atol=2 * tol * gh.abs().max().item())
            # parameters: the AVERAGE over ranks (the trainer's, DDP's) is the global-batch gradient,
            # with no manual scaling of the loss
            atol = ptol * gw.abs().max().item()
            torch.testing.assert_close(r["gw_ddp"], gw, rtol=tol, atol=atol)
    # each rank's own parameter gradient is W × its share (the gradient through its rows only)
    shares = []
    for sl in parts:
        w = w0.clone().requires_grad_(True)
        mask = torch.zeros(N_DDP, 1, dtype=torch.float64)
        mask[sl] = 1
        z, zh = encode(x, w), encode(xh, w)
        only = lambda t: t * mask + (t * (1 - mask)).detach()  # noqa: E731
        value = ctrl_multi_objective(only(z), only(zh), y, K_DDP, precision="float64")[0]
        shares.append(torch.autograd.grad(value, w)[0])
    for r, share in zip(res, shares):
        torch.testing.assert_close(r["float64"]["gw"], 2 * share, rtol=1e-10, atol=1e-12)
    z, zh = encode(x, w0), encode(xh, w0)
    for r, sl in zip(res, parts):
        torch.testing.assert_close(r["dr"], delta_r(z, y, K_DDP, precision="float64"),
                                   rtol=1e-12, atol=0)
        torch.testing.assert_close(r["rate"], coding_rate(z, precision="float64"), rtol=1e-12, atol=0)
        torch.testing.assert_close(r["binary"], ctrl_binary_objective(z, zh, precision="float64")[0],
                                   rtol=1e-12, atol=0)
        torch.testing.assert_close(r["local"], delta_r(z[sl], y[sl], K_DDP, precision="float64"),
                                   rtol=1e-12, atol=0)
