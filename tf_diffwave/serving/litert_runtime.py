"""Running a LiteRT model of `tf_diffwave.serving.litert` with the `ai-edge-litert` interpreter and numpy alone: this
module imports no TensorFlow, so it runs where TensorFlow is not installed (`pip install ai-edge-litert`)."""

import numpy as np
from ai_edge_litert.interpreter import Interpreter

from tf_diffwave.errors import UserError


class LiteRTModel:
    """A .tflite vocoder or generator; calling it gives audio (B, samples) from its noise (S, B, samples) and, for
    a vocoder, the mel (B, frames, n_mels). The interpreter (XNNPACK on CPUs) is made once; its tensors are
    resized when the input shapes change."""

    def __init__(self, model_path, num_threads=None):
        self.interpreter = Interpreter(model_path=model_path, num_threads=num_threads)
        # "mel", or "serving_default_mel:0" where the converter kept the concrete function's tensor name
        details = {d["name"].removeprefix("serving_default_").split(":")[0]: d
                   for d in self.interpreter.get_input_details()}
        self.inputs = {name: d["index"] for name, d in details.items()}
        self.signatures = {name: tuple(d["shape_signature"]) for name, d in details.items()}  # -1: any size
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.shapes = None

    def __call__(self, noise, mel=None):
        values = {"noise": np.asarray(noise, np.float32)}
        if mel is not None:
            values["mel"] = np.asarray(mel, np.float32)
        if set(values) != set(self.inputs):
            raise UserError(f"this model takes {' and '.join(sorted(self.inputs))}, not {' and '.join(sorted(values))}")
        self._check(values)
        shapes = {name: value.shape for name, value in values.items()}
        try:
            if shapes != self.shapes:
                self.shapes = None
                for name, value in values.items():
                    self.interpreter.resize_tensor_input(self.inputs[name], value.shape)
                self.interpreter.allocate_tensors()
                self.shapes = shapes
            for name, value in values.items():
                self.interpreter.set_tensor(self.inputs[name], value)
            self.interpreter.invoke()
        except RuntimeError as err:  # the interpreter's words name its nodes, not the inputs
            lengths = " and ".join(f"{name} {value.shape}" for name, value in sorted(values.items()))
            raise UserError(f"{lengths} do not fit this model: a vocoder's noise holds the mel's frames x its hop "
                            f"length samples, a generator's its clip length ({str(err).splitlines()[0]})") from None
        return self.interpreter.get_tensor(self.output)

    def _check(self, values):
        """One line for inputs whose steps, bands or batch differ from what the model takes."""
        for name, value in values.items():
            expected = self.signatures[name]
            if value.ndim != len(expected):
                raise UserError(f"{name} has shape {value.shape}; this model takes {len(expected)} axes: "
                                f"{AXES[name]}")
        steps = self.signatures["noise"][0]
        if steps > 0 and len(values["noise"]) != steps:
            raise UserError(f"noise holds {len(values['noise'])} steps (its first axis); this model's schedule has "
                            f"{steps}: {AXES['noise']}")
        if "mel" in values:
            mel, noise = values["mel"], values["noise"]
            bands = self.signatures["mel"][2]
            if bands > 0 and mel.shape[2] != bands:
                raise UserError(f"mel has {mel.shape[2]} bands; this model takes {bands}")
            if mel.shape[0] != noise.shape[1]:
                raise UserError(f"mel holds a batch of {mel.shape[0]}, noise of {noise.shape[1]} (its second axis)")
            if mel.shape[1] == 0 or noise.shape[2] % mel.shape[1]:
                raise UserError(f"noise of {noise.shape[2]} samples for {mel.shape[1]} mel frames: it holds the "
                                f"frames x the model's hop length samples")


AXES = {"noise": "(steps, batch, samples)", "mel": "(batch, frames, bands)"}
