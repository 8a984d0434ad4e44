"""The SC09 quality metrics against hand-computed values, and the bundled classifier on cases with known answers."""

import math
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import REPO, SC09_CLASSIFIER, SC09_DEMO, seeded_trainer
from tf_diffwave.evaluation.sc09_metrics import (
    am_score,
    frechet_distance,
    inception_score,
    label_distribution,
    modified_inception_score,
)


def one_hot(labels, k=10):
    return np.eye(k)[labels]


def test_inception_score_hand_computed():
    assert inception_score(one_hot([3] * 8)) == pytest.approx(1.0)  # one confident label for all
    assert inception_score(one_hot(list(range(10)) * 3)) == pytest.approx(10.0)  # the maximum for 10 classes
    assert inception_score(one_hot([0, 1])) == pytest.approx(2.0)
    # p1 = (0.8, 0.2), p2 = (0.2, 0.8): marginal (0.5, 0.5), KL = 0.8 ln 1.6 + 0.2 ln 0.4 for both
    probs = np.array([[0.8, 0.2], [0.2, 0.8]])
    assert inception_score(probs) == pytest.approx(math.exp(0.8 * math.log(1.6) + 0.2 * math.log(0.4)))
    rng = np.random.default_rng(0)
    random = rng.dirichlet(np.ones(10), 500)
    assert 1.0 <= inception_score(random) <= 10.0


def test_modified_inception_score_hand_computed():
    probs = np.array([[0.8, 0.2], [0.2, 0.8], [0.5, 0.5]])
    kl = lambda p, q: sum(a * math.log(a / b) for a, b in zip(p, q))  # noqa: E731
    pairs = [kl(probs[i], probs[j]) for i in range(3) for j in range(3) if i != j]
    assert modified_inception_score(probs) == pytest.approx(math.exp(sum(pairs) / 6))
    assert modified_inception_score(np.full((4, 10), 0.1)) == pytest.approx(1.0)


def test_am_score_hand_computed():
    reference = np.array([0.5, 0.5])
    assert am_score(one_hot([0, 1], 2), reference) == pytest.approx(0.0, abs=1e-9)  # confident, spread as real
    probs = np.array([[0.9, 0.1], [0.7, 0.3]])  # marginal (0.8, 0.2)
    entropy = np.mean([-(0.9 * math.log(0.9) + 0.1 * math.log(0.1)), -(0.7 * math.log(0.7) + 0.3 * math.log(0.3))])
    kl = 0.5 * math.log(0.5 / 0.8) + 0.5 * math.log(0.5 / 0.2)
    assert am_score(probs, reference) == pytest.approx(kl + entropy)


def test_frechet_distance_against_an_eigenvalue_computation():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(400, 5)) @ rng.normal(size=(5, 5))
    b = rng.normal(size=(300, 5)) * [1, 2, 3, 0.5, 1] + [1, 0, -1, 2, 0]
    ca, cb = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # Tr (Ca Cb)^(1/2) = sum of the square roots of the (real, non-negative) eigenvalues of Ca Cb
    root_trace = np.sum(np.sqrt(np.clip(np.linalg.eigvals(ca @ cb).real, 0, None)))
    expected = np.sum((a.mean(0) - b.mean(0)) ** 2) + np.trace(ca) + np.trace(cb) - 2 * root_trace
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifted = a + [3.0, 0, 0, 4.0, 0]
    assert frechet_distance(a, shifted) == pytest.approx(25.0, rel=1e-6)


def test_label_distribution():
    np.testing.assert_allclose(label_distribution(one_hot([2, 2, 5, 9])), [0, 0, .5, 0, 0, .25, 0, 0, 0, .25])


@pytest.mark.slow
def test_bundled_classifier_scores_real_clips_far_above_noise_and_an_untrained_model(tmp_path):
    """Known answers: held-out real digits are recognised (IS near the 10 digits, low FID), white noise and the
    output of an untrained DiffWave are not."""
    import soundfile

    import tf_diffwave
    from tf_diffwave.config import load_config, save_config
    from tf_diffwave.data.corpora import read_sc09
    from tf_diffwave.evaluation.classifier import DigitClassifier, labelled_clips
    from tf_diffwave.evaluation.reports import real_training_clips, sc09_report

    classifier = DigitClassifier(SC09_CLASSIFIER)
    corpus = read_sc09(SC09_DEMO, 10.0, 10.0)
    test_clips, labels = labelled_clips(corpus, corpus.test_ids, 16000, 16000)
    probs, _ = classifier.predict(test_clips)
    assert np.mean(np.argmax(probs, 1) == labels) >= 0.9
    real = real_training_clips(classifier, SC09_DEMO)
    noise = np.random.default_rng(0).normal(0, 0.1, (20, 16000)).astype(np.float32)

    run = str(tmp_path / "untrained")
    config = load_config(os.path.join(REPO, "configs", "sc09_demo.json"), [f"train.model_dir={run}"])
    save_config(config, run)
    trainer = seeded_trainer(config)
    trainer.save()
    untrained = tf_diffwave.load(run).generate(20, batch_size=20)

    reports = {name: sc09_report(classifier, clips, real)
               for name, clips in (("real", test_clips), ("noise", noise), ("untrained", untrained))}
    for bad in ("noise", "untrained"):
        assert reports["real"]["IS"] > 2 * reports[bad]["IS"]
        assert reports["real"]["mIS"] > 2 * reports[bad]["mIS"]
        assert reports["real"]["FID"] < 0.5 * reports[bad]["FID"]
        assert reports["real"]["AM"] < reports[bad]["AM"]
    assert reports["real"]["IS"] > 7.0

    folder = tmp_path / "generated"
    folder.mkdir()
    for i, clip in enumerate(test_clips[:6]):
        soundfile.write(str(folder / f"{i}.wav"), clip, 16000)
    out = subprocess.run([sys.executable, "-m", "tf_diffwave.cli.main", "evaluate", "sc09", "--generated", str(folder),
                          "--classifier", SC09_CLASSIFIER, "--real", SC09_DEMO], cwd=REPO, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "| FID (lower is better) | IS (higher) | mIS (higher) | AM (lower) |" in out.stdout
    assert "6 generated clips against 30 real training clips" in out.stdout
