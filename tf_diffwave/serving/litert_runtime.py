"""Running a LiteRT model of `tf_diffwave.serving.litert` with the `ai-edge-litert` interpreter and numpy alone: this
module imports no TensorFlow, so it runs where TensorFlow is not installed (`pip install ai-edge-litert`)."""

import numpy as np
from ai_edge_litert.interpreter import Interpreter


class LiteRTModel:
    """A .tflite vocoder or generator; calling it gives audio (B, samples) from its noise (S, B, samples) and, for
    a vocoder, the mel (B, frames, n_mels). The interpreter (XNNPACK on CPUs) is made once; its tensors are
    resized when the input shapes change."""

    def __init__(self, model_path, num_threads=None):
        self.interpreter = Interpreter(model_path=model_path, num_threads=num_threads)
        # "mel", or "serving_default_mel:0" where the converter kept the concrete function's tensor name
        self.inputs = {d["name"].removeprefix("serving_default_").split(":")[0]: d["index"]
                       for d in self.interpreter.get_input_details()}
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.shapes = None

    def __call__(self, noise, mel=None):
        values = {"noise": np.asarray(noise, np.float32)}
        if mel is not None:
            values["mel"] = np.asarray(mel, np.float32)
        if set(values) != set(self.inputs):
            raise ValueError(f"this model takes {sorted(self.inputs)}, not {sorted(values)}")
        shapes = {name: value.shape for name, value in values.items()}
        if shapes != self.shapes:
            for name, value in values.items():
                self.interpreter.resize_tensor_input(self.inputs[name], value.shape)
            self.interpreter.allocate_tensors()
            self.shapes = shapes
        for name, value in values.items():
            self.interpreter.set_tensor(self.inputs[name], value)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output)
