"""Linear-probe accuracy: known answers, agreement with scikit-learn, per-chunk probes."""

import numpy as np
import pytest
from sklearn import linear_model

from disentangle_jax.metrics import linear_probe


def _split(x, y, n_train):
  return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


def test_separable_attributes_score_one_and_random_ones_chance():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(1500, 6))
  y = np.stack(
    [
      x[:, 0] > 0,  # separable, binary
      x[:, 1] + x[:, 2] > 0.3,  # separable, binary, unbalanced-ish
      rng.integers(0, 2, size=1500),  # random
    ],
    1,
  ).astype(int)
  out = linear_probe.probe_accuracy(*_split(x, y, 1000))
  assert out['test_accuracy'].shape == (1, 3)
  assert out['test_accuracy'][0, 0] > 0.98 and out['test_accuracy'][0, 1] > 0.98
  assert abs(out['test_accuracy'][0, 2] - 0.5) < 0.07


def test_multiclass_attributes():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(1500, 4))
  y = np.stack(
    [
      np.digitize(x[:, 0], [-1.0, 0.0, 1.0]),  # 4 ordered classes: separable by thresholds
      rng.integers(0, 5, size=1500),  # random, 5 classes
      (x[:, 1] > 0).astype(int),  # binary inside a multi-class set
    ],
    1,
  )
  out = linear_probe.probe_accuracy(*_split(x, y, 1000))['test_accuracy'][0]
  assert out[0] > 0.9
  assert abs(out[1] - 0.2) < 0.07
  assert out[2] > 0.97


@pytest.mark.parametrize('multiclass', [False, True])
def test_agrees_with_sklearn(multiclass):
  """Same objective as LogisticRegression(C=1) on standardised inputs: same accuracies."""
  rng = np.random.default_rng(2)
  x = rng.normal(size=(1200, 5)) * [1.0, 3.0, 0.5, 2.0, 1.0] + 4.0
  logits = (x - 4.0) @ rng.normal(size=(5, 3))
  noisy = logits + rng.normal(size=logits.shape)
  if multiclass:
    y = np.stack([np.digitize(noisy[:, a], [-1.0, 0.5, 2.0]) for a in range(3)], 1)
  else:
    y = (noisy > 0).astype(int)
  train_x, train_y, test_x, test_y = _split(x, y, 800)
  ours = linear_probe.probe_accuracy(train_x, train_y, test_x, test_y)
  mean, std = train_x.mean(0), train_x.std(0)
  for a in range(3):
    model = linear_model.LogisticRegression(C=1.0, max_iter=1000)
    model.fit((train_x - mean) / std, train_y[:, a])
    ref_test = model.score((test_x - mean) / std, test_y[:, a])
    ref_train = model.score((train_x - mean) / std, train_y[:, a])
    assert ours['test_accuracy'][0, a] == pytest.approx(ref_test, abs=0.005)
    assert ours['train_accuracy'][0, a] == pytest.approx(ref_train, abs=0.005)


def test_per_chunk_probes_find_the_informative_chunk():
  rng = np.random.default_rng(3)
  n, chunks, d = 1200, 5, 3
  x = rng.normal(size=(n, chunks, d))
  # Attribute a depends on chunk (2 * a) % 5 only.
  y = np.stack([x[:, (2 * a) % chunks, 0] > 0 for a in range(4)], 1).astype(int)
  out = linear_probe.linear_probe_evaluation(*_split(x.reshape(n, -1), y, 800), num_chunks=chunks)
  acc = out['accuracy_per_chunk']
  assert acc.shape == (chunks, 4)
  for a in range(4):
    c = (2 * a) % chunks
    assert acc[c, a] > 0.97
    assert np.delete(acc[:, a], c).max() < 0.65
  np.testing.assert_array_equal(out['best_chunk'], [0, 2, 4, 1])
  assert np.all(out['accuracy'] > 0.95)  # the whole code sees every chunk
  assert out['accuracy_best_chunk_mean'] > 0.97
  np.testing.assert_allclose(out['chance_accuracy'], 0.5, atol=0.08)


def test_groups_do_not_change_the_result():
  """Probes fitted in several padded groups equal probes fitted together (they are independent)."""
  rng = np.random.default_rng(4)
  x = rng.normal(size=(600, 7, 2)).astype(np.float32)
  y = (x[:, :, 0] + 0.5 * rng.normal(size=(600, 7)) > 0).astype(int)[:, :3]
  together = linear_probe.probe_accuracy(*_split(x, y, 400))
  groups = linear_probe.probe_accuracy(*_split(x, y, 400), max_elements=400 * 3 * 3)
  np.testing.assert_allclose(groups['test_accuracy'], together['test_accuracy'], atol=0.006)


def test_label_values_and_degenerate_inputs():
  rng = np.random.default_rng(5)
  x = rng.normal(size=(300, 3))
  y = np.where(x[:, :1] > 0, 1, -1)  # CelebA's -1 / +1 labels
  out = linear_probe.probe_accuracy(*_split(x, y, 200))
  assert out['test_accuracy'][0, 0] > 0.95
  # A constant feature and a one-class attribute: defined values, no NaN.
  x_const = np.concatenate([x, np.ones((300, 1))], 1)
  y2 = np.concatenate([y, np.ones((300, 1), int)], 1)
  out = linear_probe.probe_accuracy(*_split(x_const, y2, 200))
  assert np.all(np.isfinite(out['test_accuracy']))
  assert out['test_accuracy'][0, 1] == 1.0
  bad = x.copy()
  bad[3, 1] = np.nan
  with pytest.raises(ValueError, match='NaN'):
    linear_probe.probe_accuracy(*_split(bad, y, 200))
  with pytest.raises(ValueError, match='differ'):
    linear_probe.probe_accuracy(x[:200], y[:200], x[200:, :2], y[200:])
  with pytest.raises(ValueError, match='chunks'):
    linear_probe.linear_probe_evaluation(*_split(x, y, 200), num_chunks=2)


def test_binary_attributes_among_multiclass_ones_get_one_logit():
  """A binary attribute probed next to multi-class ones is scikit-learn's single-logit fit at C,
  not the two-logit softmax (which halves the penalty: scikit-learn at 2 C).

  The test labels are scikit-learn's own predictions on many points, so the test accuracy is the
  agreement of the two decision functions; a small training set makes the penalty matter.
  """
  rng = np.random.default_rng(7)
  x = rng.normal(size=(40 + 4000, 4))
  binary = (x[:, 0] + 0.8 * x[:, 1] + rng.normal(size=len(x)) > 0.3).astype(int)
  multi = np.digitize(x[:, 2] + rng.normal(size=len(x)), [-0.5, 0.5])  # 3 classes
  train_x, test_x = x[:40], x[40:]
  mean, std = train_x.mean(0), train_x.std(0)

  def sklearn_predictions(c):
    clf = linear_model.LogisticRegression(C=c, tol=1e-8, max_iter=10_000)
    return clf.fit((train_x - mean) / std, binary[:40]).predict((test_x - mean) / std)

  at_c, at_2c = sklearn_predictions(1.0), sklearn_predictions(2.0)
  assert np.mean(at_c != at_2c) > 0.01  # the test can tell the two penalties apart
  train_y = np.stack([binary[:40], multi[:40]], 1)
  test_y = np.stack([at_c, multi[40:]], 1)
  ours = linear_probe.probe_accuracy(train_x, train_y, test_x, test_y, tol=1e-7, max_iter=500)
  assert ours['test_accuracy'][0, 0] >= 0.998
  alone = linear_probe.probe_accuracy(train_x, binary[:40], test_x, at_c, tol=1e-7, max_iter=500)
  assert alone['test_accuracy'][0, 0] >= 0.998
