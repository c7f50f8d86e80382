"""InfoMEC: kNN MI equal to scikit-learn's, known answers, reference formulas."""

import numpy as np
import pytest
from sklearn import feature_selection, linear_model, metrics, preprocessing

import _metrics_data as data
from disentangle_jax.metrics import infomec

SIZES = (3, 6, 10, 8)


def test_knn_mutual_info_equals_sklearn():
  f = data.factors(2000, SIZES)
  z = data.identity_code(f, SIZES, noise=0.1, extra_dims=1)
  z[:, 4] = np.round(z[:, 0] * 2)  # heavy ties: broken by the same jitter as sklearn's
  ours = infomec.knn_mutual_info(infomec.sklearn_jitter(z, 3), f)
  for i in range(f.shape[1]):
    for j in range(z.shape[1]):
      ref = feature_selection.mutual_info_classif(z[:, j:j + 1], f[:, i], n_neighbors=10,
                                                  random_state=3)[0]
      assert abs(ours[i, j] - ref) < 1e-9, (i, j)


def test_matches_reference_formulas():
  f = data.factors(2000, SIZES)
  z = data.identity_code(f, SIZES, noise=0.1, extra_dims=2)
  out = infomec.infomec(z, f, random_state=5)
  zs = np.concatenate([preprocessing.StandardScaler().fit_transform(z[:, j:j + 1])
                       for j in range(z.shape[1])], 1)
  nmi = np.array([[feature_selection.mutual_info_classif(zs[:, j:j + 1], f[:, i], n_neighbors=10,
                                                         random_state=5)[0]
                   / metrics.mutual_info_score(f[:, i], f[:, i])
                   for j in range(z.shape[1])] for i in range(f.shape[1])])
  np.testing.assert_allclose(out['nmi'], nmi, atol=1e-9)
  ranges = np.ptp(z, axis=0)
  active = ranges > ranges.max() / 20
  p = nmi[:, active]
  k, da = f.shape[1], active.sum()
  # An active code with no information has 0/0 in the reference: left out (nanmean), as ours.
  with np.errstate(invalid='ignore'):
    infom = (np.nanmean(p.max(0) / p.sum(0)) - 1 / k) / (1 - 1 / k)
    infoc = (np.nanmean(p.max(1) / p.sum(1)) - 1 / da) / (1 - 1 / da)
  assert abs(out['infom'] - infom) < 1e-9 and abs(out['infoc'] - infoc) < 1e-9
  x = preprocessing.StandardScaler().fit_transform(z)
  infoe = []
  for i in range(f.shape[1]):
    clf = linear_model.LogisticRegression(penalty=None, class_weight='balanced', max_iter=100)
    l1 = metrics.log_loss(f[:, i], clf.fit(x, f[:, i]).predict_proba(x))
    infoe.append((np.log(SIZES[i]) - l1) / np.log(SIZES[i]))
  assert abs(out['infoe'] - np.mean(infoe)) < 0.01  # unpenalised fits: where each solver stops


def test_known_answers_and_noise():
  f = data.factors(2000, SIZES)
  ident = infomec.infomec(data.identity_code(f, SIZES, noise=0.01), f)
  assert ident['infom'] > 0.9 and ident['infoc'] > 0.9 and ident['infoe'] > 0.9
  rng = np.random.default_rng(0)
  random = infomec.infomec(rng.standard_normal((2000, 4)), f)
  assert random['infoe'] < 0.05 and random['infom'] < ident['infom'] - 0.3
  z = data.identity_code(f, SIZES, noise=0.01)
  # kNN MI sees through a slight rotation of a low-noise code: most of the drop comes early, and
  # beyond about 20 degrees the scores level off (both codes then carry both factors).
  by_angle = [infomec.infomec(data.rotate_pairs(z, a), f) for a in (0, 5, 10, 20)]
  for key in ('infom', 'infoc'):
    assert data.strictly_decreasing([o[key] for o in by_angle]), (key, by_angle)
  by_noise = [infomec.infomec(data.identity_code(f, SIZES, noise=s), f)['infoe']
              for s in (0.01, 0.1, 0.3, 1.0)]
  assert data.strictly_decreasing(by_noise), by_noise


def test_degenerate_inputs():
  f = data.factors(500, SIZES)
  z = data.identity_code(f, SIZES, noise=0.1)
  z[:, 3] = 0.0
  f[:, 1] = 2
  out = infomec.infomec(z, f)
  assert all(np.isfinite(out[k]) for k in ('infom', 'infoc', 'infoe'))
  assert not out['active_latents'][3] and np.all(out['nmi'][1] == 0)
  with pytest.raises(ValueError):
    infomec.infomec(z, np.zeros_like(f))


def _knn_mutual_info_brute(z, f, k=10):
  """The estimator's definition, point by point (sklearn uses brute-force distances for small
  classes, which round differently, so small classes are checked against this instead)."""
  import scipy.special
  counts = np.bincount(f)[f]
  keep = counts > 1
  ks, ms = [], []
  for p in np.nonzero(keep)[0]:
    same = np.nonzero((f == f[p]) & (np.arange(len(f)) != p))[0]
    kp = min(k, len(same))
    radius = np.nextafter(np.sort(np.abs(z[same] - z[p]))[kp - 1], 0)
    ms.append(np.sum(((z[keep] - z[p]) ** 2) <= radius * radius))
    ks.append(kp)
  psi = scipy.special.digamma
  mi = psi(keep.sum()) + psi(ks).mean() - psi(counts[keep]).mean() - psi(ms).mean()
  return max(mi, 0.0)


def test_knn_mutual_info_small_classes():
  # Classes of 1 (dropped), 2-10 (k < 10: the whole class is the neighbourhood) and over 10 points.
  rng = np.random.default_rng(7)
  f = np.repeat(np.arange(7), [1, 2, 5, 9, 10, 11, 30])[:, None]
  z = f + rng.normal(0, 2.0, (len(f), 2))
  z[:, 1] = np.round(z[:, 1])  # ties
  zj = infomec.sklearn_jitter(z, 0)
  ours = infomec.knn_mutual_info(zj, f)
  for j in range(2):
    assert abs(ours[0, j] - _knn_mutual_info_brute(zj[:, j], f[:, 0])) < 1e-12, j
  assert ours[0, 0] > 0.1
