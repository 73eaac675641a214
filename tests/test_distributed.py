"""Data-parallel training (``genae.distributed``): 2 CPU processes with gloo against one process.

One spawn of two ranks runs every DDP scenario (process start-up dominates the cost); the
single-process references run in the test process. The references are independent of the DDP
code: plain ``train()`` with the same global batch.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors.torch import load_file

from conftest import fast_train_overrides, tiny_overrides
from genae import collectives, distributed, runs
from genae.config import build_config
from genae.errors import Interrupted, NonFiniteLoss
from genae.training import resume, train

pytestmark = pytest.mark.ddp  # several processes per test: run apart from the parallel workers (Makefile)

WORLD = 2
EQUIV = ("vae", "wae-gan", "ctrl-multi", "maskaae",  # ctrl-multi: Gram all-reduce and GlobalBatchNorm
         "imae", "infovae", "beta-tcvae")  # batch-level estimators on the global batch (collectives.global_rows)
STEPS = 4
BATCH = 20  # global batch: 10 per rank; ctrl-multi's fake data has 10 classes (balanced batches)


def _cfg(root, name, method="vae", steps=STEPS, **extra):
    base = dict(batch_size=BATCH, threads=1)
    base.update(extra)
    return build_config(method, "fake", overrides=tiny_overrides(method) + fast_train_overrides(steps, **base),
                        out=str(Path(root) / name))


def _weights(run_dir):
    return load_file(str(runs.latest_checkpoint(run_dir) / "model.safetensors"))


def _max_diff(a, b):
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) if a[k].numel() else 0.0 for k in a)


def _trained(run_dir) -> tuple[frozenset[str], float]:
    """The run's parameter names (what optimizers step) and its largest learning rate (``model.*lr*``,
    any player; the schedule only lowers it)."""
    method = runs.load_run(run_dir)
    model = runs.run_config(run_dir)[0].model
    lr = max(float(v) for k, v in vars(model).items() if "lr" in k and isinstance(v, (int, float))
             and not isinstance(v, bool))
    return frozenset(k for k, _ in method.named_parameters()), lr


# Two float32 trainings that differ only in the order of their reductions (the all-reduce adds the
# ranks' halves; another CPU's kernels block a matrix product differently) differ in the last bits
# of every loss and gradient. Adam divides each gradient element by its own running RMS, so the
# step of an element whose gradient is at rounding level (terms cancelling to ~1e-9) is set by the
# rounding: it can be +lr in one run and -lr in the other. Seen on an Intel Xeon (AMX) for
# ctrl-multi: 10 of 65,536 weights 2·lr apart after 4 steps, every other weight within 1e-6; what is
# computed from the weights (BatchNorm statistics, CTRL's class Gaussians fitted at the end) then
# differs by that much relative to its own scale. So:
# - every entry within FLIP·Σ_t lr_t (twice Adam's unit step |m̂/√v̂| ≲ 1, per step), times the
#   entry's scale where that exceeds 1 (statistics of activations);
# - in each parameter tensor at most FLIP_FRACTION of the elements (at least one) further apart
#   than rounding of what the steps moved them (REL × moved + ABS). A real difference of objective
#   (a per-rank instead of a global-batch statistic) moves most elements of several tensors apart.
FLIP, FLIP_FRACTION, REL, ABS = 2.0, 0.01, 1e-2, 1e-6


def _assert_same_training(a, b, moved_from, run_dir, steps, what=""):
    """``a`` and ``b``: state dicts after ``steps`` steps of the run ``run_dir`` (its parameter names
    and learning rate); ``moved_from``: the state dict after the first step (what the later steps
    moved an element measures its step size)."""
    params, lr = _trained(run_dir)
    bound = FLIP * steps * lr
    assert a.keys() == b.keys()
    for k in a:
        if not a[k].is_floating_point() or not a[k].numel():
            assert torch.equal(a[k], b[k]), (what, k)
            continue
        diff = (a[k].double() - b[k].double()).abs()
        scale = max(1.0, float(a[k].abs().max()))
        assert float(diff.max()) <= bound * scale, (what, k, float(diff.max()), bound * scale)
        if k in params:
            moved = (a[k].double() - moved_from[k].double()).abs()
            off = int((diff > REL * moved + ABS).sum())
            assert off <= max(1, FLIP_FRACTION * diff.numel()), (what, k, off, diff.numel())


# --------------------------------------------------------------------------------------------
# The two ranks
# --------------------------------------------------------------------------------------------
def _worker(rank, world, root):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{root}/rendezvous", rank=rank, world_size=world)
    out = {}
    try:
        # 1. N steps at world size 2 with global batch B, per method
        for m in EQUIV:
            train(_cfg(root, f"ddp-{m}", m))
        # 2. resume under DDP: a full run, and a run rolled back to its step-2 checkpoint and resumed
        train(_cfg(root, "full", "wae-gan", steps=6))
        cut = train(_cfg(root, "cut", "wae-gan", steps=6, keep_ckpts=3))
        dist.barrier()
        if rank == 0:
            for later in ("step-00000004", "step-00000006"):
                shutil.rmtree(cut / "checkpoints" / later)
        dist.barrier()
        resume(cut)
        # 3. SIGTERM reaching rank 1 only (during its 3rd batch): both ranks stop after step 3
        import genae.trainer as gt
        real_next, calls = gt.BatchSampler.next, {"n": 0}

        def next_and_signal(self):
            calls["n"] += 1
            if calls["n"] == 3 and rank == 1:
                os.kill(os.getpid(), signal.SIGTERM)
            return real_next(self)

        gt.BatchSampler.next = next_and_signal
        try:
            train(_cfg(root, "sigterm", "wae-gan", steps=6, ckpt_every=100))
        except Interrupted as e:
            out["interrupted"] = str(e)
        finally:
            gt.BatchSampler.next = real_next
        resume(Path(root) / "sigterm")
        # 4. a non-finite loss on rank 1 only (its 3rd batch is NaN): every rank stops at step 2
        calls["n"] = 0

        def next_poisoned(self):
            calls["n"] += 1
            b = real_next(self)
            if calls["n"] == 3 and rank == 1:
                b.x[0] = float("nan")
            return b

        gt.BatchSampler.next = next_poisoned
        try:
            train(_cfg(root, "nan", "vae", steps=6))
        except NonFiniteLoss as e:
            out["nonfinite_step"], out["nonfinite_player"] = e.step, str(e)
        finally:
            gt.BatchSampler.next = real_next
        # 5. evaluation: batches sharded over ranks and gathered, as in one process
        x = torch.randn(23, 6, generator=torch.Generator().manual_seed(1))
        torch.manual_seed(0)
        net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh())
        out["shard_map"] = distributed.shard_map(net, x, batch_size=4)
        vec = train(build_config("vae", "synthetic", out=str(Path(root) / "ddp-vec"), overrides=[
            *tiny_overrides("vae"), "model.likelihood='gaussian'", "data.limit=300",
            *fast_train_overrides(2, batch_size=BATCH, threads=1)]))
        out["eval"] = _evaluate(root, Path(root) / "ddp-vae", ["recon-mse", "knn-acc"])
        out["eval_vec"] = _evaluate(root, vec, ["recon-mse", "fid"])
        # 6. GlobalBatchNorm: output and input gradient of a global batch split over ranks
        torch.manual_seed(0)
        xb = torch.randn(8, 3, 2, 2, generator=torch.Generator().manual_seed(2))
        bn = collectives.GlobalBatchNorm(3)
        with torch.no_grad():
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.uniform_(-1, 1)
        mine = xb[rank::world].clone().requires_grad_(True)
        y = bn(mine)
        (y * torch.arange(y.numel(), dtype=y.dtype).view_as(y)).mean().backward()
        gw = bn.weight.grad.clone()
        dist.all_reduce(gw)
        out["bn"] = dict(y=y.detach(), gx=mine.grad, gw=gw / world, running_var=bn.running_var.clone())
        torch.save(out, Path(root) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _evaluate(root, run, names):
    """Metrics ``names`` of ``run`` (recon-mse: reconstructions, knn-acc: encodings, fid: backbone
    features; raw vectors, no backbone to train), in batches of 7 so W ranks share several."""
    from genae.metrics import EvalContext, evaluate

    method, cfg = runs.load_run(run), runs.run_config(run)[0]
    ctx = EvalContext(cfg.data, n_samples=40, batch_size=7, seed=0, cache_dir=str(Path(root) / "cache"),
                      progress=False)
    res = evaluate(method, ctx, names)
    return {k: {kk: vv for kk, vv in v.items() if isinstance(vv, float) and kk != "seconds"}
            for k, v in res.items()}


@pytest.fixture(scope="module")
def ddp_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(WORLD, str(root)), nprocs=WORLD, join=True)
    return root, [torch.load(root / f"rank{r}.pt") for r in range(WORLD)]


# --------------------------------------------------------------------------------------------
# Equivalence with one process
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", EQUIV)
def test_ddp_equals_single_process_global_batch(ddp_runs, tmp_path, method):
    root, _ = ddp_runs
    single = _weights(train(_cfg(tmp_path, "single", method)))
    ddp = _weights(root / f"ddp-{method}")
    before = _weights(train(_cfg(tmp_path, "one-step", method, steps=1)))
    _assert_same_training(single, ddp, before, tmp_path / "single", STEPS, method)
    # rank 0 alone wrote the run: one metrics row per log interval, values = means over ranks
    rows = [json.loads(l) for l in (root / f"ddp-{method}" / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(l) for l in (tmp_path / "single" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [r["step"] for r in ref] == [2, 4]
    loss = next(k for k in ref[0] if k.endswith("/loss"))
    assert rows[0][loss] == pytest.approx(ref[0][loss], rel=1e-4, abs=1e-5)


def test_the_tolerance_holds_when_only_the_summation_order_changes(tmp_path, monkeypatch):
    """ctrl-multi in one process, its batches' rows permuted (a fixed permutation of each global
    batch; the rate reduction, BatchNorm and every loss are sums over rows, so the objective is the
    same and only the order of every reduction changes): the DDP tolerance above must accept it,
    and must reject a real change of objective (ε² 0.5 → 0.55) in the same tensors."""
    import genae.trainer as gt

    single = _weights(train(_cfg(tmp_path, "single", "ctrl-multi")))
    before = _weights(train(_cfg(tmp_path, "one-step", "ctrl-multi", steps=1)))
    real_next = gt.BatchSampler.next
    perm = torch.randperm(BATCH, generator=torch.Generator().manual_seed(3))

    def permuted(self):
        b = real_next(self)
        return type(b)(b.x[perm], None if b.y is None else b.y[perm])

    monkeypatch.setattr(gt.BatchSampler, "next", permuted)
    reordered = _weights(train(_cfg(tmp_path, "reordered", "ctrl-multi")))
    monkeypatch.setattr(gt.BatchSampler, "next", real_next)
    assert _max_diff(single, reordered) > 0, "the permutation did not change the summation order"
    _assert_same_training(single, reordered, before, tmp_path / "single", STEPS, "reordered")
    other = _weights(train(build_config("ctrl-multi", "fake", out=str(tmp_path / "other"), overrides=[
        *tiny_overrides("ctrl-multi"), "model.eps2=0.55", *fast_train_overrides(STEPS, batch_size=BATCH,
                                                                                  threads=1)])))
    with pytest.raises(AssertionError):
        _assert_same_training(single, other, before, tmp_path / "single", STEPS, "another objective")


def test_resume_under_ddp_equals_uninterrupted_ddp_run(ddp_runs):
    root, _ = ddp_runs
    full, cut = _weights(root / "full"), _weights(root / "cut")
    assert full.keys() == cut.keys()
    for k in full:
        assert torch.equal(full[k], cut[k]), k  # the same ranks, the same reduction order: bit-identical


def test_resume_with_another_world_size_keeps_the_global_batch(ddp_runs, tmp_path):
    root, _ = ddp_runs
    cut = tmp_path / "from-ddp"
    shutil.copytree(root / "ddp-vae", cut)
    shutil.rmtree(cut / "checkpoints" / "step-00000004")
    resume(cut)  # steps 3-4 in one process, from the world-size-2 checkpoint of step 2
    single = _weights(train(_cfg(tmp_path, "single", "vae")))
    before = _weights(train(_cfg(tmp_path, "one-step", "vae", steps=1)))
    _assert_same_training(single, _weights(cut), before, tmp_path / "single", STEPS, "resumed")


def test_sigterm_on_one_rank_stops_all_ranks_at_one_step(ddp_runs):
    root, res = ddp_runs
    for r in res:
        assert "stopped by SIGTERM at step 3" in r["interrupted"]
    assert [c.name for c in runs.checkpoint_dirs(root / "sigterm")][:1] == ["step-00000003"]
    full = _weights(root / "full")  # same config (6 steps, wae-gan); the resumed run matches it
    resumed = _weights(root / "sigterm")
    assert _max_diff(full, resumed) == 0.0


def test_nonfinite_loss_on_one_rank_stops_every_rank(ddp_runs):
    root, res = ddp_runs
    for r in res:
        assert r["nonfinite_step"] == 2, r["nonfinite_player"]
    assert "on another rank" in res[0]["nonfinite_player"]  # rank 0's data was finite
    assert runs.latest_checkpoint(root / "nan").name == "step-00000002"  # the last good one, intact


def test_sharded_evaluation_equals_one_process(ddp_runs):
    _, res = ddp_runs
    x = torch.randn(23, 6, generator=torch.Generator().manual_seed(1))
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.Tanh())
    with torch.no_grad():
        expected = torch.cat([net(x[i:i + 4]) for i in range(0, 23, 4)])
    for r in res:
        assert torch.equal(r["shard_map"], expected)  # the same batches: bit-identical


def test_evaluation_at_world_size_2_equals_world_size_1(ddp_runs):
    root, res = ddp_runs
    # the same checkpoints, one process: the same batches through the same networks, identical numbers
    single = _evaluate(root, root / "ddp-vae", ["recon-mse", "knn-acc"])
    single_vec = _evaluate(root, root / "ddp-vec", ["recon-mse", "fid"])
    assert single["recon-mse"]["value"] > 0 and 0 <= single["knn-acc"]["value"] <= 1
    assert single_vec["fid"]["value"] > 0
    for r in res:
        assert r["eval"] == single and r["eval_vec"] == single_vec


def test_global_batchnorm_equals_batchnorm_of_the_global_batch(ddp_runs):
    _, res = ddp_runs
    torch.manual_seed(0)
    xb = torch.randn(8, 3, 2, 2, generator=torch.Generator().manual_seed(2)).double().requires_grad_(True)
    bn = torch.nn.BatchNorm2d(3)
    with torch.no_grad():  # the ranks' parameters (drawn in float32), then float64 for the reference
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-1, 1)
    bn.double()
    y = bn(xb)
    # each rank's loss is the mean over its rows of y·c: the global objective is the mean of the two
    c = torch.zeros_like(y)
    for r in range(WORLD):
        rows = y[r::WORLD]
        c[r::WORLD] = torch.arange(rows.numel(), dtype=y.dtype).view_as(rows) / WORLD
    (y * c).mean(dim=None).mul(WORLD).backward()  # = mean over ranks of each rank's mean
    for r, out in enumerate(res):
        got = out["bn"]
        torch.testing.assert_close(got["y"].double(), y[r::WORLD].detach(), rtol=1e-5, atol=1e-5)
        # local input gradient = W × the rows of the global gradient (sum of the ranks' losses)
        torch.testing.assert_close(got["gx"].double(), WORLD * xb.grad[r::WORLD], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got["gw"].double(), bn.weight.grad, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(got["running_var"].double(), bn.running_var, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------
# Rank-independent pieces, in one process
# --------------------------------------------------------------------------------------------
def test_global_noise_gives_each_rank_its_rows_of_the_global_draw():
    torch.manual_seed(3)
    ref = {"randn": torch.randn(6, 2), "like": torch.randn_like(torch.empty(6, 3)), "rand": torch.rand(6, 1, 2),
           "int": torch.randint(5, (6,)), "normal_": torch.empty(6, 2).normal_(), "small": torch.randn(4),
           "multinomial": torch.multinomial(torch.tensor([0.2, 0.3, 0.5]), 6, replacement=True)}
    for rank in range(3):
        torch.manual_seed(3)
        with distributed.GlobalNoise(local=2, world=3, rank=rank):
            got = {"randn": torch.randn(2, 2), "like": torch.randn_like(torch.empty(2, 3)),
                   "rand": torch.rand((2, 1, 2)), "int": torch.randint(5, (2,)),
                   "normal_": torch.empty(2, 2).normal_(), "small": torch.randn(4),
                   "multinomial": torch.multinomial(torch.tensor([0.2, 0.3, 0.5]), 2, replacement=True)}
        for k in ref:
            want = ref[k] if k == "small" else ref[k][rank::3]  # a non-batch draw is left alone
            assert torch.equal(got[k], want), k
            assert got[k].is_contiguous(), k


def test_sampler_shards_are_disjoint_and_make_the_global_batch():
    from genae.data import BatchSampler, load_dataset
    from genae.config import DataConfig
    from genae.errors import ConfigError

    ds = load_dataset(DataConfig(name="fake"), "train")
    for balanced in (False, True):
        full = BatchSampler(ds, 20, seed=1, balanced=balanced)
        shards = [BatchSampler(ds, 20, seed=1, balanced=balanced, shard=(r, 2)) for r in range(2)]
        for _ in range(3):
            g, parts = full.next(), [s.next() for s in shards]
            assert torch.equal(torch.cat([p.x for p in parts]).sort(0)[0], g.x.sort(0)[0])
            assert torch.equal(parts[1].y, g.y[1::2])
            if balanced:  # a balanced global batch of 2 per class: every rank holds every class
                assert all(len(set(p.y.tolist())) == ds.num_classes for p in parts)
        assert shards[0].state_dict() == full.state_dict()  # the state is the global one
    with pytest.raises(ConfigError, match="divisible by the world size 3"):
        BatchSampler(ds, 20, seed=1, shard=(0, 3))


# --------------------------------------------------------------------------------------------
# A killed rank under torchrun
# --------------------------------------------------------------------------------------------
_KILL = r"""
import os, signal, sys, torch
torch.set_num_threads(1)
import genae.trainer as gt
real, n = gt.BatchSampler.next, [0]
def nxt(self):
    n[0] += 1
    if n[0] == 6 and os.environ["RANK"] == "1":
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self)
gt.BatchSampler.next = nxt
from genae.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_killed_rank_ends_the_job_with_the_last_checkpoint_intact(tmp_path):
    script = tmp_path / "kill.py"
    script.write_text(_KILL)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GENAE_DDP_TIMEOUT": "60",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "--monitor-interval", "0.2", str(script), "train", "vae", "--data", "fake", "--out", str(tmp_path / "run"),
           *sum((["--set", o] for o in tiny_overrides("vae") + fast_train_overrides(10, batch_size=BATCH)), [])]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode != 0
    assert "SIGKILL" in p.stderr or "Signal 9" in p.stderr, p.stderr[-2000:]  # torchrun names the dead rank
    # the survivor says what happened, and where training can continue from (no traceback)
    assert "error: rank 0 of 2: a collective failed, another rank has probably died" in p.stderr, p.stderr[-3000:]
    assert "the last complete checkpoint is" in p.stderr
    ckpt = runs.latest_checkpoint(tmp_path / "run")
    assert ckpt is not None and runs.verify_checkpoint(ckpt) is None
    assert ckpt.name in ("step-00000002", "step-00000004")  # rank 1 died drawing its 6th batch
    # `torchrun -m genae resume` finishes the run; it equals the uninterrupted one-process run
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "-m", "genae", "resume", str(tmp_path / "run")]
    p = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    assert p.stdout.count("run written to") == 1  # rank 0 alone reports
    single = train(build_config("vae", "fake", out=str(tmp_path / "single"),
                                overrides=tiny_overrides("vae") + fast_train_overrides(10, batch_size=BATCH)))
    assert runs.latest_checkpoint(tmp_path / "run").name == "step-00000010"
    before = train(build_config("vae", "fake", out=str(tmp_path / "one-step"),
                                overrides=tiny_overrides("vae") + fast_train_overrides(1, batch_size=BATCH)))
    _assert_same_training(_weights(single), _weights(tmp_path / "run"), _weights(before), single, 10,
                          "torchrun resume")
    # `torchrun -m genae eval`: rank 0 prints and writes the numbers of one process
    metrics = ["--metrics", "recon-mse,knn-acc", "--json", "--n-samples", "40"]
    p = subprocess.run([*cmd[:-2], "eval", str(tmp_path / "run"), *metrics], env=env, capture_output=True,
                       text=True, timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    one = subprocess.run([sys.executable, "-m", "genae", "eval", str(tmp_path / "run"), *metrics], env=env,
                         capture_output=True, text=True, timeout=240)
    strip = lambda out: {k: {kk: vv for kk, vv in v.items() if kk != "seconds"}  # noqa: E731
                         for k, v in json.loads(out).items()}
    assert strip(p.stdout) == strip(one.stdout)


# --------------------------------------------------------------------------------------------
# GPU throughput switches, built and checked on the CPU
# --------------------------------------------------------------------------------------------
def test_channels_last_trains_the_same_network(tmp_path):
    over = ["model.net='conv'"]
    runs_ = {}
    for name, steps, extra in (("plain", 3, {}), ("cl", 3, {"channels_last": True}), ("one-step", 1, {})):
        cfg = build_config("dcgan", "fake", out=str(tmp_path / name), overrides=tiny_overrides("dcgan") + over
                           + fast_train_overrides(steps, batch_size=BATCH, threads=1, **extra))
        runs_[name] = _weights(train(cfg))
    # other convolution kernels: the same arithmetic summed in another order
    _assert_same_training(runs_["plain"], runs_["cl"], runs_["one-step"], tmp_path / "plain", 3, "channels-last")
    assert any(v.dim() == 4 for v in runs_["cl"].values())  # the conv weights were in the switch's scope


def test_classes_missing_from_a_rank_are_refused_before_training(tmp_path):
    import genae.trainer as gt
    from genae.errors import ConfigError

    # world size 4 without a process group: TrainingState alone decides, before any collective
    cfg = _cfg(tmp_path, "ctrl", "ctrl-multi", batch_size=20)  # 10 classes × 2 rows < 4 ranks
    from genae.data import load_dataset
    data = load_dataset(cfg.data, "train")
    method = runs.build_method(cfg, data.info)
    with pytest.raises(ConfigError, match="train.batch_size >= 40"):
        gt.TrainingState(method, data, cfg.train, torch.device("cpu"), shard=(0, 4))
    gt.TrainingState(method, data, cfg.train, torch.device("cpu"), shard=(0, 2))  # 2 per class: fine
