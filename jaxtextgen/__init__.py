"""jaxtextgen: generative text models in JAX/Flax.

Subpackages: `data` (vocabulary, corpora, grain pipeline, synthetic oracle),
`models` (Flax modules), `objectives` (pure losses), `steps` (one module per
algorithm: init / train_step / eval_step / sample), `metrics`, `train` (the
generic loop), `bench` (the PyTorch comparison).
"""

__version__ = '0.1.0'
