"""Tokenisation, the grain pipeline (determinism, resume, sharding) and build_data."""

import numpy as np
import pytest

from jaxtextgen.config import base_config
from jaxtextgen.data import pipeline
from jaxtextgen.data.vocab import Vocab


def _split(n=23, max_len=6):
  vocab = Vocab.build([f'w{i}' for i in range(40)])
  texts = [' '.join(f'w{(i + j) % 40}' for j in range(1 + i % 5)) for i in range(n)]
  return pipeline.tokenize(texts, np.arange(n) % 2, vocab, max_len), vocab, texts


def test_tokenize_eos_padding_and_truncation():
  vocab = Vocab.build(['a b c d e f'])
  s = pipeline.tokenize(['a b', 'a b c d e f', ''], None, vocab, max_len=4)
  a, b, eos = vocab.stoi['a'], vocab.stoi['b'], vocab.eos_id
  np.testing.assert_array_equal(s.tokens[0], [a, b, eos, 0])
  np.testing.assert_array_equal(s.mask[0], [1, 1, 1, 0])
  np.testing.assert_array_equal(s.tokens[1], [a, b, vocab.stoi['c'], eos])  # cut, EOS kept
  np.testing.assert_array_equal(s.mask[2], [1, 0, 0, 0])
  assert s.num_truncated == 1
  np.testing.assert_array_equal(s.labels, [-1, -1, -1])


def test_tokenize_without_eos_uses_all_positions():
  s = pipeline.tokenize(['1 2 3', '4 5 6 7'], None, Vocab.identity(10), max_len=3)
  np.testing.assert_array_equal(s.tokens, [[1, 2, 3], [4, 5, 6]])
  assert s.mask.sum() == 6 and s.num_truncated == 1


def _batches(split, start, n, **kw):
  it = pipeline.train_iterator(split, start_step=start, batch_size=kw.pop('batch_size', 4),
                               seed=kw.pop('seed', 0), **kw)
  return [next(it) for _ in range(n)]


def test_train_order_is_deterministic_and_resumes_at_a_step():
  split, _, _ = _split()
  full = _batches(split, 0, 12)
  again = _batches(split, 0, 12)
  resumed = _batches(split, 7, 5)
  for a, b in zip(full, again):
    np.testing.assert_array_equal(a['tokens'], b['tokens'])
  for a, b in zip(full[7:], resumed):
    for k in a:
      np.testing.assert_array_equal(a[k], b[k])
  other = _batches(split, 0, 12, seed=1)
  assert any(not np.array_equal(a['tokens'], b['tokens']) for a, b in zip(full, other))


def test_every_example_once_per_epoch_and_reshuffled():
  split, _, _ = _split(n=24)
  ds = pipeline.train_dataset(split, batch_size=4, seed=3)
  ids = lambda b: [tuple(r) for r in b['tokens']]
  epoch0 = [r for s in range(6) for r in ids(ds[s])]
  epoch1 = [r for s in range(6, 12) for r in ids(ds[s])]
  everything = sorted(tuple(r) for r in split.tokens)
  assert sorted(epoch0) == everything and sorted(epoch1) == everything
  assert epoch0 != epoch1


def test_processes_split_each_global_batch():
  split, _, _ = _split(n=24)
  one = pipeline.train_dataset(split, batch_size=8, seed=0)
  parts = [pipeline.train_dataset(split, batch_size=8, seed=0, process_index=p, process_count=2)
           for p in range(2)]
  for step in range(6):
    a, b = parts[0][step]['tokens'], parts[1][step]['tokens']
    assert a.shape == b.shape == (4, 6)
    # Together the processes see exactly the examples of the single-process batch.
    assert sorted(map(tuple, np.concatenate([a, b]))) == sorted(map(tuple, one[step]['tokens']))
  with pytest.raises(ValueError, match='multiple of 3'):
    pipeline.train_dataset(split, batch_size=8, seed=0, process_count=3)


def test_eval_batches_cover_the_split_once_with_padding_weights():
  split, _, _ = _split(n=10)
  batches = list(pipeline.eval_batches(split, batch_size=4))
  assert len(batches) == 3 and all(b['tokens'].shape == (4, 6) for b in batches)
  w = np.concatenate([b['weight'] for b in batches])
  np.testing.assert_array_equal(w, [1] * 10 + [0] * 2)
  assert batches[-1]['mask'][2:].sum() == 0  # padding rows carry no tokens
  np.testing.assert_array_equal(np.concatenate([b['tokens'] for b in batches])[:10], split.tokens)
  limited = list(pipeline.eval_batches(split, batch_size=4, limit=5))
  assert sum(b['weight'].sum() for b in limited) == 5


def test_eval_batches_group_long_sentences_into_fewer_rows_of_their_own_width():
  """Sentences of 1..12 tokens, base_len 4: buckets of 4, 8 and 16 (cut to the split's 13)
  columns, with 8, 4 and 2 rows (a token budget of 8 x 4); every sentence once, whole."""
  vocab = Vocab.build([f'w{i}' for i in range(40)])
  texts = [' '.join(f'w{j}' for j in range(1 + i % 12)) for i in range(30)]
  split = pipeline.tokenize(texts, None, vocab, max_len=13)
  batches = list(pipeline.eval_batches(split, batch_size=8, base_len=4, multiple=2))
  shapes = sorted({b['tokens'].shape for b in batches})
  assert shapes == [(2, 13), (4, 8), (8, 4)]
  index = np.concatenate([b['index'][b['weight'] > 0] for b in batches])
  np.testing.assert_array_equal(np.sort(index), np.arange(30))  # each sentence once
  for b in batches:
    real = b['weight'] > 0
    np.testing.assert_array_equal(b['tokens'][real], split.tokens[b['index'][real], :b['tokens'].shape[1]])
    assert b['mask'][real].sum() == split.mask[b['index'][real]].sum()  # nothing cut
    assert b['mask'][~real].sum() == 0
  # a process's rows are its slice of the global batch; 'index' stays global
  first = next(pipeline.eval_batches(split, batch_size=8, base_len=4, multiple=2,
                                     process_index=1, process_count=2))
  np.testing.assert_array_equal(first['tokens'], batches[0]['tokens'][4:])
  np.testing.assert_array_equal(first['index'], batches[0]['index'])


def test_lm_eval_sums_do_not_depend_on_the_grouping():
  """The NLL sums of an LM over length-grouped batches equal those of one full-width
  bucket: grouping changes the cost, not the metric."""
  import jax
  from jaxtextgen.steps import lm
  split, vocab, _ = _split(n=23, max_len=6)
  c = base_config()
  c.vocab.size, c.vocab.bos_id, c.vocab.eos_id = len(vocab), vocab.bos_id, vocab.eos_id
  c.model.emb_dim = c.model.hidden_size = 8
  state = lm.init(jax.random.PRNGKey(0), c, {'tokens': split.tokens[:2]})
  def total(**kw):
    sums = [lm.eval_step(state, {k: v for k, v in b.items() if k != 'index'},
                         jax.random.PRNGKey(1), config=c)
            for b in pipeline.eval_batches(split, batch_size=4, **kw)]
    return {k: float(sum(s[k] for s in sums)) for k in ('nll_sum', 'tokens', 'sentences')}
  grouped, whole = total(base_len=2), total()
  assert grouped['tokens'] == whole['tokens'] == split.mask.sum()
  np.testing.assert_allclose(grouped['nll_sum'], whole['nll_sum'], rtol=1e-5)


def test_split_order_rows_undo_the_grouping_and_pad_widths():
  from jaxtextgen.train.trainer import split_order_rows
  rows = [{'ids': np.array([[5, 6]]), 'z': np.array([1.])},
          {'ids': np.array([[7, 8, 9], [1, 2, 3]]), 'z': np.array([2., 3.])}]
  out = split_order_rows(rows, np.array([2, 0, 1]))
  np.testing.assert_array_equal(out['ids'], [[7, 8, 9], [1, 2, 3], [5, 6, 0]])
  np.testing.assert_array_equal(out['z'], [2., 3., 1.])


def test_batch_larger_than_the_split_is_an_error():
  split, _, _ = _split(n=5)
  with pytest.raises(ValueError, match='fewer than one batch'):
    pipeline.train_dataset(split, batch_size=8, seed=0)


def _corpus_config(tmp_path, **data):
  c = base_config()
  c.data.corpus = 'ptb'
  c.data.corpus_dir = str(tmp_path / 'ptb')
  c.data.cache_dir = str(tmp_path / 'cache')
  c.data.max_len = 5
  for k, v in data.items():
    setattr(c.data, k, v)
  return c


def _write_ptb(tmp_path, train, valid):
  d = tmp_path / 'ptb'
  d.mkdir(exist_ok=True)
  (d / 'ptb.train.txt').write_text(''.join(f' {l} \n' for l in train))
  (d / 'ptb.valid.txt').write_text(''.join(f' {l} \n' for l in valid))


def test_build_data_vocab_from_train_only_saved_and_reloaded(tmp_path):
  _write_ptb(tmp_path, ['a b c', 'a b', 'b c d e f g h'], ['a z z z z z z z', 'c'])
  vocab_path = str(tmp_path / 'vocab.json')
  data = pipeline.build_data(_corpus_config(tmp_path), vocab_path)
  assert 'z' not in data.vocab.stoi  # a valid-only word is unknown
  assert data.train.num_truncated == 1
  assert data.eval.tokens.shape[1] == 9  # eval keeps whole sentences (8 words + EOS)
  assert data.eval.num_truncated == 0
  assert data.spec['size'] == len(data.vocab) and data.spec['eos_id'] == 2
  # A resumed run reloads the saved vocabulary even if the corpus changed.
  _write_ptb(tmp_path, ['q r s'], ['a'])
  again = pipeline.build_data(_corpus_config(tmp_path), vocab_path)
  assert again.vocab == data.vocab


def test_build_data_oracle_is_seeded():
  c = base_config()
  c.data.oracle_vocab_size = 30
  c.data.oracle_num_train = 40
  c.data.oracle_num_eval = 8
  a, b = pipeline.build_data(c), pipeline.build_data(c)
  assert a.train.tokens.shape == (40, 20) and a.eval.tokens.shape == (8, 20)
  assert a.train.mask.min() == 1 and len(a.vocab) == 30 and a.spec['bos_id'] == 0
  np.testing.assert_array_equal(a.train.tokens, b.train.tokens)
  assert not np.array_equal(a.train.tokens[:8], a.eval.tokens)


def test_length_bucketing_keeps_examples_and_trims_padding():
  split, _, _ = _split(n=40, max_len=6)
  plain = pipeline.train_dataset(split, batch_size=4, seed=0)
  bucketed = pipeline.train_dataset(split, batch_size=4, seed=0, sort_chunk=5, trim_multiple=2)
  rows = lambda ds, steps: sorted(tuple(r[r > 0]) for s in steps for r in ds[s]['tokens'])
  # The same examples per chunk of 5 batches, just regrouped.
  assert rows(plain, range(5)) == rows(bucketed, range(5))
  assert rows(plain, range(5, 10)) == rows(bucketed, range(5, 10))
  for s in range(10):
    b = bucketed[s]
    n = b['mask'].sum(1)
    assert b['tokens'].shape[1] == min(6, -(-int(n.max()) // 2) * 2)  # trimmed to a multiple
    assert n.max() - n.min() <= 2  # lengths 2..6, grouped
    np.testing.assert_array_equal(bucketed[s]['tokens'], b['tokens'])  # random access is pure
  padded = lambda ds: sum(ds[s]['mask'].size - ds[s]['mask'].sum() for s in range(10))
  assert padded(bucketed) < padded(plain) / 2


def test_bucketed_processes_share_one_shape():
  split, _, _ = _split(n=40, max_len=6)
  kw = dict(batch_size=8, seed=0, sort_chunk=3, trim_multiple=1, process_count=2)
  one = pipeline.train_dataset(split, batch_size=8, seed=0, sort_chunk=3, trim_multiple=1)
  for s in range(6):
    a, b = (pipeline.train_dataset(split, process_index=p, **kw)[s] for p in range(2))
    assert a['tokens'].shape == b['tokens'].shape == (4, one[s]['tokens'].shape[1])
    np.testing.assert_array_equal(np.concatenate([a['tokens'], b['tokens']]), one[s]['tokens'])


def _text_lines_config(tmp_path, train, valid, **data):
  d = tmp_path / 'lines'
  d.mkdir(exist_ok=True)
  (d / 'train.txt').write_text(''.join(f'{l}\n' for l in train), encoding='utf-8')
  (d / 'valid.txt').write_text(''.join(f'{l}\n' for l in valid), encoding='utf-8')
  c = _corpus_config(tmp_path, corpus='text_lines', corpus_dir=str(d), eval_split='valid')
  for k, v in data.items():
    setattr(c.data, k, v)
  return c


def test_build_data_char_tokenizer_counts_characters(tmp_path):
  c = _text_lines_config(tmp_path, ['ab c', 'abc'], ['abcabc a'], tokenizer='char', max_len=4)
  data = pipeline.build_data(c, str(tmp_path / 'vocab.json'))
  assert data.vocab.tokenizer == 'char'
  assert data.train.num_truncated == 1  # 'ab c' is 4 tokens + EOS > 4
  assert data.eval.tokens.shape[1] == 9  # 8 characters (the space is one) + EOS, uncut
  assert data.vocab.decode(data.eval.tokens[0]) == 'abcabc a'
  # Resuming with another tokenizer would silently change every id.
  c.data.tokenizer = 'word'
  with pytest.raises(ValueError, match=r"built with tokenizer 'char'.*set it back to 'char'"):
    pipeline.build_data(c, str(tmp_path / 'vocab.json'))


def test_max_eval_len_truncates_eval_with_a_counted_warning(tmp_path, caplog):
  valid = ['a b c d e f g', 'a b', 'a b c d e f']
  c = _text_lines_config(tmp_path, ['a b c d'], valid, max_len=4, max_eval_len=6)
  with caplog.at_level('WARNING'):
    data = pipeline.build_data(c)
  assert data.eval.tokens.shape[1] == 6 and data.eval.num_truncated == 2
  assert 'valid: 2 of 3 sentences' in caplog.text and 'config.data.max_eval_len' in caplog.text
  np.testing.assert_array_equal(data.eval.mask.sum(1), [6, 3, 6])  # 5 words + EOS kept
  c.data.max_eval_len = 0  # eval never truncates
  assert pipeline.build_data(c).eval.tokens.shape[1] == 8
  c.data.max_eval_len = 3
  with pytest.raises(ValueError, match=r'max_eval_len=3 is below config\.data\.max_len=4'):
    pipeline.build_data(c)


def test_num_classes_checks_every_label_at_start_up(tmp_path):
  c = _text_lines_config(tmp_path, ['good\t1', 'bad\t0'], ['fine\t1', 'great\t2'], num_classes=2)
  with pytest.raises(ValueError, match=r"split 'valid': record 1 .* has label 2, outside "
                     r'\[0, 2\).*set config\.data\.num_classes=3 or more'):
    pipeline.build_data(c)
  c.data.num_classes = 3
  data = pipeline.build_data(c)
  np.testing.assert_array_equal(data.train.labels, [1, 0])
  c = _text_lines_config(tmp_path, ['good\t1', 'bad\t-2'], ['fine\t1'], num_classes=2)
  with pytest.raises(ValueError, match=r"split 'train': record 1 .* has label -2"):
    pipeline.build_data(c)
  c.data.num_classes = 0  # unlabelled algorithms never look at labels
  pipeline.build_data(c)


def test_labelled_algorithm_on_an_unlabelled_corpus_is_an_error(tmp_path):
  _write_ptb(tmp_path, ['a b c'], ['a'])
  with pytest.raises(ValueError, match=r"split 'train': record 0 .* has label -1, i\.e\. no label.*"
                     r'use a labelled corpus.*or set config\.data\.num_classes=0'):
    pipeline.build_data(_corpus_config(tmp_path, num_classes=2))
  with pytest.raises(ValueError, match=r'num_classes=1: use 0'):
    pipeline.build_data(_corpus_config(tmp_path, num_classes=1))
  with pytest.raises(ValueError, match=r"tokenizer='chars'"):
    pipeline.build_data(_corpus_config(tmp_path, tokenizer='chars'))
