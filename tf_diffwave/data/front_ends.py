"""The settings of common front ends' mels, and the check of a mel's stated rate, hop and band against a model's
(no TensorFlow: infer checks them before importing it)."""

import collections

from tf_diffwave.errors import UserError

FrontEnd = collections.namedtuple("FrontEnd", "title rate hop fmax convention")
# the settings of common front ends' mels (their published recipes), for `infer --front-end`
FRONT_ENDS = {
    "hifigan": FrontEnd("HiFi-GAN / NVIDIA Tacotron 2 (LJSpeech)", 22050, 256, 8000.0, "ln"),
    "coqui": FrontEnd("Coqui TTS (LJSpeech recipes)", 22050, 256, 8000.0, "db"),
    "espnet-22k": FrontEnd("ESPnet2 / ParallelWaveGAN (LJSpeech)", 22050, 256, 7600.0, "log10"),
    "espnet-24k": FrontEnd("ESPnet2 / ParallelWaveGAN (LibriTTS, VCTK)", 24000, 300, 7600.0, "log10"),
    "speecht5": FrontEnd("SpeechT5 (16 kHz)", 16000, 256, 7600.0, "log10"),
    "lmnt": FrontEnd("lmnt-com/diffwave", 22050, 256, 11025.0, "lmnt"),
}


def check_front_end(what, rate, hop, fmax, audio_config):
    """One line (UserError) when a mel made at `rate` Hz with `hop` and mels up to `fmax` Hz (None: not stated)
    cannot be this model's: its frames would last another time, or its bands cover other frequencies."""
    a = audio_config
    stated = {"rate": rate, "hop": hop, "fmax": fmax}
    model = {"rate": a["sample_rate"], "hop": a["hop_length"], "fmax": a["fmax"]}
    differ = [key for key, value in stated.items() if value is not None and abs(value - model[key]) > 1e-6]
    if not differ:
        return
    def described(settings):
        parts = [f"{settings['rate']:g} Hz" if settings["rate"] else None,
                 f"hop {settings['hop']}" if settings["hop"] else None,
                 f"mels to {settings['fmax']:g} Hz" if settings["fmax"] else None]
        if settings["rate"] and settings["hop"]:
            parts[1] += f" ({1000 * settings['hop'] / settings['rate']:.1f} ms frames)"
        return ", ".join(p for p in parts if p)
    raise UserError(f"{what}: made at {described(stated)}; this model takes {described(model)}: its frames or bands "
                    f"would be read as others and vocoded wrongly; give the model the audio instead (infer takes "
                    f"audio files), or use a model of that front end's settings (configs/ has 16, 22.05 and 24 kHz)")
