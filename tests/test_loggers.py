"""TensorBoard images/config/eval, MLflow's file store, W&B offline files and callbacks (issue 26),
each checked by reading back what the real package wrote."""
from __future__ import annotations

import json

import pytest

from conftest import fast_train_overrides, tiny_overrides
from genae.config import build_config
from genae.errors import ConfigError
from genae.training import train
from test_cli import genae


def _run(tmp_path, loggers=(), tensorboard=True, callbacks=()):
    cfg = build_config("vae", "fake", overrides=tiny_overrides("vae") + fast_train_overrides(
        4, sample_every=2, tensorboard=tensorboard, loggers=tuple(loggers)), out=str(tmp_path / "run"))
    return train(cfg, callbacks=callbacks)


def test_tensorboard_gets_images_config_hparams_and_eval_metrics(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = _run(tmp_path)
    genae("eval", run, "--metrics", "recon-mse")
    acc = EventAccumulator(str(run / "tb"), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    tags = acc.Tags()
    assert {"samples", "reconstructions"} <= set(tags["images"])
    img = acc.Images("samples")[-1]
    assert img.step == 4 and img.width > 0 and img.encoded_image_string[:4] == b"\x89PNG"
    assert "vae/loss" in tags["scalars"] and "eval/recon-mse" in tags["scalars"]
    assert acc.Scalars("eval/recon-mse")[-1].step == 4
    assert any("config" in t for t in tags["tensors"])  # the config as text
    assert acc.PluginTagToContent("hparams"), "no hparams summary"


def test_mlflow_file_store_has_params_metrics_images_and_eval(tmp_path):
    import os

    mlflow = pytest.importorskip("mlflow")
    run = _run(tmp_path, loggers=("mlflow",), tensorboard=False)
    genae("eval", run, "--metrics", "recon-mse")
    run_id = json.loads((run / "loggers.json").read_text())["mlflow"]
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    client = mlflow.tracking.MlflowClient(tracking_uri=(run / "mlruns").resolve().as_uri())
    data = client.get_run(run_id).data
    assert data.params["model.latent_dim"] == "4" and data.params["method"] == "vae"
    assert [m.step for m in client.get_metric_history(run_id, "vae/loss")] == [2, 4]
    assert client.get_metric_history(run_id, "eval/recon-mse")[-1].step == 4
    arts = {a.path for a in client.list_artifacts(run_id, "samples")}
    assert "samples/step_00000002.png" in arts and "samples/step_00000004.png" in arts


def test_wandb_offline_run_records_history_config_and_images(tmp_path):
    pytest.importorskip("wandb")
    run = _run(tmp_path, loggers=("wandb",), tensorboard=False)
    run_id = json.loads((run / "loggers.json").read_text())["wandb"]
    files = list((run / "wandb").glob(f"offline-run-*-{run_id}/run-{run_id}.wandb"))
    assert len(files) == 1
    blob = files[0].read_bytes()  # W&B's protobuf record log: the keys are stored as plain strings
    for key in (b"vae/loss", b"model.latent_dim", b"samples", b"reconstructions"):
        assert key in blob, key
    media = list((run / "wandb").glob(f"offline-run-*-{run_id}/files/media/images/*.png"))
    assert media, "no image files in the offline run"


def test_callbacks_get_every_event_in_order(tmp_path):
    events = []
    _run(tmp_path, tensorboard=False, callbacks=[lambda e, s, p: events.append((e, s, type(p).__name__))])
    assert [e[:2] for e in events] == [("config", 0), ("log", 2), ("images", 2), ("checkpoint", 2),
                                       ("log", 4), ("images", 4), ("checkpoint", 4), ("end", -1)]
    assert events[2][2] == "dict" and events[3][2] == "PosixPath"


def test_failing_callback_warns_and_the_run_goes_on(tmp_path):
    def bad(event, step, payload):
        raise RuntimeError("boom")

    with pytest.warns(UserWarning, match="boom"):
        run = _run(tmp_path, tensorboard=False, callbacks=[bad])
    assert (run / "checkpoints" / "step-00000004").is_dir()


def test_unknown_logger_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown logger 'neptune'"):
        build_config("vae", "fake", overrides=["train.loggers=('neptune',)"])
