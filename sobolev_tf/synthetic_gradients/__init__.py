"""Section 4.3 and SM section 4: synthetic gradients from Sobolev-trained loss critics.

* ``methods``: backprop, noprop, direct SG, VFBN, critic and Sobolev as one parameterised
  step (``SyntheticGradientStep``), the SG modules and their eq. 1 objective;
* ``trainer``: ``train_and_evaluate(config, workdir)`` on ``tf.distribute``, resumable;
* ``cifar``, ``imagenet``, ``data``: the SM 4.2 / 4.3 networks split into parts and their
  input pipelines;
* ``distribute``, ``optimizers``: the data-parallel strategies and the strategy-agnostic
  optimisers the trainer uses.
"""

from sobolev_tf.synthetic_gradients.methods import DirectSG
from sobolev_tf.synthetic_gradients.methods import label_gradient
from sobolev_tf.synthetic_gradients.methods import LOSS_PREDICTOR_METHODS
from sobolev_tf.synthetic_gradients.methods import LossPredictor
from sobolev_tf.synthetic_gradients.methods import METHODS
from sobolev_tf.synthetic_gradients.methods import module_loss
from sobolev_tf.synthetic_gradients.methods import synthetic_gradient
from sobolev_tf.synthetic_gradients.methods import SyntheticGradientStep

__all__ = ["DirectSG", "label_gradient", "LOSS_PREDICTOR_METHODS", "LossPredictor", "METHODS",
           "module_loss", "synthetic_gradient", "SyntheticGradientStep"]
