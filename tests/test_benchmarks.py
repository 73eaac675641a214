"""Tests of the data-preparation scripts in benchmarks/ whose output the recorded figures rest on."""
from __future__ import annotations

import csv
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from genae.data import DataConfig, load_dataset
from test_data import write_mnist_dir, write_idx

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _run(mod, monkeypatch, *args):
    monkeypatch.setattr(sys, "argv", ["x", *map(str, args)])
    mod.main()


def test_mnist_disjoint_drops_exactly_the_held_out_test_images(tmp_path, monkeypatch):
    full = write_mnist_dir(tmp_path / "full", n_train=40, n_test=10, gz=False)
    xf, yf = full["train"]
    pick = np.array([3, 7, 8, 20, 39])              # the "MNIST-10k" test split: 5 of full's train
    small = tmp_path / "small"
    small.mkdir()
    write_idx(small / "t10k-images-idx3-ubyte.gz", xf[pick])
    write_idx(small / "t10k-labels-idx1-ubyte.gz", yf[pick])
    mod = _script("mnist_disjoint")
    _run(mod, monkeypatch, "--full", tmp_path / "full", "--mnist10k", small, "--out", tmp_path / "out")
    tr = load_dataset(DataConfig(name="mnist", root=str(tmp_path / "out"), download=False), "train")
    te = load_dataset(DataConfig(name="mnist", root=str(tmp_path / "out"), download=False), "test")
    keep = np.setdiff1d(np.arange(40), pick)
    assert np.array_equal(tr.x[:, 0].numpy(), xf[keep]) and tr.y.tolist() == yf[keep].tolist()
    assert np.array_equal(te.x[:, 0].numpy(), xf[pick]) and te.y.tolist() == yf[pick].tolist()
    train_rows = {r.tobytes() for r in tr.x.numpy()}
    assert not any(r.tobytes() in train_rows for r in te.x.numpy())        # disjoint


@pytest.mark.parametrize("how", ["image not in full", "label disagrees"])
def test_mnist_disjoint_refuses_inconsistent_sets(tmp_path, monkeypatch, how):
    full = write_mnist_dir(tmp_path / "full", n_train=20, n_test=4, gz=False)
    x, y = full["train"][0][:3].copy(), full["train"][1][:3].copy()
    if how == "image not in full":
        x[0] = 255 - x[0]
    else:
        y[1] = (y[1] + 1) % 10
    small = tmp_path / "small"
    small.mkdir()
    write_idx(small / "t10k-images-idx3-ubyte", x)
    write_idx(small / "t10k-labels-idx1-ubyte", y)
    with pytest.raises(SystemExit, match="not in" if how == "image not in full" else "different labels"):
        _run(_script("mnist_disjoint"), monkeypatch, "--full", tmp_path / "full", "--mnist10k", small,
             "--out", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_ctrl_repro_scores_a_chosen_step_on_another_copy_of_the_data(tmp_path, monkeypatch):
    from conftest import fast_train_overrides, tiny_overrides
    from genae import runs
    from genae.config import build_config
    from genae.metrics import EvalContext, evaluate
    from genae.training import train

    monkeypatch.setenv("GENAE_CACHE", str(tmp_path / "cache"))
    write_mnist_dir(tmp_path / "a", n_train=60, n_test=20)
    write_mnist_dir(tmp_path / "b", n_train=50, n_test=30, seed=1)
    cfg = build_config("ctrl-multi", "mnist", out=str(tmp_path / "run"),
                       overrides=tiny_overrides("ctrl-multi") + fast_train_overrides(4)
                       + [f"data.root={str(tmp_path / 'a')!r}", "data.download=False"])
    run = str(train(cfg))
    repro = _script("ctrl_repro")
    own = repro.figures(run, 64, "test", ns_only=True)
    other = repro.figures(run, 64, "test", step=2, data_dir=str(tmp_path / "b"), ns_only=True)
    assert own["step"] == 4 and (own["ns_acc"]["n_train"], own["ns_acc"]["n_test"]) == (60, 20)
    assert other["step"] == 2 and (other["ns_acc"]["n_train"], other["ns_acc"]["n_test"]) == (50, 30)
    # the same number as genae's own evaluation of that checkpoint on that data
    ctx = EvalContext(build_config("ctrl-multi", "mnist", overrides=[f"data.root={str(tmp_path / 'b')!r}"]).data,
                      split="test", n_samples=64, backbone="domain")
    ref = evaluate(runs.load_run(run, step=2), ctx, ["ns-acc"])["ns-acc"]
    assert other["ns_acc"]["centered"] == ref["centered"] and other["data_dir"] == str(tmp_path / "b")


def test_maskaae_sweep_per_m_overrides_table_and_resume(tmp_path, monkeypatch):
    import json

    import yaml
    mod = _script("maskaae_sweep")
    out = tmp_path / "sweep"
    args = ["--quick", "--steps", 12, "--ms", "2,4", "--n-samples", 200, "--set", "data.n=600",
            "--set-m", "4:model.lam3_every=7", "--set-m", "4:train.steps=16", "--out", out]
    _run(mod, monkeypatch, *args)
    rows = {(r["method"], int(r["m"])): r for r in csv.DictReader((out / "results.csv").open())}
    assert set(rows) == {(v, m) for v in ("maskaae", "maskaae-fixed") for m in (2, 4)}
    for (variant, m), r in rows.items():
        cfg = yaml.safe_load(open(Path(r["run"]) / "config.yaml"))
        assert cfg["model"]["latent_dim"] == m and cfg["model"]["learn_mask"] == (variant == "maskaae")
        assert (cfg["model"]["lam3_every"], cfg["train"]["steps"]) == ((7, 16) if m == 4 else (40, 12))
        assert int(r["steps"]) == cfg["train"]["steps"] and 0 <= int(r["m_active"]) <= m
    assert "| maskaae | 4 | 0 | 16 | 7 |" in (out / "results.md").read_text()
    assert (out / "fid_vs_m.png").stat().st_size > 0
    # one genae sweep per variant, its runs evaluated with the benchmark's metrics
    manifest = json.loads((out / "maskaae" / "manifest.json").read_text())
    assert [p["status"] for p in manifest["points"]] == ["done", "done"]
    assert manifest["metrics"] == ["fid", "active-dims", "nac"] and manifest["eval"]["n_samples"] == 200
    # a second invocation reuses every finished run instead of training it again
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*/runs/*/*") if p.is_file()}
    assert len([p for p in stamps if p.name == "config.yaml"]) == 4
    _run(mod, monkeypatch, *args)
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("*/runs/*/*") if p.is_file()}
    # --finished-only over a wider grid: tabulates the finished runs, trains none of m = 6
    _run(mod, monkeypatch, *[a if a != "2,4" else "2,4,6" for a in args], "--finished-only")
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("*/runs/*/*") if p.is_file()}
    assert {int(r["m"]) for r in csv.DictReader((out / "results.csv").open())} == {2, 4}


def test_maskaae_sweep_summary_median_resists_one_collapsed_seed():
    """The fixed mask at m = n, 30,000 steps (docs/results.md): one seed collapsed to 9.40."""
    mod = _script("maskaae_sweep")
    rows = [{"method": "maskaae-fixed", "m": 8, "seed": s, "fid": f, "m_active": 8, "nac": 0.03}
            for s, f in enumerate([9.395, 0.194, 0.626])]
    (summary,) = mod.summarise(rows)
    assert summary["fid_median"] == 0.626 and summary["fid_seeds"] == [9.395, 0.194, 0.626]
    assert abs(summary["fid"][0] - 10.215 / 3) < 1e-12


@pytest.mark.parametrize("bad, msg", [("4model.lam3_every=7", "expected M:KEY=VALUE"),
                                      ("8:model.lam3_every=7", "not in --ms")])
def test_maskaae_sweep_rejects_bad_set_m(tmp_path, monkeypatch, bad, msg):
    mod = _script("maskaae_sweep")
    with pytest.raises(SystemExit, match=msg):
        _run(mod, monkeypatch, "--quick", "--ms", "2,4", "--set-m", bad, "--out", tmp_path / "s")
    assert not (tmp_path / "s").exists()              # refused before anything is written


def test_maskaae_mask_rank_reads_first_and_last_mask(tmp_path):
    import json
    mod = _script("maskaae_mask_rank")
    run = tmp_path / "run"
    run.mkdir()
    first = [0.95, 0.40, 0.99, 0.92, 0.60]             # ranking at the start: 2, 0, 3, 4, 1
    last = [1.00, 0.00, 1.00, 0.05, 0.97]              # kept 0, 2, 4: two of them in the top three
    with open(run / "metrics.jsonl", "w") as f:
        f.write(json.dumps({"step": 50, "autoencoder/recon": 1.0}) + "\n")   # a row without the mask
        for step, mu in ((100, first), (200, [0.5] * 5), (300, last)):
            f.write(json.dumps({"step": step, **{f"mu/{k:02d}": v for k, v in enumerate(mu)}}) + "\n")
    r = mod.mask_rank(run)
    assert (r["m"], r["m_active"], r["started_above_0.9"], r["kept_in_top"]) == (5, 3, 3, 2)
    assert (r["min_start_kept"], r["max_start_closed"], r["first_step"], r["last_step"]) == (0.60, 0.92, 100, 300)
    (tmp_path / "fixed").mkdir()
    (tmp_path / "fixed" / "metrics.jsonl").write_text(json.dumps({"step": 100, "autoencoder/recon": 1.0}) + "\n")
    with pytest.raises(SystemExit, match="no mu/KK"):
        mod.mask_rank(tmp_path / "fixed")


def test_imae_summary_reports_the_median_over_seeds(tmp_path, monkeypatch, capsys):
    import json
    accs = {("imae", 1, 0): 0.9, ("imae", 1, 1): 0.5, ("imae", 1, 2): 0.7, ("jointvae", 1, 0): 0.4}
    for (m, b, s), v in accs.items():
        run = tmp_path / "mnist" / m / "runs" / f"model.beta={b},seed={s}"
        run.mkdir(parents=True)
        (run / "eval.json").write_text(json.dumps({"metrics": {"cluster-acc": {"value": v}}}))
    _run(_script("imae_summary"), monkeypatch, tmp_path)
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| 1 |"))
    assert "**0.700** (0.700 ± 0.200; 0.500–0.900; n=3)" in row and "0.400 (n=1)" in row


def test_lsr_summary_tables_and_rank_correlations(tmp_path, monkeypatch, capsys):
    import json

    mod = _script("lsr_summary")
    # Spearman against the closed form 1 − 6 Σd² / (n(n² − 1)) (no ties), and ties get average ranks
    x, y = [1, 2, 3, 4, 5], [2, 1, 4, 3, 5]
    assert mod.spearman(x, y) == pytest.approx(1 - 6 * 4 / (5 * 24))
    assert list(mod.rankdata([3, 1, 3, 2])) == [3.5, 1, 3.5, 2]

    def write(sub, point, **vals):
        run = tmp_path / sub / "runs" / point
        run.mkdir(parents=True)
        metrics = {}
        for r in ("vae", "lsr"):
            v = vals[r]
            metrics.update({f"fid@{r}": {"value": v}, f"fid-seeded@{r}": {"value": v},
                            f"sharpness-sp@{r}": {"value": v, "reconstructions": v},
                            f"imagine-mse@{r}": {"value": v, "sse_per_example": 784 * v},
                            f"decode-variance@{r}": {"value": v},
                            f"imagine-class-acc@{r}": {"absolute": 1 / v, "relative": 1 / v}})
        (run / "eval.json").write_text(json.dumps({"metrics": metrics}))

    for s, (v, g) in enumerate([(1.0, 2.0), (1.0, 1.2), (2.0, 3.0)]):
        write("mnist", f"seed={s}", vae=v, lsr=g)
    for lam, g in [(0.01, 5.0), (0.1, 4.0), (1, 3.0), (10, 2.0)]:    # every error falls, accuracy rises
        write("lam", f"model.lam={lam},seed=0", vae=1.0, lsr=g)
    write("beta", "model.beta=5,seed=0", vae=1.5, lsr=2.5)
    _run(mod, monkeypatch, tmp_path)
    out = capsys.readouterr().out
    assert "| sharpness-sp of imaginations | 1.333 ± 0.577 | 2.067 ± 0.902 | 1.57 ± 0.4 |" in out
    assert "sharpness LSR/VAE ≥ 1.3 in 2/3 seeds; FID prior-seeded lower in 0/3" in out
    assert "MSE / pixel ρ = -1.00 (paper: falls)" in out and "accuracy ρ = +1.00 (paper: rises)" in out
    beta_rows = [line for line in out.split("### Table 1")[1].splitlines() if line.startswith(("| 1 |", "| 5 |"))]
    assert [r[:12] for r in beta_rows] == ["| 1 | VAE | ", "| 1 | LSR | ", "| 5 | VAE | ", "| 5 | LSR | "]



@pytest.mark.parametrize("case", ["vae-mlp", "dcgan", "imae-vat", "lsr-vae", "lsr-gan", "ctrl-dcgan"])
def test_bf16_cpu_steps_every_case_in_bf16_channels_last(case, monkeypatch):
    """benchmarks/bf16_cpu.py: each case builds from its method's defaults, and the loop it times
    trains every player of the case's stage (its weights move, stay fp32 and finite) in bf16 with
    channels-last, the variant the issue-38 table leads with."""
    bench = _script("bf16_cpu")
    name, stage, side, _ = bench.CASES[case]
    monkeypatch.setitem(bench.CASES, case, (name, stage, side, 20))  # a small batch: the loop, not the rate
    built = []
    real_build = bench.build
    monkeypatch.setattr(bench, "build", lambda *a, **k: built.append(real_build(*a, **k)) or built[-1])
    run = bench.stepper(case, "bf16-cl", warmup=0)
    method, opts, _ = built[0]
    before = {id(p): p.detach().clone() for p in method.parameters()}
    run(1)
    players = next(s.players for s in method.stages() if s.name == stage) if stage else list(opts)
    for player in players:
        params = [p for g in opts[player].param_groups for p in g["params"]]
        assert any(not torch.equal(p, before[id(p)]) for p in params), f"{case}: {player} did not move"
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in method.parameters())
