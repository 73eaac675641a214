"""`genae export RUN --out DIR`: a checkpoint as a self-contained model folder (genae.export),
loaded by genae.load_run and the inference commands as a run is, refused where a run's training
state would be needed, checked by its weights' SHA-256, and never left half-written."""
from __future__ import annotations

import hashlib
import json
import os
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file

import genae
from conftest import fast_train_overrides, tiny_overrides
from genae import cli
from genae.config import build_config
from genae.errors import GenaeError
from genae.export import MODEL_INFO, export_model
from genae.training import train

#: a VAE (posterior, sampler), CTRL (a prior fitted into buffers) and a GAN on MLPs
METHODS = {"vae": [], "ctrl-multi": [], "dcgan": ["model.net='mlp'"]}
ALLOWED = {"model.safetensors", "config.yaml", "genae_model.json", "README.md", "samples.png", "data.json",
           "eval.json"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """name -> a tiny run on `fake` (vae: 4 steps, checkpoints at 2 and 4; the others 2 steps)."""
    root = tmp_path_factory.mktemp("export-runs")
    runs = {}
    with pytest.MonkeyPatch.context() as mp:  # the autouse cache fixture is per test; this is per module
        mp.setenv("GENAE_CACHE", str(tmp_path_factory.getbasetemp() / "genae-cache"))
        for name, extra in METHODS.items():
            steps = 4 if name == "vae" else 2
            cfg = build_config(name, "fake", out=str(root / name),
                               overrides=tiny_overrides(name) + fast_train_overrides(steps) + extra)
            runs[name] = train(cfg)
    return runs


def _draw(method, seed=0):
    y = torch.arange(method.info.num_classes) if method.sample_y == "class" else None
    return method.sample(10, y=y, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", list(METHODS))
def test_export_loads_the_same_method_and_holds_only_weights(trained, tmp_path, name):
    run, out = trained[name], tmp_path / "model"
    assert export_model(run, out) == out
    a, b = genae.load_run(run), genae.load_run(out)
    assert not b.training and not any(p.requires_grad for p in b.parameters())
    assert torch.equal(_draw(a), _draw(b))  # same weights, buffers and sampler
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    if name == "vae":
        x = torch.rand(5, 1, 28, 28)
        assert torch.equal(a.encode(x), b.encode(x)) and torch.equal(a.reconstruct(x), b.reconstruct(x))
    if name == "ctrl-multi":  # the prior fitted at the checkpoint travels in the weights file
        assert b.class_count.sum() > 0 and b.class_std.abs().sum() > 0

    # the folder: weights, config, card, samples, records; no optimiser, RNG or trainer state
    names = {p.name for p in out.iterdir()}
    assert names <= ALLOWED and {"model.safetensors", "config.yaml", MODEL_INFO, "README.md", "samples.png"} <= names
    assert not any(p.name.startswith(".") for p in out.parent.iterdir())  # no temporary folder left
    weights = load_file(out / "model.safetensors")
    assert set(weights) == set(sb)  # exactly the module's parameters and buffers
    info = json.loads((out / MODEL_INFO).read_text())
    ckpt = run / "checkpoints" / f"step-{info['step']:08d}"
    digest = hashlib.sha256((out / "model.safetensors").read_bytes()).hexdigest()
    assert info["format_version"] == 1 and info["method"] == name and info["weights"]["sha256"] == digest
    assert digest == hashlib.sha256((ckpt / "model.safetensors").read_bytes()).hexdigest()
    cfg = yaml.safe_load((out / "config.yaml").read_text())
    assert cfg["method"] == name and cfg["train"]["out_dir"] is None and cfg["train"]["tensorboard"] is False

    # the model card: Hub front matter, then method, data, training, how to load it
    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["library_name"] == "genae" and name in front["tags"] and front["datasets"] == ["fake"]
    for text in (f"# {name} on fake", "**Paper**", "genae.load_run(", "## Training", "## Data", "## Evaluation",
                 f"steps | {info['step']} of train.steps", digest):
        assert text in card, text


def test_cli_sample_eval_report_on_the_folder_and_resume_refused(trained, tmp_path, capsys):
    run, out = trained["vae"], tmp_path / "vae-model"
    assert cli.main(["export", str(run), "--out", str(out)]) == 0
    for src, png in ((run, tmp_path / "from_run.png"), (out, tmp_path / "from_folder.png")):
        assert cli.main(["sample", str(src), "--n", "9", "--seed", "3", "--out", str(png)]) == 0
    assert (tmp_path / "from_run.png").read_bytes() == (tmp_path / "from_folder.png").read_bytes()
    capsys.readouterr()

    assert cli.main(["eval", str(out), "--metrics", "recon-mse", "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["recon-mse"]
    want = genae.evaluate(run, ["recon-mse"])["recon-mse"]
    assert got["value"] == want["value"] and got["step"] == 4
    assert json.loads((out / "eval.json").read_text())["metrics"]["recon-mse"]["step"] == 4
    assert genae.evaluate(out, ["recon-mse"])["recon-mse"]["value"] == want["value"]  # from Python too
    assert cli.main(["eval", str(out), "--metrics", "recon-mse", "--step", "2"]) == 2
    assert "exported model of step 4 only" in capsys.readouterr().err

    assert cli.main(["report", str(out)]) == 0 and (out / "report.html").is_file()
    capsys.readouterr()

    before = sorted(p.name for p in out.iterdir())
    assert cli.main(["resume", str(out)]) == 2
    err = capsys.readouterr().err
    assert "an exported model has no training state" in err and "Traceback" not in err
    assert sorted(p.name for p in out.iterdir()) == before  # no lock file, no checkpoint
    with pytest.raises(GenaeError, match="no training state"):
        genae.resume(out)


def test_export_of_an_earlier_step(trained, tmp_path):
    run, out = trained["vae"], tmp_path / "step2"
    export_model(run, out, step=2)
    assert json.loads((out / MODEL_INFO).read_text())["step"] == 2
    assert torch.equal(_draw(genae.load_run(run, step=2)), _draw(genae.load_run(out)))
    assert torch.equal(_draw(genae.load_run(out, step=2)), _draw(genae.load_run(out)))
    with pytest.raises(GenaeError, match="step 2 only"):
        genae.load_run(out, step=4)


def test_a_damaged_folder_is_refused_naming_the_file(trained, tmp_path, capsys):
    good = tmp_path / "good"
    export_model(trained["dcgan"], good)

    flipped = tmp_path / "flipped"
    shutil.copytree(good, flipped)
    weights = flipped / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0x01  # one bit of one weight: safetensors would load it without complaint
    weights.write_bytes(bytes(data))
    with pytest.raises(GenaeError, match="damaged") as e:
        genae.load_run(flipped)
    assert str(weights) in str(e.value)
    assert cli.main(["sample", str(flipped), "--out", str(tmp_path / "s.png")]) == 2
    err = capsys.readouterr().err
    assert str(weights) in err and "Traceback" not in err and not (tmp_path / "s.png").exists()

    cut = tmp_path / "cut"
    shutil.copytree(good, cut)
    with open(cut / "model.safetensors", "r+b") as f:
        f.truncate(100)
    with pytest.raises(GenaeError, match="damaged"):
        genae.load_run(cut)

    bad_info = tmp_path / "bad-info"
    shutil.copytree(good, bad_info)
    (bad_info / MODEL_INFO).write_text('{"format": "genae-model", "format_version": 1, "method": 3}')
    with pytest.raises(GenaeError) as e:
        genae.load_run(bad_info)
    assert str(bad_info / MODEL_INFO) in str(e.value)

    newer = tmp_path / "newer"
    shutil.copytree(good, newer)
    info = json.loads((newer / MODEL_INFO).read_text())
    (newer / MODEL_INFO).write_text(json.dumps({**info, "format_version": 99}))
    with pytest.raises(GenaeError, match="newer genae"):
        genae.load_run(newer)

    # the weights file may be a link (a Hugging Face cache snapshot): its digest is what counts
    linked = tmp_path / "linked"
    shutil.copytree(good, linked)
    os.replace(linked / "model.safetensors", tmp_path / "blob")
    os.symlink(tmp_path / "blob", linked / "model.safetensors")
    assert torch.equal(_draw(genae.load_run(linked)), _draw(genae.load_run(good)))


def test_a_failed_export_leaves_nothing(trained, tmp_path, capsys, monkeypatch):
    before = set(os.listdir(tmp_path))
    assert cli.main(["export", str(tmp_path / "missing"), "--out", str(tmp_path / "m")]) == 2
    assert "missing" in capsys.readouterr().err
    (tmp_path / "not-a-run").mkdir()
    assert cli.main(["export", str(tmp_path / "not-a-run"), "--out", str(tmp_path / "m")]) == 2
    assert "not a genae run" in capsys.readouterr().err
    assert cli.main(["export", str(trained["vae"]), "--step", "3", "--out", str(tmp_path / "m")]) == 2
    assert "no checkpoint at step 3" in capsys.readouterr().err
    assert set(os.listdir(tmp_path)) == before | {"not-a-run"}

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert cli.main(["export", str(trained["vae"]), "--out", str(busy)]) == 2
    assert "non-empty folder" in capsys.readouterr().err and os.listdir(busy) == ["keep.txt"]

    # a write that fails midway (a full disk): no DIR, no temporary folder beside it
    from genae import export

    calls = []

    def failing(path, data):
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device", str(path))
        return real(path, data)

    real = export.write_synced
    monkeypatch.setattr(export, "write_synced", failing)
    with pytest.raises(GenaeError, match="No space left on device"):
        export_model(trained["vae"], tmp_path / "full")
    assert set(os.listdir(tmp_path)) == before | {"not-a-run", "busy"}

    # an exported model is not a run to export again
    monkeypatch.setattr(export, "write_synced", real)
    export_model(trained["vae"], tmp_path / "once")
    with pytest.raises(GenaeError, match="already an exported model"):
        export_model(tmp_path / "once", tmp_path / "twice")
    empty = tmp_path / "empty"
    empty.mkdir()
    export_model(trained["vae"], empty)  # an empty folder is taken
    assert (empty / MODEL_INFO).is_file()


def test_networks_from_python_are_needed_to_export_and_load(tmp_path):
    from torch import nn

    def encoder():
        torch.manual_seed(1)
        return nn.Sequential(nn.Flatten(), nn.Linear(28 * 28, 16), nn.ReLU(), nn.Linear(16, 8))

    x = torch.rand(64, 1, 28, 28)
    run = genae.train("vae", data=x, steps=2, model={"latent_dim": 4, "hidden": 32},
                      networks={"encoder": encoder()}, out=tmp_path / "run",
                      train={"batch_size": 16, "progress": False, "tensorboard": False, "device": "cpu"})
    with pytest.raises(GenaeError, match="came from Python"):
        export_model(run, tmp_path / "model")
    assert not (tmp_path / "model").exists()
    export_model(run, tmp_path / "model", networks={"encoder": encoder()})
    assert "networks=" in (tmp_path / "model" / "README.md").read_text()
    with pytest.raises(GenaeError, match="came from Python"):
        genae.load_run(tmp_path / "model")
    a = genae.load_run(run, networks={"encoder": encoder()})
    b = genae.load_run(tmp_path / "model", networks={"encoder": encoder()})
    assert torch.equal(_draw(a), _draw(b)) and torch.equal(a.encode(x[:4]), b.encode(x[:4]))


def test_an_ex_post_prior_of_the_checkpoint_travels_with_the_weights(tmp_path, capsys):
    """A mixture fitted on the checkpoint (genae sample --prior gmm) is copied into the folder and,
    the weights being the same bytes, used from there without refitting."""
    run = train(build_config("vae", "fake", out=str(tmp_path / "run"),
                             overrides=tiny_overrides("vae") + fast_train_overrides(2)))
    args = ["--prior", "gmm", "--components", "2", "--n", "4"]
    assert cli.main(["sample", str(run), *args, "--out", str(tmp_path / "a.png")]) == 0
    assert "fitting" in capsys.readouterr().err
    export_model(run, tmp_path / "model")
    assert (tmp_path / "model" / "ex-post-gmm-k2-s0.safetensors").is_file()
    assert cli.main(["sample", str(tmp_path / "model"), *args, "--out", str(tmp_path / "b.png")]) == 0
    err = capsys.readouterr().err
    assert "fitting" not in err and "ex-post-gmm-k2-s0.safetensors (fitted on" in err
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
