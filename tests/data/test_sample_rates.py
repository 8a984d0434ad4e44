"""16 and 24 kHz vocoders: audio resampled on reading, WaveGrad's factors from the hop, and the demo configs of
both rates and both families through preprocess, 2 training steps and vocoding."""

import os

import numpy as np
import pytest
import soundfile

from tests.helpers import REPO, tiny_overrides, tiny_wavegrad_overrides
from tf_diffwave import load
from tf_diffwave.cli.preprocess import main as preprocess_main
from tf_diffwave.cli.train import main as train_main
from tf_diffwave.config import load_config
from tf_diffwave.data.audio import read_audio
from tf_diffwave.errors import UserError
from tf_diffwave.models.wavegrad import hop_factors

TONES = ((220.0, 0.3), (1234.5, 0.2), (3000.0, 0.1), (6800.0, 0.05))  # Hz, amplitude: below 16 kHz's Nyquist


def tones(rate, seconds):
    """The test signal at `rate`, computed in float64 from its formula."""
    t = np.arange(int(rate * seconds)) / rate
    return sum(a * np.sin(2 * np.pi * f * t + f / 1000) for f, a in TONES)


@pytest.mark.parametrize("rate", [16000, 24000])
def test_audio_is_resampled_to_the_models_rate_as_the_signal_sampled_there(tmp_path, rate):
    """A 22.05 kHz recording read at 16 or 24 kHz (soxr, high quality) is the same band-limited signal sampled at
    the new rate: within 1e-4 of the float64 formula, away from the ends (soxr's filter starts from silence)."""
    path = str(tmp_path / "tones.wav")
    soundfile.write(path, tones(22050, 1.0), 22050, subtype="FLOAT")
    audio = read_audio(path, rate)
    expected = tones(rate, 1.0)
    assert audio.dtype == np.float32 and abs(len(audio) - len(expected)) <= 1
    inner = slice(rate // 20, len(expected) - rate // 20)
    assert np.max(np.abs(audio[inner] - expected[inner])) < 1e-4


@pytest.mark.parametrize("hop,blocks,factors", [(300, 5, [5, 5, 3, 2, 2]), (256, 5, [4, 4, 4, 2, 2]),
                                                (200, 5, [5, 5, 2, 2, 2]), (240, 4, [5, 4, 4, 3]),
                                                (512, 5, [4, 4, 4, 4, 2]), (7, 3, [7, 1, 1])])
def test_wavegrads_factors_follow_the_hop(hop, blocks, factors):
    assert hop_factors(hop, blocks) == factors


def test_wavegrad_factors_given_must_multiply_to_the_hop():
    with pytest.raises(UserError, match="'model.wavegrad.factors' = \\[5, 5, 3, 2, 2\\] must be whole numbers whose "
                                        "product is 'audio.hop_length' \\(256\\)"):
        load_config(os.path.join(REPO, "configs", "wavegrad_demo.json"), ["audio.hop_length=256"])
    config = load_config(os.path.join(REPO, "configs", "wavegrad_demo.json"),
                         ["audio.hop_length=256", "model.wavegrad.factors=[]"])
    assert config["model"]["wavegrad"]["factors"] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", ["diffwave_demo_24k", "diffwave_demo_16k", "wavegrad_demo_16k", "wavegrad_demo_24k"])
def test_a_16_or_24_khz_demo_config_preprocesses_trains_and_vocodes(tmp_path, tiny_corpus, name):
    """The bundled 22.05 kHz corpus resampled by preprocess into mels at the config's rate, which 2 training steps
    read; the model vocodes hop samples per frame."""
    path = os.path.join(REPO, "configs", f"{name}.json")
    run, mel_dir = str(tmp_path / "run"), str(tmp_path / "mels")
    tiny = tiny_wavegrad_overrides if name.startswith("wavegrad") else tiny_overrides
    overrides = [*tiny(tiny_corpus, run), f"data.mel_dir={mel_dir}", "train.max_steps=2"]
    config = load_config(path, overrides)
    rate, hop = config["audio"]["sample_rate"], config["audio"]["hop_length"]
    preprocess_main(["--config", path, *overrides])
    samples = round(soundfile.info(os.path.join(tiny_corpus, "wavs", "LJ001-0001.wav")).frames * rate / 22050)
    mel = np.load(os.path.join(mel_dir, "LJ001-0001.npy"))
    assert mel.shape == (samples // hop + 1, 80)
    train_main(["--config", path, *overrides])
    model = load(run)
    assert model.sample_rate == rate and model.step == 2
    assert model.vocode(mel[:10]).shape == (10 * hop,)
