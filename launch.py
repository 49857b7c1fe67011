"""Entry point: train, evaluate or sample any algorithm from a config file.

    python launch.py --config=configs/mle_oracle.py --workdir=/tmp/mle_oracle
    python launch.py --config=configs/lm_ptb.py:smoke --workdir=/tmp/lm --config.batch_size=32
    python launch.py --config=configs/lm_ptb.py --workdir=/tmp/lm --mode=eval

--mode=eval writes WORKDIR/eval_<step>.json and prints the same JSON object as
its last line; --mode=sample prints decoded samples (one per line); --mode=transfer
(models with an attribute code: ctrl_gen, cross_align) moves each sentence of --input to
class --to_label and prints / writes `input<TAB>output` lines:

    python launch.py --config=configs/ctrl_gen_yelp.py --workdir=/tmp/ctrl --mode=transfer \
      --input=my_sentences.txt --to_label=1 [--output=out.tsv]

--mode=generate (data-to-text: d2t) writes one text per input line of records:

    echo 'Aarhus_Airport | cityServed | Aarhus ;; Aarhus | leaderName | Jacob_Bundsgaard' | \
      python launch.py --config=configs/d2t_webnlg.py --workdir=/tmp/d2t --mode=generate \
      --input=- --show_plan

Exit codes: 0 done; 2 a user error (bad config value, corpus, workdir or checkpoint),
printed as one line `error: ...` (--traceback shows where it came from); 75 stopped by
SIGTERM or Ctrl-C after checkpointing (requeue it: the same command resumes); 1 anything
else, a bug, with its traceback.
"""

import json
import logging as pylogging
import os
import re
import sys

from absl import app, flags, logging
from ml_collections import config_flags

config_flags.DEFINE_config_file('config', None, 'Config file, optionally with a preset: '
                                'configs/X.py[:smoke].', lock_config=True)
flags.DEFINE_string('workdir', None, 'Directory for checkpoints, vocabulary, logs, samples.')
flags.DEFINE_enum('mode', 'train', ['train', 'eval', 'sample', 'transfer', 'generate'],
                  'What to do.')
flags.DEFINE_string('input', '-', '--mode=transfer: sentences to transfer, one per line; '
                    '--mode=generate: one input per line, "s | p | o ;; s | p | o" triples or '
                    "a JSON list of records ('-': stdin).")
flags.DEFINE_bool('show_plan', False, '--mode=generate: also write each text\'s plan (the '
                  'records in the order the planner chose), after a TAB.')
flags.DEFINE_integer('to_label', None, '--mode=transfer: the class to move them to.')
flags.DEFINE_string('output', '', '--mode=transfer: where to write input<TAB>output lines '
                    '(default WORKDIR/transfer_<step>.txt); --mode=generate: where to write '
                    'the texts (default WORKDIR/generate_<step>.txt).')
flags.DEFINE_bool('multihost', False, 'Call jax.distributed.initialize(): on a TPU pod or under '
                  'SLURM / Open MPI it finds its peers itself.')
flags.DEFINE_string('coordinator_address', None, 'Multi-host anywhere else: HOST:PORT of process '
                    '0 (implies --multihost; default $JAXTEXTGEN_COORDINATOR_ADDRESS).')
flags.DEFINE_integer('num_processes', None, 'Multi-host: how many processes (default '
                     '$JAXTEXTGEN_NUM_PROCESSES).')
flags.DEFINE_integer('process_id', None, 'Multi-host: this process, 0..num_processes-1 (default '
                     '$JAXTEXTGEN_PROCESS_ID).')
flags.DEFINE_bool('traceback', False, 'On a user error, show the traceback as well.')
flags.mark_flags_as_required(['config', 'workdir'])
FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'unexpected arguments: {argv[1:]}')
  import jax  # pylint: disable=g-import-not-at-top
  cluster = _cluster_flags()
  if FLAGS.multihost or cluster:
    if cluster:  # processes without a cluster manager; on CPU their collectives are gloo's
      jax.config.update('jax_cpu_collectives_implementation', 'gloo')
    jax.distributed.initialize(**cluster)
  from jaxtextgen.train import trainer  # pylint: disable=g-import-not-at-top
  logging.info('JAX %s, %d process(es), devices: %s', jax.__version__, jax.process_count(),
               jax.devices())
  config, workdir = FLAGS.config, os.path.expanduser(FLAGS.workdir)
  try:
    if FLAGS.mode == 'train':
      trainer.train_and_evaluate(config, workdir)
    elif FLAGS.mode == 'eval':
      metrics = trainer.evaluate_checkpoint(config, workdir)
      sys.stdout.flush()
      print(json.dumps(metrics, sort_keys=True), flush=True)
    elif FLAGS.mode == 'transfer':
      if FLAGS.to_label is None:
        raise ValueError('--mode=transfer needs --to_label=L, the class to move the sentences to')
      lines = trainer.transfer_checkpoint(config, workdir, FLAGS.input, FLAGS.to_label,
                                          FLAGS.output)
      print('\n'.join(lines), flush=True)
    elif FLAGS.mode == 'generate':
      lines = trainer.generate_checkpoint(config, workdir, FLAGS.input, FLAGS.output,
                                          FLAGS.show_plan)
      print('\n'.join(lines), flush=True)
    else:
      print('\n'.join(trainer.sample_checkpoint(config, workdir)), flush=True)
  except trainer.Stopped as e:
    logging.warning('%s', e)
    sys.exit(trainer.EXIT_STOPPED)
  except USER_ERRORS + (trainer.WorkdirInUse, trainer.CheckpointError) as e:
    if FLAGS.traceback:
      raise
    logging.flush()
    sys.stdout.flush()
    print(f'error: {e}', file=sys.stderr, flush=True)
    os._exit(2)  # pylint: disable=protected-access  (skip JAX's and orbax's shutdown noise)


def _cluster_flags() -> dict:
  """jax.distributed.initialize's arguments from --coordinator_address, --num_processes,
  --process_id (or their JAXTEXTGEN_* environment variables); {} when none is given."""
  out = {}
  for name, cast in (('coordinator_address', str), ('num_processes', int), ('process_id', int)):
    value = getattr(FLAGS, name)
    if value is None and os.environ.get(f'JAXTEXTGEN_{name.upper()}'):
      value = cast(os.environ[f'JAXTEXTGEN_{name.upper()}'])
    if value is not None:
      out[name] = value
  if out and set(out) != {'coordinator_address', 'num_processes', 'process_id'}:
    raise app.UsageError('multi-host needs all of --coordinator_address, --num_processes and '
                         f'--process_id (got {sorted(out)})')
  return out


# What a user can fix: bad values, missing or unreadable files, diverged runs.
USER_ERRORS = (ValueError, FileNotFoundError, NotADirectoryError, PermissionError,
               UnicodeDecodeError, FloatingPointError)


def _parse_flags(argv):
  """absl's parser, with config typos reported as one line instead of a traceback."""
  try:
    return FLAGS(argv)
  except (AttributeError, KeyError) as e:
    while e.args and isinstance(e.args[0], Exception):  # ml_collections nests KeyErrors
      e = e.args[0]
    msg = str(e.args[0] if e.args else e).split(' Other fields present')[0]
    name = (re.findall(r'["\']([A-Za-z_]\w*)["\']', msg) or ['?'])[0]
    hint = ' '.join(l for l in msg.splitlines()[1:] if l.strip())
    where = [a.split('=')[0] for a in argv if a.startswith('--config.') and name in a.split('=')[0]]
    sys.exit(f'error: unknown config field {name!r} in {" ".join(where) or "the config"}. '
             f'{hint + " " if hint else ""}The fields are those of jaxtextgen/config.py '
             '(listed by --helpfull).')
  except flags.Error as e:
    sys.exit(f'error: {e}')


class _QuietLibraries(pylogging.Filter):
  """Orbax and grain log every checkpoint step at INFO; keep their warnings only."""

  def filter(self, record):
    noisy = ('/orbax/' in record.pathname or '/grain/' in record.pathname)
    return record.levelno >= pylogging.WARNING or not noisy


if __name__ == '__main__':
  pylogging.getLogger('absl').addFilter(_QuietLibraries())
  app.run(main, flags_parser=_parse_flags)
