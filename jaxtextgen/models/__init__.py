"""Flax modules: the shared LSTM decoder/encoder and the sampler."""
