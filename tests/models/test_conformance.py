"""Every model family, and the toy family registered from outside the package, runs the conformance suite
(tests/models/conformance.py); a family's own tests keep only what is its own."""

import pytest

from tests.helpers import AR_DEMO_CONFIG, DEMO_CONFIG, SC09_DEMO_CONFIG, WAVEGRAD_DEMO_CONFIG
from tests.models import conformance
from tests.models.toy_family import FAMILY as TOY
from tf_diffwave.models import registry

WAVENET = ("model.residual_channels=8", "model.residual_layers=2", "model.dilation_cycle=2", "model.embed_dim=16")
PRIOR = ("diffusion.energy_min=0.5", "diffusion.energy_max=3.0")  # PriorGrad's statistics, as training stores them
SASHIMI = ("model.backbone=sashimi", "model.d_model=8", "model.n_layers=1", "model.state_size=8",
           "model.embed_dim=16")
CASES = [
    conformance.Case("wavenet vocoder", DEMO_CONFIG, WAVENET + PRIOR),
    conformance.Case("wavenet vocoder, an upsampler per layer", DEMO_CONFIG,
                     WAVENET + PRIOR + ("model.mel_upsampler=per_layer", "model.step_in_residual=true")),
    conformance.Case("wavenet generator", SC09_DEMO_CONFIG, WAVENET + ("model.audio_length=2048",)),
    conformance.Case("sashimi vocoder", DEMO_CONFIG, SASHIMI + PRIOR + ("model.audio_length=2048",
                                                                         "data.crop_frames=8")),
    conformance.Case("sashimi generator", SC09_DEMO_CONFIG, SASHIMI + ("model.audio_length=2048",), (1024, 2048)),
    conformance.Case("wavegrad vocoder", WAVEGRAD_DEMO_CONFIG, (
        "model.wavegrad.upsampling_preconv_out_channels=16", "model.wavegrad.upsampling_out_channels=[8,8,8,8,8]",
        "model.wavegrad.downsampling_preconv_out_channels=8", "model.wavegrad.downsampling_out_channels=[8,8,8,8]"),
        (1800, 3600)),
    conformance.Case("fregrad vocoder", DEMO_CONFIG, (
        "model.backbone=fregrad", "model.residual_channels=4", "model.residual_layers=3", "model.dilation_cycle=2",
        "model.embed_dim=16", "diffusion.prior=fregrad", *PRIOR, "diffusion.stft_loss_weight=0.1")),
    conformance.Case("autoregressive sashimi", AR_DEMO_CONFIG, ("model.audio_length=256",), (128, 256)),
    conformance.Case("toy vocoder", DEMO_CONFIG, ("model.backbone=toy", "diffusion.prior=standard")),
]
IDS = [case.name for case in CASES]
VOCODERS = [case for case in CASES if "vocoder" in case.name]
# 5-10 s each: the --slow selection's
HEAVY = {"sashimi vocoder", "sashimi generator", "wavegrad vocoder", "wavenet vocoder, an upsampler per layer"}


def light_first(cases):
    """The cases, the heavy ones marked slow: the default selection keeps one case of every kind."""
    return [pytest.param(case, id=case.name, marks=[pytest.mark.slow] if case.name in HEAVY else []) for case in cases]


@pytest.fixture(autouse=True)
def toy_registered():
    registry.register(TOY)
    yield
    registry.unregister(TOY.name)


def test_every_family_of_the_package_has_a_case():
    assert {case.config_dict()["model"]["backbone"] for case in CASES} == set(registry.names())


@pytest.mark.parametrize("case", light_first(CASES))
def test_shapes_float32_outputs_and_checkpoint(case, tmp_path):
    pipeline = conformance.tiny_pipeline(case)
    conformance.check_shapes_at_two_lengths(case, pipeline)
    conformance.check_float32_outputs_under_a_mixed_policy(case, pipeline, "bfloat16")
    conformance.check_checkpoint_round_trip(case, pipeline, str(tmp_path))


@pytest.mark.parametrize("case", light_first(VOCODERS))
def test_chunked_equals_whole(case):
    conformance.check_chunked_equals_whole(case)


STREAMERS = [case for case in VOCODERS if "sashimi" not in case.name]  # S4 sees its whole window: no streaming


@pytest.mark.slow
@pytest.mark.parametrize("case", STREAMERS, ids=[case.name for case in STREAMERS])
def test_streaming_equals_whole(case):
    conformance.check_streaming_equals_whole(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_outputs_under_float16(case):
    conformance.check_float32_outputs_under_a_mixed_policy(case, conformance.tiny_pipeline(case), "float16")


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_savedmodel_serves_in_a_clean_process(case, tmp_path):
    conformance.check_savedmodel_serves_in_a_clean_process(case, str(tmp_path))


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_litert_or_its_refusal(case, tmp_path):
    pytest.importorskip("ai_edge_litert", reason="ai-edge-litert is not installed (pip install -e '.[litert]')")
    conformance.check_litert_or_its_refusal(case, str(tmp_path))
