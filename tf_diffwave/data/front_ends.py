"""The settings of common front ends' mels, and the check of a mel's stated rate, hop and band against a model's
(no TensorFlow: infer checks them before importing it)."""

import collections

from tf_diffwave.errors import UserError

FrontEnd = collections.namedtuple("FrontEnd", "title rate hop fmin fmax n_fft win_length convention")
# the settings of common front ends' mels (their published recipes), for `infer --front-end`; all but lmnt's use
# Slaney-normalised filters on the STFT magnitude of a periodic Hann window, frames centred
FRONT_ENDS = {
    "hifigan": FrontEnd("HiFi-GAN / NVIDIA Tacotron 2 (LJSpeech)", 22050, 256, 0.0, 8000.0, 1024, 1024, "ln"),
    "coqui": FrontEnd("Coqui TTS (LJSpeech recipes)", 22050, 256, 0.0, 8000.0, 1024, 1024, "db"),
    "espnet-22k": FrontEnd("ESPnet2 / ParallelWaveGAN (LJSpeech)", 22050, 256, 80.0, 7600.0, 1024, 1024, "log10"),
    "espnet-24k": FrontEnd("ESPnet2 / ParallelWaveGAN (LibriTTS, VCTK)", 24000, 300, 80.0, 7600.0, 2048, 1200,
                           "log10"),
    "speecht5": FrontEnd("SpeechT5 (16 kHz)", 16000, 256, 80.0, 7600.0, 1024, 1024, "log10"),
    "lmnt": FrontEnd("lmnt-com/diffwave", 22050, 256, 20.0, 11025.0, 1024, 1024, "lmnt"),
}
CHECKED = ("sample_rate", "hop_length", "fmin", "fmax")


def mel_settings(audio_config, front_end=None, rate=None, hop=None, fmax=None):
    """The audio settings a .npy mel was made with: the model's (`audio_config`), replaced by the named front
    end's (a FRONT_ENDS key) and then by the stated `rate`, `hop` and `fmax`."""
    settings = {key: audio_config[key] for key in CHECKED + ("n_fft", "win_length")}
    if front_end is not None:
        f = FRONT_ENDS[front_end]
        settings.update(sample_rate=f.rate, hop_length=f.hop, fmin=f.fmin, fmax=f.fmax, n_fft=f.n_fft,
                        win_length=f.win_length)
    stated = {"sample_rate": rate, "hop_length": hop, "fmax": fmax}
    settings.update({key: value for key, value in stated.items() if value is not None})
    settings["slaney"] = front_end != "lmnt" if front_end else None  # None: the model's filter type
    return settings


def differences(settings, audio_config):
    """The CHECKED settings in which a mel made with `settings` differs from the model's."""
    return [key for key in CHECKED if abs(settings[key] - audio_config[key]) > 1e-6]


def described(settings):
    """'16000 Hz, hop 256 (16.0 ms frames), mels 80-7600 Hz'."""
    return (f"{settings['sample_rate']:g} Hz, hop {settings['hop_length']} "
            f"({1000 * settings['hop_length'] / settings['sample_rate']:.1f} ms frames), "
            f"mels {settings['fmin']:g}-{settings['fmax']:g} Hz")


def check_front_end(what, settings, audio_config):
    """One line (UserError) when a mel made with `settings` (mel_settings) cannot be this model's: its frames
    would last another time, or its bands cover other frequencies."""
    if differences(settings, audio_config):
        raise UserError(f"{what}: made at {described(settings)}; this model takes {described(audio_config)}: its "
                        f"frames or bands would be read as others and vocoded wrongly; add --refit-mel to resample "
                        f"its frames and refilter its bands to the model's (an approximation, measured in "
                        f"docs/vocoding.md), give the model the audio (infer takes audio files), or use a model of "
                        f"that front end's settings (configs/ has 16, 22.05 and 24 kHz)")
