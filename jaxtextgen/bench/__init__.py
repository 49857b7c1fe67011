"""Side-by-side benchmark of the library against PyTorch (see __main__.py)."""
