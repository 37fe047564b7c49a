"""netc's benchmark harness: training-step speed of generated modules, compile speed.

Run ``python -m bench.run`` from the repository root (see ``bench/README.md``).
"""
