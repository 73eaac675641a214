"""Config resolution and strict validation: every error names the key and the valid choices."""
from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from genae.config import RunConfig, TrainConfig, build_config, default_config_yaml, parse_override
from genae.errors import ConfigError
from genae.methods import METHODS


def test_defaults_roundtrip_through_yaml(tmp_path):
    for name in METHODS:
        text = default_config_yaml(name)
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        cfg = build_config(config_file=path)
        assert cfg.method == name
        assert cfg.model == METHODS[name].config()
        assert cfg.train == replace(TrainConfig(), **METHODS[name].train_defaults)
        assert RunConfig.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


def test_registry_variant_defaults():
    assert build_config("beta-vae", "fake").model.beta == 4.0
    assert build_config("vae", "fake").model.beta == 1.0


def test_overrides_are_python_literals():
    assert parse_override("model.betas=(0.5, 0.999)") == ("model", "betas", (0.5, 0.999))
    assert parse_override("train.steps=10") == ("train", "steps", 10)
    assert parse_override("data.name=fashion-mnist") == ("data", "name", "fashion-mnist")
    assert parse_override("train.progress=false") == ("train", "progress", False)
    assert parse_override("train.progress=True") == ("train", "progress", True)
    assert parse_override("data.limit=null") == ("data", "limit", None)
    cfg = build_config("vae", "fake", overrides=["model.betas=[0.5,0.9]", "model.lr=1", "train.grad_clip=1.5"])
    assert cfg.model.betas == (0.5, 0.9) and isinstance(cfg.model.lr, float)
    assert cfg.train.grad_clip == 1.5
    cfg = build_config("wae-gan", "fake", overrides=["train.grad_clip={'critic': 1.0}"])
    assert cfg.train.grad_clip == {"critic": 1.0}


def test_precedence_file_then_cli_then_set(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("method: vae\nmodel: {beta: 2.0}\ntrain: {steps: 7, batch_size: 32}\ndata: {name: mnist}\n")
    cfg = build_config(None, "fake", None, f, ["train.steps=9"])
    assert (cfg.model.beta, cfg.train.steps, cfg.train.batch_size, cfg.data.name) == (2.0, 9, 32, "fake")


@pytest.mark.parametrize("overrides, needle", [
    (["model.nope=1"], "model.nope"),
    (["train.stepz=1"], "train.stepz"),
    (["data.colour=1"], "data.colour"),
    (["train.steps=1.5"], "train.steps"),
    (["train.steps=True"], "train.steps"),
    (["model.lr='fast'"], "model.lr"),
    (["train.amp='fp8'"], "bf16"),
    (["train.lr_schedule='exp'"], "cosine"),
    (["train.steps=0"], "train.steps"),
    (["train.device='tpu'"], "train.device"),
    (["train.amp='fp16'", "train.device='cpu'"], "train.amp"),
    (["model.betas=(0.5,)"], "model.betas"),
    (["oops=1"], "namespace"),
    (["train.steps"], "namespace.key=value"),
])
def test_bad_overrides_name_the_key(overrides, needle):
    with pytest.raises(ConfigError, match=needle.replace(".", r"\.").replace("(", r"\(")):
        build_config("vae", "fake", overrides=overrides)


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError) as e:
        build_config("vae", "fake", overrides=["model.latent=3"])
    assert "latent_dim" in str(e.value)


def test_unknown_method_and_dataset_list_choices():
    with pytest.raises(ConfigError, match="vae"):
        build_config("vea", "fake")
    with pytest.raises(ConfigError, match="mnist"):
        build_config("vae", "mnits")


def test_typos_of_methods_datasets_and_metrics_get_one_suggestion():
    """Method names (train, config, sweep: all through the config), datasets and metrics (also
    NAME@RENDERER, keeping the renderer) share one "did you mean" hint; a name close to none gets
    none."""
    from genae.metrics import check_names

    for call, hint in ((lambda: build_config("wgan-pg", "fake"), "(did you mean 'wgan-gp'?)"),
                       (lambda: default_config_yaml("q-wgna"), "(did you mean 'q-wgan'?)"),
                       (lambda: build_config("vae", "fashoin-mnist"), "(did you mean 'fashion-mnist'?)"),
                       (lambda: check_names(["fid", "recon_mse"]), "recon_mse (did you mean 'recon-mse'?)"),
                       (lambda: check_names(["fdi@vae"]), "fdi@vae (did you mean 'fid@vae'?)")):
        with pytest.raises(ConfigError) as e:
            call()
        assert hint in str(e.value) and str(e.value).count("did you mean") == 1
    with pytest.raises(ConfigError) as e:
        build_config("zzzzzz", "fake")
    assert "did you mean" not in str(e.value) and "choose one of" in str(e.value)


def test_the_word_none_is_a_choice_where_the_field_has_it_else_null():
    """``--set train.amp=none`` (the help's own word) selects the choice "none"; on an Optional
    field ``none`` and ``null`` still mean None; ``null`` is not a choice of train.amp."""
    for word in ("none", "None", "'none'"):
        assert build_config("vae", "fake", overrides=[f"train.amp={word}"]).train.amp == "none"
    cfg = build_config("vae", "fake", overrides=["train.grad_clip=none", "data.limit=None", "train.out_dir=null"])
    assert cfg.train.grad_clip is None and cfg.data.limit is None and cfg.train.out_dir is None
    with pytest.raises(ConfigError, match="train.amp=None is not valid"):
        build_config("vae", "fake", overrides=["train.amp=null"])
    with pytest.raises(ConfigError, match="train.steps"):  # neither a choice nor Optional
        build_config("vae", "fake", overrides=["train.steps=none"])


def test_file_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("method: vae\nmodle: {}\n")
    with pytest.raises(ConfigError, match="modle"):
        build_config(config_file=bad)
    bad.write_text("method: ae\n")
    with pytest.raises(ConfigError, match="'vae' on the command line"):
        build_config("vae", config_file=bad)
    with pytest.raises(ConfigError, match="does not exist"):
        build_config("vae", config_file=tmp_path / "missing.yaml")
    bad.write_text("method: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        build_config(config_file=bad)
