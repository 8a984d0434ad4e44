"""Config loading: overrides, type checks and errors that name the key."""

import json

import pytest

from conftest import BASE_CONFIG, DEMO_CONFIG, REPO
from tf_diffwave.config import DEFAULTS, load_config
from tf_diffwave.errors import UserError
from tf_diffwave.wavenet import upsample_strides


def test_overrides_are_typed(tmp_path):
    cfg = load_config(DEMO_CONFIG, ["train.max_steps=7", "data.mel_dir=mels", "diffusion.beta_end=0.04",
                                            "diffusion.fast_schedule=[0.001, 0.01, 0.2]"])
    assert cfg["train"]["max_steps"] == 7
    assert cfg["data"]["mel_dir"] == "mels"
    assert cfg["diffusion"]["beta_end"] == 0.04
    assert cfg["diffusion"]["fast_schedule"] == [0.001, 0.01, 0.2]


@pytest.mark.parametrize("override,named", [
    ("train.max_stepz=3", "train.max_stepz"),
    ("train.max_steps=ten", "train.max_steps"),
    ("train.max_steps=1.5", "train.max_steps"),
    ("train.export=1", "train.export"),
    ("diffusion.loss=l3", "diffusion.loss"),
    ("audio.hop_length=257", "audio.hop_length"),
])
def test_bad_override_names_the_key(override, named):
    with pytest.raises(UserError, match=named.replace(".", r"\.")):
        load_config(DEMO_CONFIG, [override])


def test_unknown_key_in_file_names_file_and_key(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"model": {"channels": 3}}))
    with pytest.raises(UserError, match=r"bad\.json.*model\.channels"):
        load_config(str(path))


@pytest.mark.parametrize("hop", [256, 300, 200, 512, 240])
def test_upsample_strides_multiply_to_hop(hop):
    a, b = upsample_strides(hop)
    assert a * b == hop and 2 <= a <= b <= 32


def test_shipped_configs_load():
    base = load_config(BASE_CONFIG)
    assert base["model"]["residual_channels"] == 64 and base["model"]["residual_layers"] == 30
    assert base["audio"]["hop_length"] == 256 and base["diffusion"]["num_steps"] == 50


def test_the_configuration_reference_lists_every_key_with_its_default():
    import re

    with open(f"{REPO}/docs/configuration.md") as f:
        rows = re.findall(r"^\| `([\w.]+)` \| `(.*?)` \| (.+) \|$", f.read(), flags=re.M)
    documented = {key: json.loads(default) for key, default, _ in rows}
    actual = {f"{section}.{key}": value for section, keys in DEFAULTS.items() for key, value in keys.items()}
    assert documented == actual
    assert len(rows) == len(documented) and all(meaning.strip() for _, _, meaning in rows)
