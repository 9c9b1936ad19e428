"""Runnable examples shipped with the package (``python -m hybrid.examples.train_digits``)."""
