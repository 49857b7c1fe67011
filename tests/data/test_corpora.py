"""Tests of jaxtextgen.data.corpora on tiny corpora in tmp_path (no real data, no network)."""

import logging
import os
import threading

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jaxtextgen.data import corpora


def _write(directory, files):
  directory.mkdir(parents=True, exist_ok=True)
  for name, content in files.items():
    (directory / name).write_bytes(content if isinstance(content, bytes) else content.encode())
  return str(directory)


def _load(corpus, directory, split, tmp_path, **kwargs):
  return corpora.load_split(corpus, directory, split, cache_dir=str(tmp_path / 'cache'), **kwargs)


def _splits(corpus, directory, tmp_path, **kwargs):
  return corpora.available_splits(corpus, directory, cache_dir=str(tmp_path / 'cache'), **kwargs)


def test_corpora_names():
  assert corpora.CORPORA == ('text_lines', 'ptb', 'coco_captions', 'emnlp_news', 'yelp_sentiment',
                             'cn_sentiment', 'captions_li2018', 'webnlg', 'rotowire')
  assert corpora.STRUCTURED == ('webnlg', 'rotowire')
  assert set(corpora.BUILDERS) == set(corpora.CORPORA)


def test_text_lines_round_trip_with_labels_and_blank_lines(tmp_path, caplog):
  d = _write(tmp_path / 'c', {
      'train.txt': 'the cat sat\t1\n\na dog  ran \t0\nno label here\n  \nend\t-3\n',
      'valid.txt': '\ufeffv one\r\nv two',  # BOM, CRLF, no final newline
      'test.txt': 'only\ttabbed text\t7\n',
      'notes.md': 'not a split\n',
  })
  with caplog.at_level(logging.WARNING, logger='jaxtextgen.data.corpora'):
    train = _load('text_lines', d, 'train', tmp_path)
  assert train.texts == ['the cat sat', 'a dog  ran', 'no label here', 'end']
  assert train.labels.dtype == np.int64
  np.testing.assert_array_equal(train.labels, [1, 0, -1, -3])
  assert 'skipped 2 blank line(s)' in caplog.text
  assert _load('text_lines', d, 'valid', tmp_path).texts == ['v one', 'v two']
  test = _load('text_lines', d, 'test', tmp_path)
  assert (test.texts, test.labels.tolist()) == (['only\ttabbed text'], [7])
  assert _splits('text_lines', d, tmp_path) == ['train', 'test', 'valid']


def test_ptb_strips_leading_space_and_maps_splits(tmp_path):
  d = _write(tmp_path / 'ptb', {
      'ptb.train.txt': ' no it was n\'t black monday \n but while the new york stock exchange \n',
      'ptb.valid.txt': ' consumers may want to move \n',
  })
  train = _load('ptb', d, 'train', tmp_path)
  assert train.texts == ["no it was n't black monday", 'but while the new york stock exchange']
  np.testing.assert_array_equal(train.labels, [-1, -1])
  assert _load('ptb', d, 'validation', tmp_path).texts == ['consumers may want to move']
  assert _splits('ptb', d, tmp_path) == ['train', 'validation']  # no ptb.test.txt: no test split


def test_coco_captions_lowercases(tmp_path):
  d = _write(tmp_path / 'coco', {'train.txt': 'A Man riding a Bike.\nTwo dogs play.',
                                 'test.txt': 'A Cat.\n'})
  assert _load('coco_captions', d, 'train', tmp_path).texts == ['a man riding a bike.',
                                                                 'two dogs play.']
  assert _load('coco_captions', d, 'test', tmp_path).texts == ['a cat.']


def test_emnlp_news_uses_whichever_files_exist(tmp_path):
  d = _write(tmp_path / 'news', {'valid.txt': 'The market rose .\nShares fell .   \n'})
  assert _splits('emnlp_news', d, tmp_path) == ['validation']
  assert _load('emnlp_news', d, 'validation', tmp_path).texts == ['The market rose .',
                                                                  'Shares fell .']


def test_yelp_sentiment_labels_from_suffix_negatives_first(tmp_path):
  d = _write(tmp_path / 'yelp', {
      'train.0': 'bad food\nawful\n', 'train.1': 'great place\n',
      'dev.0': 'meh\n', 'dev.1': 'nice\nlovely\n',
  })
  train = _load('yelp_sentiment', d, 'train', tmp_path)
  assert train.texts == ['bad food', 'awful', 'great place']
  np.testing.assert_array_equal(train.labels, [0, 0, 1])
  dev = _load('yelp_sentiment', d, 'validation', tmp_path)
  assert (dev.texts, dev.labels.tolist()) == (['meh', 'nice', 'lovely'], [0, 1, 1])
  assert _splits('yelp_sentiment', d, tmp_path) == ['train', 'validation']


def test_captions_li2018_reads_its_known_latin1_byte_with_a_warning(tmp_path, caplog):
  files = {'train.0': 'a funny dog\n', 'train.1': b'a car on the track\xa3\xacfast\nlove\n',
           'dev.0': 'ha\n', 'dev.1': 'sweet\n'}
  d = _write(tmp_path / 'captions', files)
  with caplog.at_level(logging.WARNING):
    train = _load('captions_li2018', d, 'train', tmp_path)
  assert train.texts == ['a funny dog', 'a car on the track\xa3\xacfast', 'love']
  np.testing.assert_array_equal(train.labels, [0, 1, 1])
  assert 'train.1 line 1 is not valid UTF-8; read as latin-1' in caplog.text
  # Other corpora keep refusing such bytes (test_error_not_utf8).


def test_cn_sentiment_text_tab_label_keeps_inner_spaces(tmp_path):
  d = _write(tmp_path / 'cn', {
      'sentiment.train.data': '很安静,隔音设施不错\t1\n文笔 不咋地。\t0\n\n',
      'sentiment.valid.data': '图太乱了  有点看不懂\t0\r\n',
  })
  train = _load('cn_sentiment', d, 'train', tmp_path)
  assert train.texts == ['很安静,隔音设施不错', '文笔 不咋地。']
  np.testing.assert_array_equal(train.labels, [1, 0])
  dev = _load('cn_sentiment', d, 'validation', tmp_path)
  assert (dev.texts, dev.labels.tolist()) == (['图太乱了  有点看不懂'], [0])
  assert _splits('cn_sentiment', d, tmp_path) == ['train', 'validation']


def test_split_slicing(tmp_path):
  d = _write(tmp_path / 'c', {'train.txt': ''.join(f's{i}\t{i}\n' for i in range(10)),
                              'test.txt': 't0\nt1\n'})
  texts = lambda split: _load('text_lines', d, split, tmp_path).texts
  assert texts('train[:3]') == ['s0', 's1', 's2']
  assert texts('train[7:]') == ['s7', 's8', 's9']
  assert texts('train[-2:]') == ['s8', 's9']
  assert texts('train[:50%]') == [f's{i}' for i in range(5)]
  assert texts('train[:2]+test') == ['s0', 's1', 't0', 't1']
  np.testing.assert_array_equal(_load('text_lines', d, 'train[4:6]', tmp_path).labels, [4, 5])


def test_prepared_once_then_reused(tmp_path, monkeypatch):
  d = _write(tmp_path / 'c', {'train.txt': 'a\nb\n'})
  _load('text_lines', d, 'train', tmp_path)

  def fail(*args, **kwargs):
    raise AssertionError('prepared twice')

  monkeypatch.setattr(corpora._CorpusBuilder, 'download_and_prepare', fail)
  monkeypatch.setattr(corpora, '_read_lines', fail)  # the fast path does not even parse files
  assert _load('text_lines', d, 'train', tmp_path).texts == ['a', 'b']


def test_fingerprint_tracks_edits_and_directories(tmp_path):
  d = _write(tmp_path / 'c', {'train.txt': 'old line\n'})
  assert _load('text_lines', d, 'train', tmp_path).texts == ['old line']
  _write(tmp_path / 'c', {'train.txt': 'new line one\nnew line two\n'})
  assert _load('text_lines', d, 'train', tmp_path).texts == ['new line one', 'new line two']
  # Same size, mtime forced back: the inode / ctime still differ after a rewrite via rename.
  tmp = tmp_path / 'c' / 'train.tmp'
  tmp.write_text('NEW LINE ONE\nNEW LINE TWO\n')
  st = os.stat(os.path.join(d, 'train.txt'))
  os.utime(tmp, ns=(st.st_atime_ns, st.st_mtime_ns))
  os.replace(tmp, os.path.join(d, 'train.txt'))
  assert _load('text_lines', d, 'train', tmp_path).texts == ['NEW LINE ONE', 'NEW LINE TWO']
  other = _write(tmp_path / 'other', {'train.txt': 'other dir\n'})
  assert _load('text_lines', other, 'train', tmp_path).texts == ['other dir']
  prepared = [p for p in os.listdir(tmp_path / 'cache') if p.startswith('text_lines-')
              and not p.endswith('.lock')]
  assert len(prepared) == 4


def test_default_cache_dir_from_env(tmp_path, monkeypatch):
  monkeypatch.setenv('JAXTEXTGEN_CACHE', str(tmp_path / 'envcache'))
  d = _write(tmp_path / 'c', {'train.txt': 'x\n'})
  assert corpora.load_split('text_lines', d, 'train').texts == ['x']
  assert any(p.startswith('text_lines-') for p in os.listdir(tmp_path / 'envcache'))


def test_concurrent_preparation(tmp_path):
  # flock locks belong to open file descriptions, so two threads contend like two processes.
  d = _write(tmp_path / 'c', {'train.txt': ''.join(f'line {i}\n' for i in range(200))})
  barrier, results, errors = threading.Barrier(3), [], []

  def work():
    barrier.wait()
    try:
      results.append(_load('text_lines', d, 'train', tmp_path).texts)
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)

  threads = [threading.Thread(target=work) for _ in range(3)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  assert not errors
  assert results == [[f'line {i}' for i in range(200)]] * 3


def test_download_path_uses_dl_manager(tmp_path, monkeypatch):
  # No network here: stand in for the download with local files, check the wiring only.
  fetched = _write(tmp_path / 'fetched', {'valid': ' fetched valid \n'})
  requested = []

  def download(self, urls):
    requested.append(dict(urls))
    return {k: os.path.join(fetched, 'valid') for k in urls}

  monkeypatch.setattr(tfds.download.DownloadManager, 'download', download)
  d = _write(tmp_path / 'ptb', {'ptb.train.txt': ' local train \n'})
  assert _splits('ptb', d, tmp_path, download=True) == ['train', 'validation', 'test']
  assert _load('ptb', d, 'train', tmp_path, download=True).texts == ['local train']
  assert _load('ptb', d, 'validation', tmp_path, download=True).texts == ['fetched valid']
  assert requested == [{n: corpora._PTB_URL.format(n.split('.')[1])
                        for n in ('ptb.valid.txt', 'ptb.test.txt')}]


# --- errors: clear message, raised before anything is written --------------------------------


def _raises(tmp_path, exc, match, corpus, directory, split='train', **kwargs):
  with pytest.raises(exc, match=match):
    _load(corpus, directory, split, tmp_path, **kwargs)
  assert not (tmp_path / 'cache').exists()


def test_error_unknown_corpus(tmp_path):
  _raises(tmp_path, ValueError, r"unknown corpus 'ptbb'; valid corpora: text_lines, ptb, "
          r'coco_captions, emnlp_news, yelp_sentiment, cn_sentiment, captions_li2018', 'ptbb', str(tmp_path))


def test_error_missing_dir(tmp_path):
  _raises(tmp_path, FileNotFoundError, r'does not exist.*--config\.data\.corpus_dir=', 'ptb',
          str(tmp_path / 'nope'))
  _raises(tmp_path, FileNotFoundError, r'no ptb corpus directory given.*--config\.data\.corpus_dir',
          'ptb', '')


def test_error_no_expected_files(tmp_path):
  d = _write(tmp_path / 'c', {'readme': 'x\n'})
  _raises(tmp_path, FileNotFoundError,
          r'none of the expected files: ptb\.train\.txt, ptb\.valid\.txt, ptb\.test\.txt '
          r'\(or set --config.data.download=True\)', 'ptb', d)
  _raises(tmp_path, FileNotFoundError, r'train\.0, train\.1, dev\.0', 'yelp_sentiment', d)
  _raises(tmp_path, FileNotFoundError, r'\{split\}\.txt files', 'text_lines', d)


@pytest.mark.parametrize('content', ['', '\n  \n\t\n'])
def test_error_empty_file(tmp_path, content):
  d = _write(tmp_path / 'c', {'train.txt': 'fine\n', 'valid.txt': content})
  _raises(tmp_path, ValueError, r'corpus file .*valid\.txt is empty', 'emnlp_news', d)


def test_error_not_utf8(tmp_path):
  d = _write(tmp_path / 'c', {'train.0': 'ok\n', 'train.1': b'fine\ncaf\xe9 au lait\n'})
  _raises(tmp_path, ValueError, r'train\.1 line 2 is not valid UTF-8 \(byte offset 8\); '
          r're-encode the file, e\.g\. `iconv -f latin1 -t utf-8`', 'yelp_sentiment', d)


def test_error_split_not_available(tmp_path):
  d = _write(tmp_path / 'c', {'ptb.train.txt': ' a\n', 'ptb.valid.txt': ' b\n'})
  _raises(tmp_path, ValueError, r"split 'test' .*available splits: train, validation", 'ptb', d,
          split='test[:10]')
  _raises(tmp_path, ValueError, r"split 'valid' .*available splits", 'ptb', d,
          split='train+valid')


def test_error_label_not_integer(tmp_path):
  d = _write(tmp_path / 'c', {'train.txt': 'good\t1\nbad\tneg\n'})
  _raises(tmp_path, ValueError, r"train\.txt:2: label column 'neg' is not an integer; lines "
          r'must be "sentence<TAB>integer label": fix or delete this line', 'text_lines', d)


def test_error_cn_sentiment_label_not_integer_or_missing(tmp_path):
  d = _write(tmp_path / 'c', {'sentiment.train.data': '好\t1\n差\tneg\n'})
  _raises(tmp_path, ValueError, r"sentiment\.train\.data:2: label column 'neg' is not an "
          r'integer.*fix or delete this line', 'cn_sentiment', d)
  d = _write(tmp_path / 'd', {'sentiment.train.data': '好\t1\n\n差\n'})
  _raises(tmp_path, ValueError, r'sentiment\.train\.data:3: no label column.*add the label',
          'cn_sentiment', d)


def test_error_bad_split_file_name(tmp_path):
  d = _write(tmp_path / 'c', {'train.v2.txt': 'a\n'})
  _raises(tmp_path, ValueError, r"split name 'train\.v2'.*rename the file", 'text_lines', d)
