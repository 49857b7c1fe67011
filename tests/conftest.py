"""Test-wide setup: 4 forced CPU devices (multi-device code runs on any machine).

Must run before JAX initialises its backend, hence here and first."""

import os
import tempfile

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=4')

import jax  # pylint: disable=g-import-not-at-top
import pytest  # pylint: disable=g-import-not-at-top

jax.config.update('jax_num_cpu_devices', 4)


@pytest.fixture(scope='session', autouse=True)
def _temp_files_under_pytest(tmp_path_factory):
  """Libraries' temporary directories go under pytest's base temp, which pytest prunes:
  TFDS leaves an empty `tmp*tfds` in the system temp for every corpus it prepares
  (`DatasetInfo.initialize_from_bucket`), i.e. one per data test."""
  old = tempfile.tempdir
  tempfile.tempdir = str(tmp_path_factory.mktemp('tempfile'))
  yield
  tempfile.tempdir = old
