"""Data-to-text with content selection and planning (Puduppully et al. 2019) on RotoWire
(Wiseman et al. 2017): NBA box and line scores -> game summaries (algorithm 'd2t').

The corpus cannot be obtained on the project machines: download harvardnlp/boxscore-data
(rotowire/{train,valid,test}.json) yourself and point --config.data.corpus_dir at it. Each
game gives about 600 records (entity, type, value, home/away); the oracle plan is the order
in which the summary mentions the records' values inside sentences naming their entity
(`data.d2t`), so content selection matters: most records stay out of the plan. Summaries
are long: max_len 400 tokens, up to 700 records, 3,000 source tokens. Same model as
configs/d2t_webnlg.py; greedy generation (beam search over 400 steps is slow on CPU).

    python launch.py --config=configs/d2t_rotowire.py --workdir=/tmp/runs/d2t_rotowire \
      --config.data.corpus_dir=PATH/boxscore-data/rotowire

Presets: 'scst' (as configs/d2t_webnlg.py), 'smoke': seconds, on a tiny synthetic corpus
in the boxscore-data layout (`data.d2t.write_rotowire_fixture`, written to the system's
temporary directory; --config.data.corpus_dir=... still points it at real data).
"""

import os
import runpy
import tempfile

from jaxtextgen.config import parse_presets

_WEBNLG = runpy.run_path(os.path.join(os.path.dirname(__file__), 'd2t_webnlg.py'))


def get_config(preset: str = ''):
  presets = parse_presets(preset, ('scst', 'smoke'))
  c = _WEBNLG['d2t_model'](_WEBNLG['base_config']())
  c.data.corpus = 'rotowire'
  c.data.corpus_dir = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..', 'shared',
                                                    'data', 'rotowire'))
  c.data.train_split = 'train'
  c.data.eval_split = 'validation'
  c.data.max_len = 400
  c.data.sort_chunk = 20
  c.data.trim_multiple = 16
  d = c.d2t
  d.max_records = 700
  d.max_field_len = 4
  d.max_source_len = 3_000
  d.max_refs = 1
  d.decode = 'greedy'
  c.batch_size = 16
  c.eval_batch_size = 16
  c.num_epochs = 25
  c.eval_every = 2_000
  if 'scst' in presets:
    _WEBNLG['scst'](c)
  if 'smoke' in presets:
    from jaxtextgen.data.d2t import write_rotowire_fixture  # pylint: disable=g-import-not-at-top
    _WEBNLG['smoke_d2t'](c)
    c.data.max_len = 40
    c.batch_size = c.eval_batch_size = 4  # the fixture holds 6 training games
    d.max_records = 40
    d.max_source_len = 160
    c.data.corpus_dir = write_rotowire_fixture(
        os.path.join(tempfile.gettempdir(), 'jaxtextgen_rotowire_fixture'))
  return c
