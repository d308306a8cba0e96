"""The reference server: both protocols on one port, every cost a named stage.

Layers, inside out (the canvas itself, how operations change it, and the rate limit's rule are
pure and shared with the model: ``bulkbench.canvas``, ``bulkbench.ratelimit``):
- ``storage``  SQLite and files in the data directory;
- ``stages``   bounded worker pools with queues, metrics and emulated service times;
- ``service``  operations end to end: idempotency, apply, persist, broadcast;
- ``uploads``  streaming multipart, image validation, thumbnails;
- ``ws`` and ``http``  thin transport layers; ``app`` composes them into one Starlette app.
"""
