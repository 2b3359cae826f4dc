"""Atari policy distillation (section 4.2, SM section 3): games, teachers, datasets."""

from sobolev_tf.atari.games import GAMES
from sobolev_tf.atari.games import GameSpec
from sobolev_tf.atari.games import get_game
from sobolev_tf.atari.games import VectorEnv

__all__ = ["GAMES", "GameSpec", "get_game", "VectorEnv"]
