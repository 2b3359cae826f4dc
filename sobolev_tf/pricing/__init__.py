"""Pricing surrogates: differential machine learning (Huge & Savine, 2020) with ``SobolevRegressor``."""

from sobolev_tf.pricing.generators import BachelierBasket
from sobolev_tf.pricing.generators import BlackScholes

__all__ = ["BachelierBasket", "BlackScholes"]
