"""Fixtures of the algorithm tests."""

import jax
import pytest
from jax.experimental.compilation_cache import compilation_cache


@pytest.fixture(scope='module')
def quick_compile(tmp_path_factory):
  """Compile time dominates tests of tiny models, so a module may ask for
  (1) few XLA optimisations: programs compile 2-4x faster and run slower, which
  tiny models do not notice; (2) a persistent compilation cache: each trainer
  mode builds a new Run and re-jits the same programs, now compiled once.
  Both settings are restored after the module (the cache key includes the
  optimisation flags, so no other test gets an unoptimised program)."""
  settings = {'jax_disable_most_optimizations': True,
              'jax_compilation_cache_dir': str(tmp_path_factory.mktemp('jax_cache')),
              'jax_persistent_cache_min_compile_time_secs': 0.0,
              'jax_persistent_cache_min_entry_size_bytes': 0}
  old = {k: jax.config.values[k] for k in settings}
  for k, v in settings.items():
    jax.config.update(k, v)
  compilation_cache.reset_cache()  # JAX decides once whether to use a cache; decide again
  yield
  for k, v in old.items():
    jax.config.update(k, v)
  compilation_cache.reset_cache()
