"""Config loading: overrides, type checks and errors that name the key."""

import json

import pytest

from tests.helpers import BASE_CONFIG, DEMO_CONFIG, REPO
from tf_diffwave.config import defaults, flatten, load_config, load_run_config, save_config, used_keys
from tf_diffwave.errors import UserError
from tf_diffwave.models.strides import upsample_strides


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
    assert base["model"]["wavenet"]["residual_channels"] == 64 and base["model"]["wavenet"]["residual_layers"] == 30
    assert base["audio"]["hop_length"] == 256 and base["diffusion"]["num_steps"] == 50
    wavegrad = load_config(f"{REPO}/configs/wavegrad_ljspeech.json")
    assert wavegrad["model"]["wavegrad"]["factors"] == [5, 5, 3, 2, 2] and wavegrad["audio"]["hop_length"] == 300


def test_a_config_in_the_earlier_flat_layout_is_migrated(tmp_path):
    """Run folders written before the per-backbone sections: every model key sat in `model`, and the S4 learning
    rate in `train`."""
    old = {"model": {"backbone": "sashimi", "d_model": 32, "embed_dim": 256, "residual_channels": 8,
                     "unconditional": True},
           "train": {"ssm_learning_rate": 0.01, "batch_size": 4}}
    (tmp_path / "config.json").write_text(json.dumps(old))
    config = load_run_config(str(tmp_path))
    assert config["model"]["sashimi"]["d_model"] == 32 and config["model"]["sashimi"]["embed_dim"] == 256
    assert config["model"]["sashimi"]["ssm_learning_rate"] == 0.01 and config["train"]["batch_size"] == 4
    assert config["model"]["wavenet"]["residual_channels"] == 8  # another backbone's key: kept in its section
    assert config["model"]["wavenet"]["embed_dim"] == defaults()["model"]["wavenet"]["embed_dim"]


def test_an_override_of_a_backbone_key_without_its_section_goes_to_the_configured_backbone():
    config = load_config(DEMO_CONFIG, ["model.residual_channels=8", "model.sashimi.d_model=16"])
    assert config["model"]["wavenet"]["residual_channels"] == 8 and config["model"]["sashimi"]["d_model"] == 16


def test_a_run_config_holds_only_the_sections_it_uses(tmp_path):
    config = load_config(f"{REPO}/configs/wavegrad_demo.json")
    save_config(used_keys(config), str(tmp_path))
    saved = json.loads((tmp_path / "config.json").read_text())
    assert set(saved["model"]) == {"backbone", "tf32", "unconditional", "audio_length", "wavegrad"}
    assert "classifier" not in saved
    assert flatten(load_run_config(str(tmp_path))) == flatten(config)


@pytest.mark.parametrize("override,named", [
    ("model.wavegrad.factors=[5,5,3,2]", "model.wavegrad.factors"),
    ("model.wavegrad.upsampling_dilations=[[1,2]]", "model.wavegrad.upsampling_dilations"),
    ("model.unconditional=true", "model.unconditional"),
])
def test_wavegrad_config_errors_name_the_key(override, named):
    with pytest.raises(UserError, match=named.replace(".", r"\.")):
        load_config(f"{REPO}/configs/wavegrad_demo.json", [override])


def test_the_configuration_reference_lists_every_key_with_its_default():
    import re

    with open(f"{REPO}/docs/configuration.md") as f:
        rows = re.findall(r"^\| `([\w.]+)` \| `(.*?)` \| (.+) \|$", f.read(), flags=re.M)
    documented = {key: json.loads(default) for key, default, _ in rows}
    from tf_diffwave.models import registry

    actual = flatten(defaults())
    for name in registry.names():
        own = flatten(defaults(name))
        actual.update({key: value for key, value in own.items() if key.startswith(f"model.{name}.")})
    assert documented == actual
    assert len(rows) == len(documented) and all(meaning.strip() for _, _, meaning in rows)


def test_a_misspelt_key_is_answered_with_the_key_it_is_closest_to():
    with pytest.raises(UserError, match=r"unknown config key 'train.max_step' \(did you mean 'train.max_steps'\?\)"):
        load_config(DEMO_CONFIG, ["train.max_step=10"])
    with pytest.raises(UserError, match=r"unknown config key 'model.wavenet.residual_chanels' \(did you mean "
                                        r"'model.wavenet.residual_channels'\?\)"):
        load_config(DEMO_CONFIG, ["model.wavenet.residual_chanels=8"])


def test_a_run_folder_records_the_format_of_its_config_and_older_formats_are_migrated(tmp_path):
    saved = load_config(f"{REPO}/configs/demo.json")
    save_config(used_keys(saved), str(tmp_path))
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["format"] == 2 and "residual_channels" in written["model"]["wavenet"]
    assert load_run_config(str(tmp_path)) == saved
    # format 1 (none recorded): the family's keys directly in `model`, moved to its section
    legacy = {"model": {"backbone": "wavenet", "residual_channels": 8}}
    (tmp_path / "config.json").write_text(json.dumps(legacy))
    assert load_run_config(str(tmp_path))["model"]["wavenet"]["residual_channels"] == 8
    # the same keys in a format-2 file are a mistake, not an old layout
    (tmp_path / "config.json").write_text(json.dumps({"format": 2, **legacy}))
    with pytest.raises(UserError, match="unknown config key 'model.residual_channels'"):
        load_run_config(str(tmp_path))


@pytest.mark.parametrize("version", [3, 0, "2", True])
def test_a_config_of_a_format_this_version_does_not_read_is_one_line_naming_the_file(tmp_path, version):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"format": version}))
    with pytest.raises(UserError, match=f"^{path}: config format {version!r} is not one this version"):
        load_config(str(path))


def test_a_file_given_as_a_model_folder_is_named_with_what_to_do_with_it(tmp_path):
    for name, advice in (("vocoder.tflite", "a LiteRT model; run it with"), ("model.pt", "convert it first"),
                         ("notes.txt", "give the folder that holds config.json")):
        (tmp_path / name).write_bytes(b"x")
        with pytest.raises(UserError, match=f"{name}: a file, not a model folder.*{advice}"):
            load_run_config(str(tmp_path / name))
    with pytest.raises(UserError, match="absent: not a model folder \\(no config.json\\)"):
        load_run_config(str(tmp_path / "absent"))
