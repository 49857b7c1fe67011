"""Data: vocabulary, corpora (TFDS array_record builders), grain pipeline, SeqGAN oracle."""
