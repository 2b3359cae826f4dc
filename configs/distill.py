"""Policy distillation (section 4.2, SM section 3). ``--config=configs/distill.py:<method>``.

Student as SM section 3, Adam, batch 200 frames drawn at random from the training
states. The learning rate is chosen per game and method from [1e-5, 1e-3] on the
validation split (SM section 3); the default below is a starting point, not the
selected value. ``alpha`` weighs the Sobolev term.
"""

import ml_collections


def get_config(variant: str = "sobolev") -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  if variant not in ("regular", "sobolev", "quick"):
    raise ValueError(f"Unknown distillation config variant {variant!r}: regular, sobolev, quick.")
  config.method = "sobolev" if variant == "quick" else variant
  config.data_path = "data/distillation/pong.npz"
  config.teacher_workdir = "/work/runs/teachers/pong"
  config.train_fraction = 0.1        # Figure 4 columns: fractions of the 100K states.
  config.validation_fraction = 0.1
  config.learning_rate = 1e-4        # Paper: chosen per game and method in [1e-5, 1e-3].
  config.alpha = 1.0
  config.batch_size = 200            # Paper: 200 frames.
  config.num_steps = 20_000
  config.eval_every = 500
  config.max_eval_states = 20_000
  config.checkpoint_minutes = 5.0
  config.seed = 0
  if variant == "quick":
    config.batch_size = 8
    config.num_steps = 4
    config.eval_every = 2
    config.max_eval_states = 50
    config.train_fraction = 0.5
  return config
