"""metrics.jsonl: resume truncation, a cut-short last line, fresh starts keep old rows."""

import json
import logging

import pytest

from jaxtextgen.train.writer import MetricWriter, read_metrics


def _write(path, rows, tail=''):
  path.write_text(''.join(json.dumps(r) + '\n' for r in rows) + tail)


def test_resume_keeps_the_rows_up_to_the_checkpoint_and_drops_a_cut_last_line(tmp_path, caplog):
  _write(tmp_path / 'metrics.jsonl', [{'step': s, 'loss': s / 10} for s in (1, 2, 3)],
         tail='{"step": 4, "lo')
  with caplog.at_level(logging.WARNING):
    assert [r['step'] for r in read_metrics(str(tmp_path))] == [1, 2, 3]
  assert 'metrics.jsonl: dropped its last line 4, cut short' in caplog.text
  MetricWriter(str(tmp_path), resume_step=2).write(3, {'loss': 0.5})
  assert read_metrics(str(tmp_path)) == [{'step': 1, 'loss': 0.1}, {'step': 2, 'loss': 0.2},
                                         {'step': 3, 'loss': 0.5}]


def test_a_bad_line_inside_the_file_names_the_file_and_line(tmp_path):
  (tmp_path / 'metrics.jsonl').write_text('{"step": 1}\nnot json\n{"step": 3}\n')
  with pytest.raises(ValueError, match=r'metrics.jsonl, line 2: not a JSON row'):
    read_metrics(str(tmp_path))


def test_a_fresh_start_moves_old_rows_aside_instead_of_truncating(tmp_path):
  _write(tmp_path / 'metrics.jsonl', [{'step': 1, 'loss': 1.0}])
  MetricWriter(str(tmp_path)).write(1, {'loss': 2.0})
  assert read_metrics(str(tmp_path)) == [{'step': 1, 'loss': 2.0}]
  assert (tmp_path / 'metrics.jsonl.1').read_text() == json.dumps({'step': 1, 'loss': 1.0}) + '\n'
  MetricWriter(str(tmp_path))
  assert (tmp_path / 'metrics.jsonl.2').exists() and not read_metrics(str(tmp_path))
