"""The ablation of configs/d2t_webnlg.py: no content selection and no planning, an
encoder-decoder with attention and joint copy over the linearised triples (a bi-LSTM over
the records' tokens in input order); everything else as d2t_webnlg.

    python launch.py --config=configs/d2t_webnlg_noplan.py --workdir=/tmp/runs/d2t_noplan

Presets as configs/d2t_webnlg.py: 'scst', 'delex', 'smoke'.
"""

import os
import runpy

_D2T_WEBNLG = runpy.run_path(os.path.join(os.path.dirname(__file__), 'd2t_webnlg.py'))


def get_config(preset: str = ''):
  c = _D2T_WEBNLG['get_config'](preset)
  c.d2t.planner = False
  return c
