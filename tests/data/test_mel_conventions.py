"""Mels from other systems: each convention converts to the model's features as a float64 computation from the
same audio with librosa says, and a mel in the wrong convention stops with one line that names the likely one."""

import os

import librosa
import numpy as np
import pytest
import soundfile

from tests.helpers import REPO
from tf_diffwave.config import load_config
from tf_diffwave.data.features import LogMel
from tf_diffwave.data.mel_conventions import check_mel, convert
from tf_diffwave.errors import UserError

WAV = os.path.join(REPO, "data", "ljspeech-demo", "wavs", "LJ001-0001.wav")


@pytest.fixture(scope="module")
def speech():
    """(the demo config's LogMel, the recording's mel magnitudes (frames, 80) by librosa in float64)."""
    audio_config = load_config(os.path.join(REPO, "configs", "demo.json"))["audio"]
    log_mel = LogMel.from_config(audio_config)
    audio, rate = soundfile.read(WAV, dtype="float64")
    a = audio_config
    magnitude = librosa.feature.melspectrogram(y=audio, sr=rate, n_fft=a["n_fft"], hop_length=a["hop_length"],
                                               win_length=a["win_length"], center=True, pad_mode="constant",
                                               power=1.0, n_mels=a["n_mels"], fmin=a["fmin"], fmax=a["fmax"],
                                               htk=False, norm="slaney", dtype=np.float64).T
    return log_mel, magnitude


def log10_mel(magnitude):
    return np.log10(np.maximum(magnitude, 1e-10))


def coqui_db_mel(magnitude, max_norm=4.0, min_level_db=-100.0, ref_level_db=20.0):
    """Coqui TTS's AudioProcessor: dB of the magnitude floored at min_level_db, minus ref_level_db, mapped
    symmetrically to [-max_norm, max_norm] and clipped."""
    db = 20 * np.log10(np.maximum(magnitude, 10 ** (min_level_db / 20))) - ref_level_db
    return np.clip(2 * max_norm * (db - min_level_db) / -min_level_db - max_norm, -max_norm, max_norm)


def test_each_convention_converts_to_the_models_features(speech):
    log_mel, magnitude = speech
    expected = np.log(np.maximum(magnitude, 1e-5))  # the model's features, float64
    stats = np.stack([log10_mel(magnitude).mean(axis=0), log10_mel(magnitude).std(axis=0)])
    cases = {"ln": (np.log(np.maximum(magnitude, 1e-5)), {}, expected),
             "log10": (log10_mel(magnitude), {}, expected),
             "log10 normalised": ((log10_mel(magnitude) - stats[0]) / stats[1], {"stats": stats}, expected),
             # Coqui's dB keeps magnitudes from 10^((-100 + 20) / 20) = 1e-4 to 10^(20 / 20) = 10
             "db": (coqui_db_mel(magnitude), {}, np.log(np.clip(magnitude, 1e-4, 10.0))),
             "db, max_norm 1, ref 0 dB": (coqui_db_mel(magnitude, 1.0, -100.0, 0.0), {"max_norm": 1.0,
                                                                                       "ref_level_db": 0.0},
                                          np.log(np.clip(magnitude, 1e-5, 1.0)))}
    for case, (mel, options, target) in cases.items():
        name = case.split()[0].rstrip(",")
        converted = convert(mel, name, log_mel, **options)
        assert converted.dtype == np.float32 and converted.shape == mel.shape
        np.testing.assert_allclose(converted, target, atol=2e-5, err_msg=case)
        check_mel(converted, log_mel)  # and the result is a mel this model takes


def test_the_model_own_features_pass_the_check(speech):
    log_mel, magnitude = speech
    audio, _ = soundfile.read(WAV, dtype="float32")
    check_mel(log_mel(audio).numpy(), log_mel)


@pytest.mark.parametrize("make, expected", [
    (lambda m: log10_mel(np.maximum(m, 1e-5)), "a silence floor at -5.00, where these features' is -11.51: "
     ".* it looks like a log10 mel with floor 1e-5 \\(--mel-convention log10, or "
     "convention=\"log10\" in Python\\)"),
    (lambda m: np.clip(coqui_db_mel(m) / 8 + 0.5, 0, 1),
     "every value in \\[0, 1\\].* lmnt-com/diffwave's \\[0, 1\\] mel"),
    (lambda m: 20 * np.log10(np.maximum(m, 1e-5)), "above the largest these features take .* dB mel"),
    (lambda m: np.log(np.maximum(m, 1e-5)).T, "it looks transposed \\(mels before frames\\)"),
    (lambda m: np.log(np.maximum(m, 1e-5))[:, :64], "has 64 mels per frame, expected \\(frames, 80\\)"),
    (lambda m: np.log(np.maximum(m, 1e-10)), "below their silence floor \\(-11.51\\).* natural-log mel with floor "
                                              "1e-10 \\(--mel-convention ln, or convention=\"ln\" in Python\\)"),
], ids=["log10", "[0, 1]", "dB", "transposed", "64 mels", "ln floor 1e-10"])
def test_a_mel_in_another_convention_stops_with_one_line_naming_it(speech, make, expected):
    log_mel, magnitude = speech
    with pytest.raises(UserError, match=expected) as error:
        check_mel(make(magnitude), log_mel, "front-end.npy")
    assert "\n" not in str(error.value) and str(error.value).startswith("front-end.npy")


def test_a_mel_in_the_models_own_scale_from_another_recipe_is_not_sent_round_to_that_scale(speech):
    """The ln of a loud *power* mel has the model's scale and floor but not its values: the hint must not name the
    model's own convention (following it would repeat the error word for word)."""
    log_mel, magnitude = speech
    power = np.log(np.maximum((8 * magnitude) ** 2, 1e-5))
    with pytest.raises(UserError, match="its scale is this model's own, so its STFT, filterbank or power differ") \
            as error:
        check_mel(power, log_mel, "power.npy")
    assert "--mel-convention" not in str(error.value)


def test_conversions_that_would_not_be_exact_are_refused(speech):
    log_mel, magnitude = speech
    with pytest.raises(UserError, match="features are 'hifigan', and lmnt-com/diffwave's STFT and filterbank differ"):
        convert(np.zeros((3, 80)), "lmnt", log_mel)
    lmnt = LogMel.from_config(dict(load_config(os.path.join(REPO, "configs", "demo.json"))["audio"], features="lmnt"))
    with pytest.raises(UserError, match="features are lmnt-com/diffwave's, and a 'ln' mel's front end STFT"):
        convert(np.zeros((3, 80)), "ln", lmnt)
    with pytest.raises(UserError, match="takes stats, not max_norm"):
        convert(np.zeros((3, 80)), "log10", log_mel, max_norm=4.0)
    with pytest.raises(UserError, match="expected \\(2, 80\\)"):
        convert(np.zeros((3, 80)), "log10", log_mel, stats=np.zeros((80, 2)))
    with pytest.raises(UserError, match="unknown mel convention 'mfcc'"):
        convert(np.zeros((3, 80)), "mfcc", log_mel)


@pytest.mark.slow
def test_infer_and_vocode_convert_a_named_convention_and_stop_on_an_unnamed_one(speech, tmp_path, capsys):
    import tf_diffwave
    from tf_diffwave.cli.common import run as run_cli
    from tf_diffwave.cli.infer import main as infer_main

    log_mel, magnitude = speech
    mel = log10_mel(magnitude[:24]).astype(np.float32)
    np.save(tmp_path / "espnet.npy", mel)
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: infer_main(["--mel", str(tmp_path / "espnet.npy"), "--out-dir", str(tmp_path)]))
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1 and "--mel-convention log10" in err
    infer_main(["--mel", str(tmp_path / "espnet.npy"), "--mel-convention", "log10", "--out", str(tmp_path / "a.wav")])
    audio, _ = soundfile.read(tmp_path / "a.wav", dtype="float32")
    assert len(audio) == 24 * 256
    model = tf_diffwave.load()
    np.testing.assert_allclose(model.vocode(mel, convention="log10"),
                               model.vocode(np.log(np.maximum(magnitude[:24], 1e-5))), atol=1e-3)
    np.testing.assert_allclose(audio, model.vocode(mel, convention="log10"), atol=2 / 32768)
