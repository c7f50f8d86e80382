r"""python launch/main.py --config=configs/cvae_celeba.py --workdir=workdirs/cvae_celeba
python launch/main.py --config=configs/cvae_celeba.py:runlocal --workdir=workdirs/cvae_celeba_local

The conditional VAE (Sohn, Lee, Yan, NeurIPS 2015) on 64×64 CelebA with 64 latents: the 40 binary
attributes y enter the encoder q(z | x, y) and the decoder p(x | z, y); prior N(0, I).

Prepare the data once (no TensorFlow): python launch/prepare_celeba.py --source_dir=<directory
holding img_align_celeba.zip, list_attr_celeba.txt and list_eval_partition.txt>.
Networks: disentanglement_lib's conv encoder 'conv_k2' and deconv decoder 'conv' (the attributes
appended to the encoder's flattened features and to the code); Bernoulli likelihood on [0, 1]
pixels; Adam(1e-4); batch 64; 100k steps (about 40 epochs).
Pictures: reconstructions, prior samples and traversals of the ten most active latents (rows
ranked by their KL), each decoded with the example's own attributes, and
`condition_manipulation`: the same z decoded with one attribute flipped at a time (40 columns).
Evaluation against the 40 attributes (see configs/_celeba.py). The code is given the attributes,
so a good CVAE leaves them out of z: a low linear-probe accuracy is what conditioning is for.
Variants: --config.data.name=celeb_a (TFDS's copy); --config.model.encoder=dcgan
--config.model.decoder=dcgan (wider networks); --config.objective.latent_dim=32.
`runlocal` shortens the run (1,000 steps, small evaluation samples) for a CPU check on real data.
"""

from configs import _celeba


def get_config(arg=None):
  c = _celeba.base_config(arg, 'cvae')
  c.objective.condition_on = 'labels'
  c.objective.picture_rows = 6
  return c
