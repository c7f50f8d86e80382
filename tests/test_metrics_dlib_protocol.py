"""protocol='dlib' against disentanglement_lib 1.5 itself, on several synthetic codes."""

import numpy as np
import pytest

import _metrics_data as data
from disentangle_jax.metrics import dci, downstream, modularity, sap, unified

SIZES = (3, 4, 5)
# Informative, noisy and entangled codes: where the fast fits and dlib's differ most.
CASES = {
  'noisy': dict(noise=0.1),
  'entangled': dict(noise=0.05, rotate=30),
  'extra_dims': dict(noise=0.2, extra_dims=2),
}


def _codes(case, n_train=400, n_test=200):
  spec = dict(CASES[case])
  angle = spec.pop('rotate', None)
  xtr, ftr, xte, fte = data.train_test(n_train, n_test, SIZES, **spec)
  if angle is not None:
    pairs = ((0, 1),)
    xtr, xte = data.rotate_pairs(xtr, angle, pairs), data.rotate_pairs(xte, angle, pairs)
  return xtr, ftr, xte, fte


@pytest.mark.slow
@pytest.mark.parametrize('case', sorted(CASES))
def test_dci_dlib_protocol_reproduces_dlib(case):
  ref = data.dlib('dci')
  xtr, ftr, xte, fte = _codes(case)
  ours = dci.dci(xtr, ftr, xte, fte, protocol='dlib')
  theirs = ref._compute_dci(xtr.T, ftr.T, xte.T, fte.T)
  # dlib leaves GradientBoostingClassifier's random_state unset: ties between equally good splits
  # go by a random feature order, so two dlib runs differ too (by about 2e-3 here).
  for key in ('disentanglement', 'completeness', 'informativeness_train', 'informativeness_test'):
    assert ours[key] == pytest.approx(theirs[key], abs=0.02), key


@pytest.mark.parametrize('case', sorted(CASES))
def test_sap_dlib_protocol_reproduces_dlib(case):
  ref = data.dlib('sap')
  xtr, ftr, xte, fte = _codes(case)
  ours = sap.sap(xtr, ftr, xte, fte, protocol='dlib')
  theirs = ref._compute_sap(xtr.T, ftr.T, xte.T, fte.T, continuous_factors=False)
  assert ours['SAP_score'] == pytest.approx(theirs['SAP_score'], abs=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize('predictor', ['logistic', 'boosted'])
def test_downstream_dlib_protocol_reproduces_dlib(predictor):
  from sklearn import ensemble, linear_model, model_selection

  ref = data.dlib('downstream')
  xtr, ftr, xte, fte = _codes('entangled', 300, 200)
  ours = downstream.downstream_task(xtr, ftr, xte, fte, predictor=predictor, train_sizes=(300,),
                                    protocol='dlib')

  def make():
    if predictor == 'logistic':
      return linear_model.LogisticRegressionCV(Cs=10, cv=model_selection.KFold(n_splits=5))
    return ensemble.GradientBoostingClassifier()

  train, test = ref._compute_loss(xtr, ftr.T, xte, fte.T, make)
  # L-BFGS is deterministic; the trees are up to dlib's unseeded tie-breaking.
  atol = 1e-6 if predictor == 'logistic' else 0.02
  np.testing.assert_allclose(ours['accuracy_train'][0], train, atol=atol)
  np.testing.assert_allclose(ours['accuracy_test'][0], test, atol=atol)


@pytest.mark.parametrize('case', sorted(CASES))
def test_explicitness_dlib_protocol_reproduces_dlib(case):
  ref = data.dlib('modularity')
  utils = data.dlib('utils')
  xtr, ftr, xte, fte = _codes(case)
  ours = modularity.modularity_explicitness(xtr, ftr, xte, fte, protocol='dlib')
  mtr, mean, std = utils.normalize_data(xtr.T)
  mte, _, _ = utils.normalize_data(xte.T, mean, std)
  for k in range(ftr.shape[1]):
    tr, te = ref.explicitness_per_factor(mtr, ftr[:, k], mte, fte[:, k])
    # LogisticRegression's L-BFGS is deterministic: the same fit, the same ROC-AUC.
    assert ours['explicitness_per_factor_train'][k] == pytest.approx(tr, abs=1e-6)
    assert ours['explicitness_per_factor_test'][k] == pytest.approx(te, abs=1e-6)


@pytest.mark.slow
def test_unified_dlib_protocol_reproduces_dlib():
  m = data.dlib('unified')  # with dlib's 20-bin discretizer bound
  xtr, ftr, xte, fte = _codes('entangled')
  ours = unified.unified_scores(xtr, ftr, xte, fte, protocol='dlib')
  theirs = m.unified_scores(xtr.T, ftr.T, xte.T, fte.T,
                            [m.importance_gbt_matrix, m.mutual_information_matrix,
                             m.accuracy_svm_matrix])
  # The SVM and MI matrices are deterministic; the trees are up to dlib's unseeded tie-breaking.
  for key, atol in (('accuracy_svm_matrix.sap', 1e-6), ('accuracy_svm_matrix.modularity', 1e-6),
                    ('mutual_information_matrix.mig', 1e-6),
                    ('importance_gbt_matrix.dci_disentanglement', 0.02),
                    ('importance_gbt_matrix.dci_completeness', 0.02),
                    ('importance_gbt_matrix.max_precision', 0.1)):
    assert ours[key] == pytest.approx(theirs[key], abs=atol), key


def test_protocol_is_checked():
  xtr, ftr, xte, fte = _codes('noisy', 50, 20)
  with pytest.raises(ValueError, match='protocol must be one of'):
    sap.sap(xtr, ftr, xte, fte, protocol='sklearn')
  with pytest.raises(ValueError, match="importance='gbt' only"):
    dci.dci(xtr, ftr, xte, fte, importance='lasso', protocol='dlib')
  with pytest.raises(ValueError, match='protocol must be one of'):
    modularity.explicitness(xtr, ftr, xte, fte, protocol='sklearn')
  with pytest.raises(ValueError, match='protocol must be one of'):
    unified.unified_scores(xtr, ftr, xte, fte, protocol='sklearn')
