"""The covariance loss of the PCA-like autoencoder (Ladjal, Newson, Pham 2019; Pham et al. 2022).

"A PCA-like Autoencoder", Ladjal, Newson and Pham (arXiv, 2019), and "PCA-AE: Principal
Component Analysis Autoencoder for Organising the Latent Space of Generative Networks", Pham,
Ladjal and Newson (Journal of Mathematical Imaging and Vision, 2022). The latent grows one
component per stage; at stage k the new component z_k is trained to be decorrelated from the
frozen earlier ones z_1 … z_{k−1}. A BatchNorm without learned shift just before the latent makes
every component zero-mean over the batch, so the covariance reduces to the mean product:

    L_cov^(k) = (1/c) · Σ_{i=1}^{k−1} ( (1/m) Σ_{j=1}^{m} z_i^{(j)} z_k^{(j)} )²,

m being the batch size. The normalisation c differs between the published sources:
  * c = k − 1 (`normalization='k_minus_1'`, the default): the authors' released notebook, the mean
    of the k − 1 squared covariances;
  * c = k (`normalization='k'`): the formula as printed in the talk slides of Newson ("Processing
    simple geometric attributes with autoencoders", the PCA-like AE part).

Both are 0 at k = 1 (nothing to decorrelate from).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

Array = jax.Array

NORMALIZATIONS = ('k_minus_1', 'k')


def pcaae_covariance_loss(
    codes: ArrayLike,
    *,
    num_new: int = 1,
    normalization: str = 'k_minus_1',
    center: bool = False,
) -> Array:
  """The PCA-AE covariance penalty between the newest latent component(s) and the earlier ones.

  With `num_new = 1` this is exactly the published `L_cov^(k)` (see the module docstring), with
  k = `codes.shape[1]`. With a packet of `num_new = p > 1` new components (the last p columns),
  every pair (i, j) with j a new column and i < j is penalised, so the new components are also
  decorrelated from each other; the sum of the squared covariances is divided by the number of
  such pairs ('k_minus_1') or by that number plus p ('k', the pairs plus the diagonal entries of
  the new rows), which reduce to k − 1 and k when p = 1.

  Known answers: 0 for mutually uncorrelated zero-mean components; when the new component copies
  an earlier one of unit variance and is uncorrelated with the others, 1/(k − 1) ('k_minus_1') or
  1/k ('k').

  Args:
    codes: [m, k] latent codes of one batch, the earlier components first and the new one(s) last;
      after the zero-mean BatchNorm of the method. bfloat16/float16 is accumulated in float32.
    num_new: p, how many trailing columns are new at this stage (1 ≤ p ≤ k).
    normalization: 'k_minus_1' (released notebook, default) or 'k' (slides).
    center: subtract the batch mean of each component first (a true covariance). Off by default,
      as published: the BatchNorm already centres the codes, and the notebook multiplies raw codes.

  Returns:
    A scalar, at least float32 (0 when no pair exists, e.g. at k = 1).
  """
  z = jnp.asarray(codes)
  z = z.astype(jnp.promote_types(z.dtype, jnp.float32))
  if z.ndim != 2:
    raise ValueError(f'codes must be [batch, components], got shape {z.shape}')
  k = z.shape[1]
  if not 1 <= num_new <= k:
    raise ValueError(f'num_new must be between 1 and the number of components {k}, got {num_new}')
  if normalization not in NORMALIZATIONS:
    raise ValueError(f'normalization must be one of {NORMALIZATIONS}, got {normalization!r}')
  if center:
    z = z - jnp.mean(z, axis=0, keepdims=True)
  new = z[:, k - num_new :]
  # [k, p]: the mean product of every component with every new one.
  cross = jnp.matmul(z.T, new, precision=jax.lax.Precision.HIGHEST) / z.shape[0]
  # Pair (i, j) counts when i < j, with j = k − p + column index of `new`.
  rows = np.arange(k)[:, None]
  cols = np.arange(k - num_new, k)[None, :]
  pairs = rows < cols
  num_pairs = int(pairs.sum())
  if num_pairs == 0:
    return jnp.zeros((), z.dtype)
  total = jnp.sum(jnp.where(pairs, jnp.square(cross), 0.0))
  denominator = num_pairs if normalization == 'k_minus_1' else num_pairs + num_new
  return total / denominator
