"""Reproducible throughput and latency runs for masterless (``python -m benchmarks``).

Every figure is printed beside a raw-asyncio baseline measured in the same run (length-prefixed
msgpack frames over asyncio Protocols between two processes), so the results read as ratios
that hold on a noisy machine.
"""
