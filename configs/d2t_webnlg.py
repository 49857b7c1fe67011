"""Data-to-text with content selection and planning (Puduppully et al. 2019) on WebNLG 2017
(algorithm 'd2t'), then self-critical training on BLEU (preset 'scst').

Input: the challenge's modified triples (subject | predicate | object), output: the text;
one training pair per reference (18,102 from 6,940 entries), eval on the 872 dev entries
(2,268 references). Lowercased word tokens (`data.d2t.tokenize`), vocabulary of the
training texts and fields, sentences of at most 63 tokens + EOS. Model: record encoder
(field embeddings -> MLP), content-selection gate, pointer-network planner, bi-LSTM plan
encoder, LSTM decoder with attention and joint copy; emb 256, hidden 256, dropout 0.3;
Adam 1e-3, batch 64 (length-bucketed), 15 epochs (4,242 steps). Generation: beam 12, length
penalty 1, reranked by entity coverage (d2t.rerank_coverage=2; 0 for the plain beam pick).

    python launch.py --config=configs/d2t_webnlg.py --workdir=/tmp/runs/d2t_webnlg
    # self-critical training from the MLE model (its own workdir):
    python launch.py --config=configs/d2t_webnlg.py:scst --workdir=/tmp/runs/d2t_webnlg_scst \
      --config.scst.init=/tmp/runs/d2t_webnlg
    echo 'Aarhus_Airport | cityServed | Aarhus ;; Aarhus | leaderName | Jacob_Bundsgaard' | \
      python launch.py --config=configs/d2t_webnlg.py --workdir=/tmp/runs/d2t_webnlg \
      --mode=generate --input=- --show_plan

Presets: 'scst' (scst.steps=1,000 self-critical steps at Adam 5e-5, MLE mixed in at
0.1, from scst.init, eval every 250), 'delex' (entities replaced by placeholders), 'smoke'
(seconds). The corpus directory defaults to ../shared/data/webnlg2017 beside the
repository (--config.data.corpus_dir=...).
"""

import os

from jaxtextgen.config import base_config, parse_presets, smoke

_WEBNLG = os.path.join(os.path.dirname(__file__), '..', '..', 'shared', 'data', 'webnlg2017')


def d2t_model(c):
  """The model, optimizer and eval shared by configs/d2t_*.py."""
  c.algorithm = 'd2t'
  c.model.emb_dim = 256
  c.model.hidden_size = 256
  c.model.dropout = 0.3
  c.optimizer.learning_rate = 1e-3
  c.optimizer.grad_clip = 5.0
  c.batch_size = 64
  c.eval_batch_size = 128
  c.log_every = 100
  c.checkpoint_every = 500
  c.d2t.beam_size = 12
  c.d2t.rerank_coverage = 2.0  # the final pick favours hypotheses that name their entities
  return c


def scst(c):
  """Self-critical training from a converged MLE run (scst.init)."""
  s = c.scst
  s.mle_steps = 0
  s.steps = 1_000
  s.learning_rate = 5e-5
  s.mle_mix = 0.1
  c.model.dropout = 0.0  # the sampled policy is the one that generates
  c.data.trim_multiple = 0  # one batch shape: the scst step compiles once
  c.eval_every = 250
  c.eval.at_start = True
  return c


def smoke_d2t(c):
  smoke(c)
  c.num_train_steps = 6
  c.model.emb_dim = 16
  c.model.hidden_size = 16
  c.d2t.beam_size = 2
  c.d2t.eval_entries = 16
  if c.scst.steps:
    c.scst.mle_steps, c.scst.steps = 3, 3
    c.num_train_steps = -1
  return c


def get_config(preset: str = ''):
  presets = parse_presets(preset, ('scst', 'delex', 'smoke'))
  c = d2t_model(base_config())
  c.data.corpus = 'webnlg'
  c.data.corpus_dir = os.path.abspath(_WEBNLG)
  c.data.train_split = 'train'
  c.data.eval_split = 'validation'
  c.data.max_len = 64
  c.data.sort_chunk = 20         # batches of similar lengths, cut to their longest text
  c.data.trim_multiple = 8
  c.d2t.max_records = 8
  c.num_epochs = 15
  c.eval_every = 1_000
  if 'delex' in presets:
    c.d2t.delex = True
  if 'scst' in presets:
    scst(c)
  if 'smoke' in presets:
    smoke_d2t(c)
  return c
