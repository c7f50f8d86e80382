"""UDR (Lasso and Spearman variants)."""

import numpy as np
import pytest

from disentangle_jax.metrics import udr


def test_relative_strength_known_answers():
  assert udr.relative_strength(np.eye(4)) == 1.0
  np.testing.assert_allclose(udr.relative_strength(np.ones((4, 4))), 0.25)
  assert udr.relative_strength(np.zeros((3, 3))) == 0.0  # 0/0 counts as 0


def _models(seed=0):
  rng = np.random.default_rng(seed)
  base = rng.standard_normal((1000, 4))
  kl = np.r_[np.ones(4), np.full(2, 1e-3)]
  codes = []
  for m in range(4):
    if m < 3:  # permuted (and sign-flipped) copies of one disentangled code
      z = base[:, rng.permutation(4)] * rng.choice([-1, 1], 4)
    else:  # an entangled model: a dense rotation of it
      q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
      z = base @ q
    z = np.concatenate([z, 0.01 * rng.standard_normal((1000, 2))], 1)
    codes.append(z + 0.05 * rng.standard_normal(z.shape))
  return codes, [kl] * 4


@pytest.mark.parametrize('correlation', ['lasso', 'spearman'])
def test_disentangled_models_rank_above_the_entangled_one(correlation):
  codes, kl = _models()
  out = udr.udr(codes, kl, correlation=correlation)
  scores = out['model_scores']
  assert np.all(scores[:3] > 0.8) and scores[3] < scores[:3].min() - 0.3, scores
  assert out['pairwise_disentanglement_scores'].shape == (4, 4)
  assert np.all(np.isfinite(out['raw_correlations']))


def test_degenerate_inputs():
  codes, kl = _models()
  codes[1][:, 0] = 2.0  # constant dimension: no NaN
  out = udr.udr(codes, kl, correlation='spearman', filter_low_kl=False)
  assert np.all(np.isfinite(out['model_scores']))
  with pytest.raises(ValueError):
    udr.udr(codes[:1], kl[:1])
  with pytest.raises(ValueError):
    udr.udr(codes, kl, correlation='pearson')
