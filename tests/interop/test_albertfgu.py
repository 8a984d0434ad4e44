"""albertfgu/diffwave-sashimi's WaveNet-DiffWave (branch `checkpoints`), converted from its checkpoint and composed
Hydra config without PyTorch, computes what that code computed in float64, including its few-step `diffusion.beta`
sampling, which gives the network the short schedule's own step indices.

The references are tests/fixtures/albertfgu-diffwave-sashimi/ (see the README there; its SaShiMi files are not
copied: that backbone's old S4 does not convert yet).
"""

import os

import numpy as np
import pytest
import yaml

from tests.helpers import FIXTURES as FIXTURE_ROOT
from tf_diffwave import load
from tf_diffwave.cli.convert import main as convert_main
from tf_diffwave.config import validate
from tf_diffwave.errors import UserError
from tf_diffwave.interop.albertfgu import albertfgu_config
from tf_diffwave.models.registry import build_backbone

FIXTURES = os.path.join(FIXTURE_ROOT, "albertfgu-diffwave-sashimi")
CHECKPOINT = os.path.join(FIXTURES, "albertfgu-wavenet-small.pt")
CONFIG = os.path.join(FIXTURES, "albertfgu-wavenet-small.yaml")
SC09_FAST = [1e-4, 1e-3, 1e-2, 0.05, 0.2, 0.7]  # the reference's `diffusion.beta`


@pytest.fixture(scope="module")
def reference():
    return dict(np.load(os.path.join(FIXTURES, "albertfgu-wavenet-small.npz")))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The fixture converted with its config's `diffusion.beta` set to the short schedule of the reference."""
    folder = tmp_path_factory.mktemp("albertfgu")
    with open(CONFIG) as f:
        cfg = yaml.safe_load(f)
    cfg["diffusion"]["beta"] = SC09_FAST
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    convert_main(["albertfgu-diffwave", CHECKPOINT, str(folder / "config.yaml"), str(folder / "model"),
                  "--no-export"])
    return load(str(folder / "model"))


def test_network_output_equals_the_originals_and_not_the_corrected_code(converted, reference):
    x, t = reference["x"][:, 0], reference["t"][:, 0]
    eps = np.concatenate([converted.denoise(x[b:b + 1], float(t[b])) for b in range(len(t))])
    assert np.max(np.abs(eps - reference["eps"][:, 0])) < 1e-6
    assert np.max(np.abs(eps - reference["eps_noalias"][:, 0])) > 1e-3  # `h += part_t` kept


def test_the_short_schedule_gives_the_network_its_own_step_indices_as_the_original_does(converted, reference):
    assert converted.config["diffusion"]["fast_schedule"] == SC09_FAST
    assert converted.config["diffusion"]["fast_steps"] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    noise = np.concatenate([reference["sample_z"][1:, :, 0], reference["sample_xT"][None, :, 0]])
    audio = converted.reverse_process(noise, steps="fast")
    assert np.max(np.abs(audio - reference["sample_x0"][:, 0])) < 1e-4


def test_without_a_short_schedule_the_fast_one_aligns_its_steps(tmp_path):
    convert_main(["albertfgu-diffwave", CHECKPOINT, CONFIG, str(tmp_path / "model"), "--no-export"])
    config = load(str(tmp_path / "model")).config
    assert config["diffusion"]["fast_steps"] == [] and config["diffusion"]["num_steps"] == 200


def weight_norm_gains(config):
    w = config["model"]["wavenet"]
    c, s = w["residual_channels"], w["skip_channels"]
    return c + w["residual_layers"] * (2 * c + c + s) + s


def test_the_released_small_wavenet_builds_to_its_published_size():
    # wnet_h128_d30_T200_betaT0.02_uncond: model=wavenet_small, 6,827,393 parameters
    cfg = {"model": {"_name_": "wavenet", "unconditional": True, "in_channels": 1, "out_channels": 1,
                     "res_channels": 128, "skip_channels": 256, "num_res_layers": 30, "dilation_cycle": 10,
                     "diffusion_step_embed_dim_in": 128, "diffusion_step_embed_dim_mid": 512,
                     "diffusion_step_embed_dim_out": 512},
           "diffusion": {"T": 200, "beta_0": 1e-4, "beta_T": 0.02, "beta": None},
           "dataset": {"segment_length": 16000, "sampling_rate": 16000}}
    config = albertfgu_config(cfg, "config.yaml")
    validate(config)
    assert build_backbone(config).model.count_params() + weight_norm_gains(config) == 6_827_393


def test_what_does_not_convert_says_so_in_one_line(tmp_path, capsys):
    from tf_diffwave.cli.common import run as run_cli

    sashimi = os.path.join(FIXTURES, "albertfgu-sashimi-small.yaml")
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: convert_main(["albertfgu-diffwave", CHECKPOINT, sashimi, str(tmp_path / "a")]))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "a SaShiMi-DiffWave of albertfgu" in err
    assert not os.path.exists(tmp_path / "a")  # nothing left behind
    with pytest.raises(UserError, match="'tf-diffwave convert albertfgu-diffwave CKPT"):
        convert_main(["rf5-diffwave", CHECKPOINT, CONFIG, str(tmp_path / "b")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("model:\n  _name_: wavenet\n  unconditional: true\n  res_channels: ${nowhere.x}\ndiffusion: {}\n")
    with pytest.raises(UserError, match="the interpolation \\$\\{nowhere.x\\} names nothing"):
        convert_main(["albertfgu-diffwave", CHECKPOINT, str(bad), str(tmp_path / "c")])


@pytest.mark.slow
def test_its_short_schedule_and_steps_are_what_its_exports_sample_with(converted, reference, tmp_path):
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed")
    from tests.helpers import run_litert, served_clips
    from tf_diffwave.cli.export import main as export_main

    folder = converted.model_dir
    export_main(["savedmodel", "--model-dir", folder, "--out-dir", str(tmp_path / "export")])
    served = served_clips(str(tmp_path / "export" / str(converted.step)), [3, 4], tmp_path)
    np.testing.assert_allclose(served, converted.generate(2, seed=3), atol=1e-5)
    export_main(["litert", "--model-dir", folder, "--out", str(tmp_path / "m.tflite")])
    noise = np.concatenate([reference["sample_z"][1:, :, 0], reference["sample_xT"][None, :, 0]])
    audio = run_litert(str(tmp_path / "m.tflite"), tmp_path, noise=noise.astype(np.float32))
    assert np.max(np.abs(audio - reference["sample_x0"][:, 0])) < 1e-4  # the original's own 6-step sample
