"""Experiments that train several models and compare them: `geometry` (the disk and ellipse
experiments of the PCA-like autoencoder and Newson et al.)."""
