"""Benchmarks of chartlib (issue 6): the drifting field, training steps, sampling, matmul, the book.

Run ``python -m benchmarks`` (``--quick`` for a smoke run, ``--report`` for a Markdown summary);
each benchmark writes ``_build/bench/<name>.json`` with medians and a description of the machine.
"""
