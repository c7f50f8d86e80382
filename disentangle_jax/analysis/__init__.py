"""Analyses of trained models: which units detect which concepts.

* `activations`: per-layer activation maps of any objective's representation (the network's own
  when it returns them, otherwise every Flax submodule's output captured while it encodes);
* `units`: the Mixture-of-digits unit experiment of a trained classifier (precision@k, precision
  at recall, best-aligned digit, ablation effect, top-activating images);
* `dissection`: Network Dissection (Bau, Zhou, Khosla, Oliva, Torralba, CVPR 2017) of any trained
  model, against concept masks drawn by the dataset's renderer from the factors;
* `pictures`: the grids these analyses and the classifier draw.
"""
