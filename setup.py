"""sobolev-tf: Sobolev Training for Neural Networks in TensorFlow 2 / Sonnet / Keras."""

from setuptools import find_packages
from setuptools import setup

setup(
    name="sobolev-tf",
    version="0.2.0",
    description=("Sobolev Training for Neural Networks (Czarnecki et al., NeurIPS 2017): "
                 "derivative-matching losses and the paper's experiments in TF2."),
    long_description=open("README.md").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["sobolev_tf", "sobolev_tf.*"]),
    python_requires=">=3.10",
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3",
        "dm-sonnet>=2.0.2",
        "tensorflow-datasets",
        "tensorboard",
        "absl-py",
        "ml-collections",
        "numpy",
        "matplotlib",
        "scipy>=1.11",  # Welch's t-test of the Table 1 report.
        "scikit-learn>=1.4",  # SobolevRegressor is a scikit-learn estimator.
        "tqdm",
    ],
    extras_require={
        "cuda": ["tensorflow[and-cuda]>=2.16"],
        "atari": ["gymnasium[atari]", "ale-py"],
        # The peers of scripts/benchmark_peers.py: JENN (its R^2 and fit times beside ours).
        "peers": ["jenn"],
        # The notebook runs in the tests (nbclient with an IPython kernel).
        "test": ["pytest", "pytest-xdist", "nbclient", "nbformat", "ipykernel"],
    },
    license="Apache-2.0",
)
