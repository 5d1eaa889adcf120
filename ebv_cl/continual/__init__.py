"""Avalanche adapters: scenario (stream) builders, strategies and thin plugins over the core.

This is the only part of ebv-cl that imports Avalanche; import its submodules explicitly (for example
``ebv_cl.continual.scenarios``), nothing heavy is imported here.
"""
