"""LiteRT (TFLite) exports: the reverse process with the fast schedule unrolled into one graph of LiteRT's built-in
operators, for the `ai-edge-litert` interpreter (XNNPACK on CPUs) on machines and devices without TensorFlow.

LiteRT has no seeded random operators, so the model takes its noise as an input: `noise` (S, B, samples) for the
S-step schedule, noise[S - 1] the start x_T and noise[n - 1] the draw added after step n (the order of
`TrainedModel.reverse_process`). Standard normal draws from any generator will do (a model with PriorGrad's prior
scales them by the std it computes from the mel); `seeded_noise` gives the draws the SavedModel export makes for
seeds 0 .. B - 1, for comparing the two; `litert_runtime.LiteRTModel` runs the model.

Precision "int8" quantises the weights to int8 and XNNPACK quantises each convolution's input on the fly
(dynamic-range quantisation: int8 dot products, float32 between them), so the gate, the residual sums and the
sampler keep float32. A fully integer model (activations int8 too, calibrated on a representative set) runs
3.7x faster than float32 but loses 0.1 log-mel L1 on the bundled model, five times the bound (docs/benchmarks.md).
"""

import os
import re

import tensorflow as tf

# the one private TensorFlow import of the package: TensorFlow 2 has no public API that freezes a concrete
# function's variables into constants, which the converter needs here (see litert_model)
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from tf_diffwave.atomic import whole_file
from tf_diffwave.diffusion.samplers import per_example_normal
from tf_diffwave.errors import UserError
from tf_diffwave.serving.auto_precision import choose, cpu_flags

LITERT_PRECISIONS = ("float32", "int8")


def litert_model(pipeline, precision="float32"):
    """The .tflite bytes of a pipeline's LiteRT graph (`litert_function`: for a vocoder, mel (B, frames, n_mels)
    and noise (S, B, frames * hop) -> audio; for an unconditional model, noise (S, B, audio_length) -> audio), the
    schedule inside; `precision` one of LITERT_PRECISIONS. A kind of model that has no such graph refuses."""
    sample, specs = pipeline.litert_function()
    # the weights as constants: TensorFlow 2.21's converter leaves Keras 3 variables uninitialized in the model
    # (it reads garbage), from concrete functions and from SavedModels alike. It also writes no signature for
    # this graph, so `LiteRTModel` finds the inputs by name
    # (what a network computes from its weights alone when it samples, such as a SaShiMi's S4 kernels, is computed
    # here, eagerly, and enters as constants)
    with pipeline.backbone.sampling(portable=True):
        frozen = convert_variables_to_constants_v2(tf.function(sample, input_signature=specs).get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen], tf.Module())
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # no TensorFlow kernels inside
    if precision == "int8":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]  # no representative set: dynamic-range int8
    try:
        return converter.convert()
    except Exception as err:  # the converter's own error type is not public API
        missing = sorted(set(re.findall(r"'tf\.(\w+)' op is neither a custom op nor a flex op", str(err))))
        if not missing:
            raise
        raise UserError(f"model.backbone '{pipeline.config['model']['backbone']}': LiteRT has no built-in operator "
                        f"for {', '.join(missing)}, which this network computes; export it as a SavedModel") from None


def seeded_noise(seeds, steps, length):
    """The noise (S, B, length) that the SavedModel export and `TrainedModel.vocode` draw for `seeds` (B,) with an
    S-step schedule, in the order the LiteRT model takes it."""
    streams = list(range(1, steps)) + [-1]  # noise[n - 1] is drawn on stream n, x_T on stream -1
    return tf.stack([per_example_normal(seeds, length, stream) for stream in streams])


def export_litert(model, path, precision="float32"):
    """Write `model` with its fast schedule as a .tflite file at `path` in `precision` (LITERT_PRECISIONS, or
    "auto": int8 where this CPU has int8 dot products and the model's int8 audio is faster within the quality
    bound); (the path, the line saying what auto chose or None)."""
    pipeline = model.pipeline_in("float32")
    line = None
    with whole_file(path) as partial:
        if precision == "auto":
            candidates = {p: f"{partial}.{p}" for p in LITERT_PRECISIONS}
            try:
                for candidate, candidate_path in candidates.items():
                    _write(litert_model(pipeline, candidate), candidate_path)
                chosen, line = choose_litert(pipeline, candidates)
                os.replace(candidates[chosen], partial)
            finally:
                for candidate_path in candidates.values():
                    if os.path.exists(candidate_path):
                        os.remove(candidate_path)
        else:
            _write(litert_model(pipeline, precision), partial)
    return path, line


def _write(content, path):
    with open(path, "wb") as f:
        f.write(content)


def choose_litert(pipeline, paths):
    """(precision, line) of auto_precision.choose for the .tflite files `paths` (precision -> file) of a pipeline's
    model, run with ai-edge-litert on the pipeline's probe input."""
    from tf_diffwave.serving.litert_runtime import LiteRTModel

    steps = len(pipeline.schedule("fast")[0])
    noise, mel = pipeline.litert_probe_inputs(lambda samples: seeded_noise([0], steps, samples).numpy())
    runners = {p: (lambda m=LiteRTModel(path, os.cpu_count()): m(noise, mel)[0]) for p, path in paths.items()}
    return choose(runners, lambda audio: pipeline.log_mel(audio).numpy(), cpu_flags())
