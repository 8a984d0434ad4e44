"""Loading trained models: `tf_diffwave.load(model_dir)`, and the model object it returns: its config, EMA weights,
precision and features. What a model does (vocode, stream, generate, export, ...) its pipeline answers
(tf_diffwave.pipelines), as attributes of the model object."""

import os

import numpy as np

from tf_diffwave.config import load_run_config
from tf_diffwave.data.audio import resample
from tf_diffwave.errors import UserError
from tf_diffwave.models.checkpoints import restore_ema
from tf_diffwave.models.registry import PRECISION_POLICIES, build_backbone
from tf_diffwave.pipelines import pipeline_for
from tf_diffwave.serving.auto_precision import choose, cpu_flags
from tf_diffwave.serving.savedmodel import write_export
from tf_diffwave.shipped import DEFAULT_MODEL_DIR


class TrainedModel:
    """A model folder's config and EMA weights, sampled by the pipeline of its kind (`pipeline`). The pipeline's
    calls are the model's: a vocoder's `vocode`, `stream`, `exact_lookahead`, `prior_std`; a generator's `generate`;
    a diffusion model's `denoise`, `reverse_process`, `sampler`, `synthesizer`; an autoregressive model's `logits`
    and `nll`. A call that a kind of model does not answer stops with a UserError that says so."""

    def __init__(self, model_dir, precision="float32"):
        if not os.path.isdir(model_dir):
            raise UserError(f"{model_dir}: model folder not found")
        self.model_dir = model_dir
        auto = precision == "auto"
        self.precision = "float32" if auto else check_precision(precision)
        self.config = load_run_config(model_dir)
        self.backbone = build_backbone(self.config, PRECISION_POLICIES[self.precision])
        self.family = self.backbone.family
        self.step = restore_ema(self.backbone.model, model_dir)
        self.pipeline = pipeline_for(self.backbone, self.config, model_dir)
        self._features = self.pipeline.log_mel.traced()
        # what precision="auto" chose and why, one line (None for a precision given by name)
        self.precision_choice = self._choose_precision() if auto else None

    def __getattr__(self, name):
        if name.startswith("_") or "pipeline" not in self.__dict__:
            raise AttributeError(name)
        return getattr(self.pipeline, name)

    def __dir__(self):
        return sorted(set(super().__dir__()) | {name for name in dir(self.pipeline) if not name.startswith("_")})

    def _choose_precision(self):
        """Try the reduced precisions this CPU has instructions for (auto_precision), keep the one chosen; its
        line."""
        probe = self.pipeline.precision_probe()
        if probe is None:
            return f"precision auto: float32 (a {self.pipeline.kind.name} has no reduced-precision path)"
        reduced = self.pipeline_in("bfloat16")
        precision, line = choose({"float32": probe, "bfloat16": reduced.precision_probe()},
                                 lambda audio: self.log_mel(audio).numpy(), cpu_flags())
        if precision == "bfloat16":
            self.precision, self.pipeline = precision, reduced
        return line

    def pipeline_in(self, precision):
        """A pipeline of this model's weights whose networks compute in `precision` (one of PRECISION_POLICIES)."""
        if check_precision(precision) == self.precision:
            return self.pipeline
        backbone = build_backbone(self.config, PRECISION_POLICIES[precision])
        backbone.model.set_weights(self.backbone.model.get_weights())
        return pipeline_for(backbone, self.config, self.model_dir)

    @property
    def n_mels(self):
        return self.config["audio"]["n_mels"]

    @property
    def unconditional(self):
        """Whether the model generates without a mel (config key `model.unconditional`)."""
        return self.config["model"]["unconditional"]

    def features(self, audio, name="audio", sample_rate=None):
        """The model's own mel features (frames, n_mels) of float audio (samples,) at `sample_rate` (default: the
        model's; other rates are resampled to it); errors name the audio `name` (its file, say)."""
        audio = np.asarray(audio, dtype=np.float32)
        hop = self.config["audio"]["hop_length"]
        if audio.ndim != 1:
            raise UserError(f"{name} has shape {audio.shape}; expected (samples,)")
        audio = resample(audio, sample_rate or self.sample_rate, self.sample_rate)
        if len(audio) < hop:
            raise UserError(f"{name}: {len(audio)} samples, shorter than one mel frame ({hop} samples)")
        return self._features(audio).numpy()

    def export(self, export_root, version=None, precision=None):
        """Write a TF Serving version folder <export_root>/<version> (default: the checkpoint's step) whose networks
        compute in `precision` (default: the model's); its signature takes and returns float32 either way."""
        module = self.pipeline_in(precision or self.precision).savedmodel_module()
        return write_export(module, export_root, self.step if version is None else version)


def check_precision(precision):
    """`precision` if it names one of PRECISION_POLICIES, else a UserError listing them."""
    if precision not in PRECISION_POLICIES:
        raise UserError(f"unknown precision '{precision}': use one of {', '.join(PRECISION_POLICIES)}")
    return precision


def load(model_dir=None, precision="float32"):
    """`tf_diffwave.load` (its docstring says what it takes), once TensorFlow is imported."""
    return TrainedModel(model_dir or DEFAULT_MODEL_DIR, precision)
