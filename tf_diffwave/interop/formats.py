"""Which implementation saved a checkpoint, told by its keys, so that a converter given another format's file names
the command that converts it instead of failing on a missing key or, worse, converting it wrongly."""

from tf_diffwave.errors import UserError


def _state(checkpoint, *keys):
    """The first of `keys` that holds a dict in `checkpoint`, else the checkpoint itself (a bare state dict)."""
    for key in keys:
        if isinstance(checkpoint.get(key), dict):
            return checkpoint[key]
    return checkpoint


def _prefixed(state, prefix):
    return any(str(key).startswith(prefix) for key in state)


# (format, what saves it, test), most specific first: FreGrad's params have PriorGrad's, PriorGrad's state dict lmnt's
FORMATS = (
    ("fregrad", "a FreGrad (kaistmm/fregrad)",
     lambda c: any(str(key).endswith("dilated_conv.dwt.h0") for key in _state(c, "model"))),
    ("priorgrad", "a PriorGrad (microsoft/NeuralSpeech) vocoder",
     lambda c: isinstance(c.get("params"), dict) and "use_prior" in c["params"]),
    ("simple-sashimi", "an RF5/simple-sashimi autoregressive SaShiMi", lambda c: "cfg_yaml" in c),
    ("rf5-sashimi-diffwave", "an RF5/DiffWave-unconditional SaShiMi-DiffWave",
     lambda c: _prefixed(_state(c, "model_state_dict"), "sashimi.")),
    ("philsyn-vocoder", "a philsyn/DiffWave-Vocoder (conditional) WaveNet DiffWave",
     lambda c: any(".mel_conv." in str(key) for key in _state(c, "model_state_dict"))),
    ("rf5-diffwave", "an RF5/DiffWave-unconditional (philsyn) WaveNet DiffWave",
     lambda c: _prefixed(_state(c, "model_state_dict"), "residual_layer.")),
    ("wavegrad-ivanvovk", "an ivanvovk/WaveGrad", lambda c: _prefixed(_state(c, "model"), "nn.")),
    ("lmnt", "an lmnt-com/diffwave", lambda c: "input_projection.weight" in _state(c, "model")),
)
# the formats `tf-diffwave convert` imports
CONVERTIBLE = ("lmnt", "wavegrad-ivanvovk", "priorgrad", "fregrad", "rf5-diffwave", "philsyn-vocoder",
               "albertfgu-diffwave", "rf5-sashimi-diffwave", "simple-sashimi")


def identify(checkpoint):
    """The format name of a loaded checkpoint (see FORMATS), or None when it is none of them."""
    if not isinstance(checkpoint, dict):
        return None
    for name, _, test in FORMATS:
        if test(checkpoint):
            return name
    return None


def check_format(checkpoint, expected, path):
    """Raise UserError when the checkpoint at `path` is of a known format other than `expected`, naming it and the
    command that converts it."""
    found = identify(checkpoint)
    if found is None or found == expected:
        return
    described = dict((name, text) for name, text, _ in FORMATS)
    advice = (f"convert it with 'tf-diffwave convert {found} ...'" if found in CONVERTIBLE else
              "this version of tf-diffwave cannot convert that format yet")
    raise UserError(f"{path}: {described[found]} checkpoint, not {described[expected]} one; {advice}")
