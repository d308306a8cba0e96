"""Hardening: the reference server under fuzzed frames, kill -9, ten times its load and slow clients."""
