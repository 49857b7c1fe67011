"""The schedule of named updates: steps -> (phase, position), open phases, errors."""

import pytest

from jaxtextgen.steps import schedule


def _update(state, batch, rng, *, config, axis_name=None):  # never called here
  raise AssertionError


def test_locate_maps_every_update_boundary_and_rejects_the_inside_of_an_update():
  s = schedule.Schedule((schedule.Phase('mle', _update, 3), schedule.Phase('d', _update, 0),
                         schedule.Phase('round', _update, 2, batches=4)))
  assert [p.name for p in s.phases] == ['mle', 'round']  # empty phases are dropped
  assert s.total_steps == 3 + 2 * 4 and s.starts() == [0, 3]
  assert [s.locate(step) for step in (0, 1, 2, 3, 7)] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1)]
  for inside in (4, 5, 6, 8):
    with pytest.raises(ValueError, match='inside an update of phase .round.'):
      s.locate(inside)
  with pytest.raises(ValueError, match='past the end'):
    s.locate(11)
  assert s.describe() == 'mle 3 x 1 -> round 2 x 4'


def test_an_open_last_phase_fills_the_run():
  s = schedule.Schedule((schedule.Phase('aggressive', _update, 2, batches=3),
                         schedule.Phase('train', _update, None)))
  assert s.open and s.resolve(10).phases[-1].updates == 4 and s.resolve(10).total_steps == 10
  assert not s.resolve(10).open
  with pytest.raises(ValueError, match='at least 6 steps'):
    s.resolve(5)
  single = schedule.single(_update)
  assert single.resolve(7).total_steps == 7
  with pytest.raises(ValueError, match='only the last phase'):
    schedule.Schedule((schedule.Phase('a', _update, None), schedule.Phase('b', _update, 1)))


def test_metric_names_prefix_the_phase_unless_the_key_has_one():
  p = schedule.Phase('round', _update, 1)
  m = {'loss': 1.0, 'g/reward': 2.0}
  assert schedule.metric_names(p, m, prefixed=True) == {'round/loss': 1.0, 'g/reward': 2.0}
  assert schedule.metric_names(p, m, prefixed=False) == m
