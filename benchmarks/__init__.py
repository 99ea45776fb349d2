"""Measured comparisons of gnnrec against reference implementations: ``python -m benchmarks`` (``make bench``).

Sub-benchmarks (``--only``): ``train_step``, ``eval``, ``recbole``, ``time_to_quality``, ``pipeline``,
``memory``; ``python -m benchmarks.gpu`` is the GPU benchmark (torch + PyG only). See README "Benchmarks".
"""
