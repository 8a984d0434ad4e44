"""Mels made at another rate, hop or filterbank: refitted to a model's, they come close to what librosa computes in
float64 from the same audio at the model's settings; stated mismatches stop with one line that offers the refit,
and following it vocodes; a mel whose rhythm is not speech's at the model's frame period is warned about."""

import logging
import os

import librosa
import numpy as np
import pytest
import soundfile

from tests.helpers import REPO
from tf_diffwave.config import load_config
from tf_diffwave.data.features import LogMel
from tf_diffwave.data.front_ends import FRONT_ENDS, check_front_end, mel_settings
from tf_diffwave.data.mel_refit import refit
from tf_diffwave.data.speech_rhythm import loudness_rate, warn_if_not_speech_rhythm
from tf_diffwave.errors import UserError

WAV = os.path.join(REPO, "data", "ljspeech-demo", "wavs", "LJ001-0001.wav")


def audio_config(name):
    return load_config(os.path.join(REPO, "configs", name))["audio"]


def librosa_mel(audio, rate, hop, fmin, fmax, n_fft=1024, win_length=1024, htk=False, power=1.0):
    """Float64 mel filter outputs (frames, 80) of librosa: centred frames, periodic Hann window."""
    return librosa.feature.melspectrogram(y=audio, sr=rate, n_fft=n_fft, hop_length=hop, win_length=win_length,
                                          center=True, pad_mode="constant", power=power, n_mels=80, fmin=fmin,
                                          fmax=fmax, htk=htk, norm=None if htk else "slaney", dtype=np.float64).T


@pytest.fixture(scope="module")
def speech():
    audio, rate = soundfile.read(WAV, dtype="float64")
    return audio, rate


@pytest.mark.parametrize("front_end", ["hifigan", "espnet-24k"])
def test_a_front_ends_mel_refitted_to_a_16k_model_is_close_to_the_models_own(speech, front_end):
    audio, rate = speech
    f = FRONT_ENDS[front_end]
    config = audio_config("fregrad_allison_16k.json")
    log_mel = LogMel.from_config(config)
    theirs = librosa_mel(librosa.resample(audio, orig_sr=rate, target_sr=f.rate), f.rate, f.hop, f.fmin, f.fmax,
                         f.n_fft, f.win_length)
    own = np.log(np.maximum(librosa_mel(librosa.resample(audio, orig_sr=rate, target_sr=16000), 16000, 256, 80.0,
                                        7600.0), 1e-5))
    refitted = refit(np.log(np.maximum(theirs, 1e-5)), mel_settings(config, front_end), log_mel)
    assert abs(len(refitted) - len(own)) <= 1
    frames = min(len(refitted), len(own))
    difference = refitted[:frames] - own[:frames]
    # measured 0.28 and 0.21; the same mel read without refitting is not even the right length
    assert np.mean(np.abs(difference)) < 0.35 and abs(np.mean(difference)) < 0.1


def test_refitting_a_mel_of_the_models_own_settings_keeps_it(speech):
    audio, rate = speech
    config = audio_config("demo.json")
    log_mel = LogMel.from_config(config)
    own = np.log(np.maximum(librosa_mel(audio, rate, 256, config["fmin"], config["fmax"]), 1e-5))
    refitted = refit(own, mel_settings(config), log_mel)
    assert refitted.shape == own.shape and np.mean(np.abs(refitted - own)) < 0.06  # the inversion's own loss


def test_a_power_mel_of_htk_filters_at_another_hop_refits_in_power(speech):
    audio, rate = speech  # ivanvovk's features: log10 of HTK-filtered power, hop 300 (no floor: dithered)
    audio = audio[:rate] + 1e-4 * np.random.default_rng(0).standard_normal(rate)
    config = audio_config("wavegrad_demo.json")
    log_mel = LogMel.from_config(config)
    made = np.log10(librosa_mel(audio, rate, 200, config["fmin"], config["fmax"], htk=True, power=2.0))
    own = np.log10(librosa_mel(audio, rate, 300, config["fmin"], config["fmax"], htk=True, power=2.0))
    refitted = refit(made, mel_settings(config, hop=200), log_mel)
    frames = min(len(refitted), len(own)) - 1  # ivanvovk's features drop the last frame
    assert abs(len(refitted) - len(own)) <= 1
    assert np.mean(np.abs(refitted[:frames] - own[:frames])) < 0.15  # log10 units: 0.35 in ln


def test_a_stated_mismatch_names_both_settings_and_offers_the_refit():
    model = audio_config("fregrad_allison_16k.json")
    check_front_end("a.npy", mel_settings(model, "speecht5"), model)  # SpeechT5's settings are this model's
    check_front_end("a.npy", mel_settings(model), model)  # nothing stated, nothing checked
    with pytest.raises(UserError, match="a.npy: made at 22050 Hz, hop 256 \\(11.6 ms frames\\), mels 0-8000 Hz; "
                                        "this model takes 16000 Hz, hop 256 \\(16.0 ms frames\\), mels 80-7600 Hz: "
                                        ".* add --refit-mel"):
        check_front_end("a.npy", mel_settings(model, "hifigan"), model)
    with pytest.raises(UserError, match="made at 16000 Hz, hop 300 \\(18.8 ms frames\\)"):
        check_front_end("a.npy", mel_settings(model, hop=300), model)


@pytest.mark.slow
def test_infer_refuses_a_stated_mismatch_and_following_the_hint_vocodes_it(speech, tmp_path, capsys):
    from tf_diffwave.cli.common import run as run_cli
    from tf_diffwave.cli.infer import main as infer_main

    audio, rate = speech
    mel = np.log(np.maximum(librosa_mel(audio[: rate * 3 // 2], rate, 256, 0.0, 8000.0), 1e-5)).astype(np.float32)
    np.save(tmp_path / "tts.npy", mel)
    command = ["--mel", str(tmp_path / "tts.npy"), "--front-end", "hifigan", "--out", str(tmp_path / "a.wav")]
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: infer_main(command))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "--refit-mel" in err
    infer_main(command + ["--refit-mel"])
    vocoded, vocoded_rate = soundfile.read(tmp_path / "a.wav")
    assert vocoded_rate == 16000 and abs(len(vocoded) / 16000 - len(mel) * 256 / rate) < 0.02  # the same seconds
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: infer_main(["--mel", str(tmp_path / "tts.npy"), "--refit-mel"]))
    assert stop.value.code == 2 and "--front-end" in capsys.readouterr().err
    infer_main(["--mel", str(tmp_path / "tts.npy"), "--out", str(tmp_path / "b.wav")])  # nothing stated: said
    assert "tts.npy: read as made at 16000 Hz, hop 256 (16.0 ms frames), mels 80-7600 Hz (this model's)" in \
        capsys.readouterr().out


def modulated_noise(rate_hz, seconds=4.0, sample_rate=16000):
    """Noise whose loudness rises and falls `rate_hz` times a second, as syllables do."""
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    noise = np.random.default_rng(0).standard_normal(len(t))
    return noise * 0.02 * np.exp(2.0 * np.sin(2 * np.pi * rate_hz * t))  # a log-loudness sinusoid


def test_the_loudness_rate_is_the_modulation_rate():
    for rate_hz in (3.0, 5.0):
        magnitude = librosa_mel(modulated_noise(rate_hz), 16000, 256, 80.0, 7600.0)
        assert abs(loudness_rate(magnitude, 256 / 16000) - rate_hz) < 0.4
    assert loudness_rate(magnitude[:50], 256 / 16000) is None  # 0.8 s: too short to tell


def test_a_mel_of_four_times_the_models_frame_period_is_warned_about_and_speech_is_not(caplog):
    log_mel = LogMel.from_config(audio_config("fregrad_allison_16k.json"))
    slow = np.log(np.maximum(librosa_mel(modulated_noise(4.0, seconds=10.0), 16000, 1024, 80.0, 7600.0), 1e-5))
    logger = logging.getLogger("tf_diffwave")  # the commands print it and stop its propagation
    logger.addHandler(caplog.handler)
    try:
        assert warn_if_not_speech_rhythm(slow, log_mel, "slow.npy") > 8.8
        assert "slow.npy: its loudness rises and falls" in caplog.text and "hurried" in caplog.text
        caplog.clear()
        for name in sorted(os.listdir(os.path.join(REPO, "data", "ljspeech-demo", "wavs")))[:10]:
            audio, rate = soundfile.read(os.path.join(REPO, "data", "ljspeech-demo", "wavs", name))
            own = librosa_mel(librosa.resample(audio, orig_sr=rate, target_sr=16000), 16000, 256, 80.0, 7600.0)
            warn_if_not_speech_rhythm(np.log(np.maximum(own, 1e-5)), log_mel, name)
        assert caplog.text == ""
    finally:
        logger.removeHandler(caplog.handler)
