"""The benchmark's pieces: the naive S4 routine it races against gives the layer's kernel, and its tables print as
Markdown."""

import numpy as np

from tf_diffwave.bench.harness import broadcast_spectrum
from tf_diffwave.bench.tables import Table
from tf_diffwave.models.s4 import S4Layer


def test_the_broadcast_cauchy_routine_gives_the_layers_kernel():
    layer = S4Layer(4, 256, state_size=8, bidirectional=True)
    layer.build((None, None, 4))
    chunked = layer.kernel().numpy()
    broadcast = layer.kernel(spectrum=broadcast_spectrum).numpy()
    assert chunked.shape == broadcast.shape == (2, 4, 256)
    assert np.max(np.abs(broadcast - chunked)) < 1e-5 * np.max(np.abs(chunked))


def test_a_table_prints_as_markdown():
    table = Table("Two rows", ["a", "b"])
    table.add(1, "x")
    table.add(2.5, "y")
    assert table.markdown() == "Two rows\n\n| a | b |\n| --- | --- |\n| 1 | x |\n| 2.5 | y |"
