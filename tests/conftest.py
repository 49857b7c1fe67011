"""Test-wide setup: 4 forced CPU devices (multi-device code runs on any machine).

Must run before JAX initialises its backend, hence here and first."""

import os

os.environ.setdefault('XLA_FLAGS', '--xla_force_host_platform_device_count=4')

import jax  # pylint: disable=g-import-not-at-top

jax.config.update('jax_num_cpu_devices', 4)
