import json

import pytest
import torch
from safetensors.torch import save_file

from livespeech.bundle import ModelError, load_bundle, save_bundle
from livespeech.features import FeatureConfig
from livespeech.text import Vocabulary
from tests.conftest import make_model


def test_round_trip(tmp_path):
    model = make_model(3)
    folder = save_bundle(tmp_path / "m", model, FeatureConfig(), Vocabulary(), {"name": "m", "metrics": {"cer": 0.1}}, "# card\n")
    bundle = load_bundle(folder)
    assert bundle.name == "m" and bundle.config["metrics"] == {"cer": 0.1}
    for key, value in model.state_dict().items():
        torch.testing.assert_close(bundle.model.state_dict()[key], value)
    assert not bundle.model.training
    assert (folder / "MODEL_CARD.md").read_text() == "# card\n"


def test_never_overwrites(tiny_model_dir):
    with pytest.raises(FileExistsError):
        save_bundle(tiny_model_dir, make_model(), FeatureConfig(), Vocabulary(), {}, "")


def _edit_config(folder, change):
    config = json.loads((folder / "config.json").read_text())
    change(config)
    (folder / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize("change, message", [
    (lambda c: c.update(format_version=99), "format_version"),
    (lambda c: c.pop("dims"), "missing 'dims'"),
    (lambda c: c["dims"].update(hidden=64), "shape"),
    (lambda c: c["dims"].update(hidden=4096, layers=16), "dims imply"),  # refused by arithmetic, before anything is built
    (lambda c: c["dims"].update(hidden=1, layers=30_000), "bad dims.*layers"),  # once took minutes to build on the meta device
    (lambda c: c["dims"].update(hidden=10**9), "bad dims.*hidden"),
    (lambda c: c["dims"].update(stack=True), "bad dims.*stack"),
    (lambda c: c["features"].update(n_fft=100_000_000), "bad features.*n_fft"),  # once allocated 16 GB
    (lambda c: c["features"].update(sample_rate=1), "bad features.*sample_rate"),
    (lambda c: c["features"].update(f_max=20_000.0), "bad features.*f_max"),
    (lambda c: c["features"].update(f_min=9_000.0, f_max=8_000.0), "bad features.*f_min"),
    (lambda c: c["dims"].update(hidden="big"), "bad dims"),
    (lambda c: c["dims"].update(colour="red"), "unknown dims"),
    (lambda c: c.update(vocabulary=["<blank>", "ab"]), "vocabulary"),
    (lambda c: c["normalization"].update(mean=[0.0] * 80), "normalization"),
])
def test_bad_config(tiny_model_dir, change, message):
    _edit_config(tiny_model_dir, change)
    with pytest.raises(ModelError, match=message):
        load_bundle(tiny_model_dir)


def test_corrupt_files(tiny_model_dir):
    (tiny_model_dir / "config.json").write_text("{not json")
    with pytest.raises(ModelError, match="JSON"):
        load_bundle(tiny_model_dir)


def test_corrupt_weights(tiny_model_dir):
    weights = tiny_model_dir / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(ModelError, match="safetensors"):
        load_bundle(tiny_model_dir)


def test_extra_or_nonfinite_tensors(tiny_model_dir):
    state = load_bundle(tiny_model_dir).model.state_dict()
    state["output.bias"] = torch.full_like(state["output.bias"], float("nan"))
    save_file(state, str(tiny_model_dir / "model.safetensors"))
    with pytest.raises(ModelError, match="NaN"):
        load_bundle(tiny_model_dir)
    state["evil"] = torch.zeros(1)
    save_file(state, str(tiny_model_dir / "model.safetensors"))
    with pytest.raises(ModelError, match="unexpected"):
        load_bundle(tiny_model_dir)


def test_missing(tmp_path):
    with pytest.raises(ModelError, match="no model folder"):
        load_bundle(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="missing"):
        load_bundle(tmp_path / "empty")
