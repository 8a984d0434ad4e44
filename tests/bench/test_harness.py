"""The benchmark's pieces: the naive S4 routine it races against gives the layer's kernel, and its tables print as
Markdown."""

import numpy as np
import pytest

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


@pytest.mark.slow
def test_the_prior_table_times_both_priors_of_one_config(tmp_path):
    import json

    from tests.helpers import DEMO_CONFIG
    from tf_diffwave.bench.tables import prior_table

    with open(DEMO_CONFIG) as f:
        config = json.load(f)
    config["model"]["wavenet"] = {"residual_channels": 4, "residual_layers": 2, "dilation_cycle": 2, "embed_dim": 8}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config))
    rows = prior_table(str(path), rounds=1, repeats=0).markdown().splitlines()[4:]
    assert [row.split(" | ")[0] for row in rows] == ["| RTF, 1 s audio, fast schedule",
                                                     "| RTF, 5 s audio, fast schedule"]
    for row in rows:
        standard, prior, cost = (cell.strip(" |") for cell in row.split(" | ")[1:])
        # the cost of the unrounded RTFs, shown to 0.1%; the RTFs are shown to 0.001
        assert abs(float(cost.rstrip("%")) - 100 * (float(prior) / float(standard) - 1)) < 0.1 + 0.1 / float(standard)


@pytest.mark.slow
def test_the_streaming_table_times_each_chunk_size_against_whole_vocoding(tmp_path):
    import json

    from tests.helpers import DEMO_CONFIG
    from tf_diffwave.bench.tables import streaming_table

    with open(DEMO_CONFIG) as f:
        config = json.load(f)
    config["model"]["wavenet"] = {"residual_channels": 4, "residual_layers": 2, "dilation_cycle": 2, "embed_dim": 8}
    config["diffusion"] = {"prior": "standard"}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config))
    rows = streaming_table([str(path)], 1.0, rounds=1, chunk_sizes=(4, 16)).markdown().splitlines()[4:]
    assert [row.split(" | ")[2] for row in rows] == ["4 frames", "16 frames"]
    for row in rows:
        whole, first, total, cost = (cell.strip(" |x") for cell in row.split(" | ")[3:])
        assert 0 < float(first) <= float(total)
        assert abs(float(cost) - float(total) / float(whole)) < 0.01 + 0.01 * float(cost) / float(whole)


@pytest.mark.slow
def test_the_lookahead_table_finds_the_exact_lookahead_exact_and_none_not():
    from tf_diffwave.bench.tables import lookahead_table

    rows = lookahead_table(lookaheads=(None, 0), limit=1).markdown().splitlines()[4:]
    exact, none = ([cell.strip(" |") for cell in row.split(" | ")] for row in rows)
    assert exact[0].endswith("exact") and float(exact[1]) < 1e-4 and float(exact[2]) < 1e-4
    assert none[0].startswith("0 frames") and float(none[1]) > 1e-2
