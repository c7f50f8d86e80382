"""Batched logistic regression in JAX: many sklearn-style `LogisticRegression` fits at once.

sklearn's `LogisticRegression(C, class_weight, solver='lbfgs')` minimises, per problem,
`C * sum_i s_i * CE(x_i W + b, y_i) + 0.5 * |W|^2` (intercept not penalised; `penalty=None` drops
the second term), multinomial for three classes or more and binomial (one weight vector) for two.
Here a batch of P such problems (different rows, labels, sample weights, or class counts padded to
a common width) is solved with one L-BFGS vectorised over problems (`fit_path`), each problem
running through its own sequence of Cs warm-started from the previous solution, as sklearn's
`LogisticRegressionCV` does; `fit_per_factor` is the single-C case on shared inputs. Penalised
problems are strictly convex, so the fit equals sklearn's up to both solvers' tolerances.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from disentangle_jax.metrics._common import pad_to


@jax.jit
def predict_proba(x, w, b, valid):
  """[N, D] inputs, [P, D, C] weights -> [P, N, C] class probabilities (0 on padding classes)."""
  logits = jnp.einsum('nd,pdc->pnc', x, w) + b[:, None, :]
  logits = jnp.where(valid[:, None, :], logits, -jnp.inf)
  return jax.nn.softmax(logits, axis=-1)


def balanced_weights(y: np.ndarray, num_classes: int) -> np.ndarray:
  """sklearn's class_weight='balanced' per sample: n / (n_classes_present * count(y_i))."""
  counts = np.bincount(y, minlength=num_classes).astype(np.float64)
  present = np.count_nonzero(counts)
  per_class = np.where(counts > 0, len(y) / (present * np.maximum(counts, 1)), 0.0)
  return per_class[y]


def class_masks(sizes, width: int):
  """Per problem: valid classes [G, width], classes with parameters (class 1 only for a binomial
  problem, as sklearn fits one weight vector for two classes), and the additive logit mask."""
  cls = np.arange(width)
  sizes = np.asarray(sizes)[:, None]
  valid = cls[None, :] < sizes
  free = np.where(sizes == 2, cls[None, :] == 1, valid)
  return valid, free, np.where(valid, 0.0, -1e30).astype(np.float32)


def design(x: np.ndarray, mu: np.ndarray) -> np.ndarray:
  """[N, D] inputs -> [N, D + 1] float32: centred by `mu`, then a column of ones (the intercept).

  Centring is an exact reparametrisation (the unpenalised intercept absorbs the shift), and it
  conditions L-BFGS better: fewer iterations for the same minimisers.
  """
  return np.concatenate([x - mu, np.ones((len(x), 1))], 1).astype(np.float32)


def fit_per_factor(
  x: np.ndarray,
  labels: np.ndarray,
  sizes,
  *,
  l2: float,
  class_weight: str | None = None,
  max_iter: int = 200,
  tol: float = 1e-4,
):
  """One logistic regression per factor column on shared inputs, as sklearn would fit each.

  Args:
    x: [N, D] inputs.
    labels: [N, K] label-encoded factors (column k in 0..sizes[k]-1, every class present).
    sizes: class count per factor.
    l2: 1/C (0 for `penalty=None`).
    class_weight: None or 'balanced'.
    max_iter: L-BFGS cap on function evaluations.
    tol: stop when the largest gradient entry of the weight-normalised objective is below it
      (sklearn's default tol).

  Returns:
    (W [K, D, C], b [K, C], valid [K, C]) with C = max(sizes) (padding classes invalid).
  """
  x = np.asarray(x, np.float64)
  (n, d), k = x.shape, labels.shape[1]
  width = max(2, max(sizes))
  valid, free, _ = class_masks(sizes, width)
  if class_weight == 'balanced':
    weights = np.stack([balanced_weights(labels[:, j], sizes[j]) for j in range(k)])
  else:
    weights = np.ones((k, n))
  mu = x.mean(0)
  xa = design(x, mu)  # b undoes the centring below
  theta, _ = fit_path_padded(
    np.broadcast_to(xa[None], (k, n, d + 1)), labels.T.astype(np.int32),
    weights.astype(np.float32), valid, free, np.full((k, 1), l2, np.float32),
    np.zeros((k, d + 1, width), np.float32), max_iter=max_iter, tol=tol)
  w, b = theta[:, 0, :d], theta[:, 0, d]
  shift = jnp.einsum('d,kdc->kc', jax.device_put(mu.astype(np.float32)), w)
  return w, b - shift, jax.device_put(valid)


def _label_term(x, y, wn, num_classes):
  """[P, D1, C] = sum_m wn * x_m (outer) onehot(y_m): the data loss's part linear in theta."""
  onehot = (y[..., None] == jnp.arange(num_classes)).astype(x.dtype)
  return jnp.einsum('pmd,pmc->pdc', x * wn[..., None], onehot)


def _data_loss_grad(theta, x, wn, label_term, logit_mask):
  """Weighted cross-entropy and its gradient; theta [P, D1, C], x [P, M, D1], wn [P, M].

  The cross-entropy is logsumexp(x theta) - x theta[:, y]; the second part is linear in theta,
  `<theta, label_term>`, so no per-(row, class) one-hot pass is needed, and the gradient's
  softmax weights fold into x's D1 columns instead of e's C. These [P, M, C] passes are the
  cost of an L-BFGS iteration.
  """
  # x's last column is ones: adding the mask to the intercept row adds it to every logit.
  z = jnp.einsum('pmd,pdc->pmc', x, theta.at[:, -1, :].add(logit_mask))
  zmax = jnp.max(z, axis=-1)
  e = jnp.exp(z - zmax[..., None])
  s = jnp.sum(e, axis=-1)
  f = jnp.sum(wn * (zmax + jnp.log(s)), axis=1) - jnp.sum(theta * label_term, axis=(1, 2))
  return f, jnp.einsum('pmd,pmc->pdc', x * (wn / s)[..., None], e) - label_term


@functools.partial(jax.jit, static_argnames=('memory',))
def fit_path(x, y, weights, valid, free, l2, theta0, *, max_iter=100, tol=1e-4, memory=10):
  """sklearn's warm-started `_logistic_regression_path` (lbfgs) for P problems at once.

  Each problem runs through its own penalties in order, every fit starting from the previous
  one's solution with a fresh L-BFGS memory and stopping, as scipy's L-BFGS-B does for sklearn,
  when the largest gradient entry of the weight-normalised objective is at most `tol` or after
  `max_iter` function evaluations (or when the line search stalls). Problems move on
  independently, so one slow fit holds up only the batch's end, not every penalty's.

  One departure from sklearn: a fit's first step (from the previous penalty's solution) is along
  the secant of the path, the previous solution minus the one before it (the path's linear
  extrapolation in log C when the Cs are log-spaced), when that is a descent direction; else
  steepest descent. It does not change a converged solution (the problems are strictly convex), but
  the path's weakly penalised fits then need a half to a tenth of the evaluations, and some of
  those that sklearn stops at its iteration cap converge.

  Args:
    x: [P, M, D + 1] inputs with a final column of ones (the intercept).
    y: [P, M] integer labels.
    weights: [P, M] sample weights (0 on padding rows).
    valid: [P, C] bool, the classes a problem has (the others get no probability).
    free: [P, C] bool, the classes with parameters (binomial problems: class 1 only).
    l2: [P, S] penalties 1/C, fitted in this order.
    theta0: [P, D + 1, C] starting point (last row: intercepts).

  Returns:
    (theta [P, S, D + 1, C] per penalty, evaluations [P, S]).
  """
  p, d1, c = theta0.shape
  steps = l2.shape[1]
  wsum = jnp.maximum(jnp.sum(weights, axis=1, keepdims=True), 1e-30)
  wn, l2n = weights / wsum, l2 / wsum
  logit_mask = jnp.where(valid, 0.0, -1e30).astype(x.dtype)
  freem = jnp.broadcast_to(free[:, None, :], theta0.shape).astype(x.dtype)
  pen = freem * (jnp.arange(d1) < d1 - 1)[None, :, None]
  rows = jnp.arange(p)
  label_term = _label_term(x, y, wn, c)

  def total(fd, gd, theta, lam):
    f = fd + 0.5 * lam * jnp.sum(pen * theta**2, axis=(1, 2))
    return f, (gd + lam[:, None, None] * pen * theta) * freem

  def vdot(a, b):
    return jnp.sum(a * b, axis=(1, 2))

  def first_step(g):
    return jnp.minimum(1.0, 1.0 / jnp.maximum(jnp.sqrt(vdot(g, g)), 1e-12))

  def direction(g, s_hist, y_hist, rho, gamma):
    """L-BFGS two-loop recursion; histories [memory, P, ...], newest last."""
    def newest_first(q, h):
      s, y, r = h
      a = r * vdot(s, q)
      return q - a[:, None, None] * y, a

    def oldest_first(r, h):
      s, y, rh, a = h
      return r + s * (a - rh * vdot(y, r))[:, None, None], None

    q, alphas = jax.lax.scan(newest_first, g, (s_hist, y_hist, rho), reverse=True)
    r, _ = jax.lax.scan(oldest_first, gamma[:, None, None] * q, (s_hist, y_hist, rho, alphas))
    return -r

  theta0 = theta0 * freem
  fd0, gd0 = _data_loss_grad(theta0, x, wn, label_term, logit_mask)
  _, g0 = total(fd0, gd0, theta0, l2n[:, 0])
  zeros_hist = jnp.zeros((memory, p, d1, c), x.dtype)
  state = dict(
    theta=theta0, fd=fd0, gd=gd0, d=-g0, step=first_step(g0),
    s=zeros_hist, y=zeros_hist, rho=jnp.zeros((memory, p), x.dtype),
    gamma=jnp.ones((p,), x.dtype),
    k=jnp.zeros((p,), jnp.int32), it=jnp.zeros((p,), jnp.int32),
    rejects=jnp.zeros((p,), jnp.int32), evals=jnp.zeros((p, steps), jnp.int32),
    out=jnp.zeros((p, steps, d1, c), x.dtype), count=jnp.zeros((), jnp.int32),
  )

  def body(st):
    active = st['k'] < steps
    lam = l2n[rows, jnp.minimum(st['k'], steps - 1)]
    f, g = total(st['fd'], st['gd'], st['theta'], lam)
    at_opt = jnp.max(jnp.abs(g), axis=(1, 2)) <= tol
    trial = st['theta'] + st['step'][:, None, None] * st['d']
    fd_t, gd_t = _data_loss_grad(trial, x, wn, label_term, logit_mask)
    f_t, g_t = total(fd_t, gd_t, trial, lam)
    slope = vdot(g, st['d'])
    # Armijo's condition, or a non-positive slope at the trial point: the objective is convex, so
    # that step decreased it too, and this test still works where float32 rounding hides the
    # decrease in the objective's value (near a minimum, to the gradient tolerance).
    armijo = f_t <= f + 1e-4 * st['step'] * slope
    accept = active & ~at_opt & (armijo | (vdot(g_t, st['d']) <= 0)) & jnp.isfinite(f_t)
    s_new = jnp.where(accept[:, None, None], trial - st['theta'], 0.0)
    y_new = jnp.where(accept[:, None, None], g_t - g, 0.0)
    sy = vdot(s_new, y_new)
    good = accept & (sy > 1e-10)
    # Rejected or curvature-less steps enter the history with rho = 0, which makes them no-ops.
    push = lambda h, v: jnp.concatenate([h[1:], v[None]])  # noqa: E731
    s_hist = push(st['s'], jnp.where(good[:, None, None], s_new, 0.0))
    y_hist = push(st['y'], jnp.where(good[:, None, None], y_new, 0.0))
    rho = push(st['rho'], jnp.where(good, 1.0 / jnp.where(good, sy, 1.0), 0.0))
    gamma = jnp.where(good, sy / jnp.where(good, vdot(y_new, y_new), 1.0), st['gamma'])
    a3 = accept[:, None, None]
    theta = jnp.where(a3, trial, st['theta'])
    fd = jnp.where(accept, fd_t, st['fd'])
    gd = jnp.where(a3, gd_t, st['gd'])
    g = jnp.where(a3, g_t, g)
    d_new = direction(g, s_hist, y_hist, rho, gamma)
    # A non-descent direction (lost curvature information) falls back to steepest descent.
    d_new = jnp.where((vdot(d_new, g) < 0)[:, None, None], d_new, -g)
    # On a rejected step, the minimiser of the quadratic through f, slope and f_t (within
    # [0.1, 0.5] of the step).
    denom = f_t - f - slope * st['step']
    shrink = jnp.where(jnp.isfinite(f_t) & (denom > 0),
                       -slope * st['step'] / (2.0 * jnp.where(denom > 0, denom, 1.0)), 0.5)
    step = jnp.where(accept, 1.0, st['step'] * jnp.clip(shrink, 0.1, 0.5))
    d = jnp.where(a3, d_new, st['d'])
    rejects = jnp.where(accept, 0, st['rejects'] + 1)
    it = st['it'] + active.astype(jnp.int32)
    conv = jnp.max(jnp.abs(g), axis=(1, 2)) <= tol
    finished = active & (conv | (it >= max_iter) | (rejects >= 8))
    k_cur = jnp.minimum(st['k'], steps - 1)
    f3 = finished[:, None, None]
    out = st['out'].at[rows, k_cur].set(jnp.where(f3, theta, st['out'][rows, k_cur]))
    evals = st['evals'].at[rows, k_cur].set(jnp.where(finished, it, st['evals'][rows, k_cur]))
    # The next penalty starts afresh (new memory, steepest descent) from this solution.
    k = st['k'] + finished.astype(jnp.int32)
    _, g_next = total(fd, gd, theta, l2n[rows, jnp.minimum(k, steps - 1)])
    secant = theta - out[rows, jnp.maximum(k_cur - 1, 0)]
    use_secant = (k_cur >= 1) & (vdot(secant, g_next) < 0)
    d = jnp.where(f3, jnp.where(use_secant[:, None, None], secant, -g_next), d)
    step = jnp.where(finished, jnp.where(use_secant, 1.0, first_step(g_next)), step)
    rho = rho * (~finished)[None, :]
    gamma = jnp.where(finished, 1.0, gamma)
    return dict(theta=theta, fd=fd, gd=gd, d=d, step=step, s=s_hist, y=y_hist, rho=rho,
                gamma=gamma, k=k, it=jnp.where(finished, 0, it),
                rejects=jnp.where(finished, 0, rejects), evals=evals, out=out,
                count=st['count'] + 1)

  def cond(st):
    return (st['count'] < steps * (max_iter + 1)) & jnp.any(st['k'] < steps)

  state = jax.lax.while_loop(cond, body, state)
  return state['out'], state['evals']


def bucket(value: int, minimum: int = 1) -> int:
  """A padded size: the next power of two at or above `value`, at least `minimum`."""
  return max(minimum, 1 << max(0, (int(value) - 1).bit_length()))


def row_bucket(rows: int, minimum: int = 128) -> int:
  """Padded row count: a power of two up to 1,024 (at least `minimum`), then a multiple of it."""
  if rows <= 1024:
    return bucket(rows, minimum)
  return -(-rows // 1024) * 1024


def class_bucket(classes: int, minimum: int = 8) -> int:
  """Padded class count: a multiple of 8, at least `minimum`."""
  return max(minimum, -(-classes // 8) * 8)


def in_blocks(fn, args, block: int) -> np.ndarray:
  """`fn` on `block` leading entries of every (numpy) array in `args` at a time, concatenated.

  fn returns an array or a tuple of arrays; so does this (numpy). One compilation serves every
  block, whatever the number of problems.
  """
  outs = [fn(*(a[lo:lo + block] for a in args))
          for lo in range(0, len(args[0]), block)]
  if isinstance(outs[0], tuple):
    return tuple(np.concatenate([np.asarray(o[i]) for o in outs]) for i in range(len(outs[0])))
  return np.concatenate([np.asarray(o) for o in outs])


def fit_path_padded(x, y, weights, valid, free, l2, theta0, *, max_iter=100, tol=1e-4,
                    min_rows=128, min_problems=8, min_classes=8, min_steps=10, pad_problems=True):
  """`fit_path` on inputs padded to a few shapes, so that fits of similar sizes share a compile.

  Problems are fitted in blocks of `min_problems` (8; the last block padded; one block of all P
  when `pad_problems` is False), rows padded to `row_bucket`, classes to a multiple of 8 (at
  least `min_classes`) and the penalty path to `min_steps` penalties (the last one repeated: a
  repeated penalty starts at its own solution and stops after one evaluation). Padding rows have
  zero weight, padding classes are invalid (no probability, no parameters) and padding problems
  have no free parameters and zero weights, so the fits are those of `fit_path` on the unpadded
  inputs (up to the rounding of sums over more zeros). A path of 10 Cs and a single refit, or the
  cross-validation's folds and the refit on all rows (`downstream`), then share one compilation.

  Returns:
    (theta [P, S, D + 1, C], evaluations [P, S]) for the unpadded P, S and C.
  """
  x, y, weights = np.asarray(x), np.asarray(y), np.asarray(weights)
  valid, free, l2, theta0 = np.asarray(valid), np.asarray(free), np.asarray(l2), np.asarray(theta0)
  p, m, d1 = x.shape
  c = theta0.shape[2]
  s = l2.shape[1]
  block = min_problems if pad_problems else p
  pp = -(-p // block) * block
  mm = row_bucket(m, min_rows)
  cc = class_bucket(c, min_classes)
  ss = max(s, min_steps)
  if ss > s:
    l2 = np.concatenate([l2, np.repeat(l2[:, -1:], ss - s, axis=1)], axis=1)

  valid_p = pad_to(valid, (pp, cc), False)
  valid_p[p:, :2] = True  # padding problems: two (weightless) classes, no parameters
  args = (pad_to(x, (pp, mm, d1)), pad_to(y, (pp, mm)), pad_to(weights, (pp, mm)), valid_p,
          pad_to(free, (pp, cc), False), pad_to(l2, (pp, ss), 1.0), pad_to(theta0, (pp, d1, cc)))
  theta, evals = in_blocks(functools.partial(fit_path, max_iter=max_iter, tol=tol), args, block)
  # device_put, not jnp.asarray: the latter compiles a copy program for every shape.
  return jax.device_put(theta[:p, :s, :, :c]), jax.device_put(evals[:p, :s])
