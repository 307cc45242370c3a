"""Training the embedded default model: corpus, tokenizer, objective, loop, export.

Run `python -m dgemma_app.train --help`. Nothing here runs at import time.
"""
