"""Real load: the strategies of ``bulkbench.strategies`` driven for real under gevent, inside Locust.

- ``wsclient``  one drop's WebSocket: a reader greenlet matching answers by operationId;
- ``browser``   the browser's HTTP side: 6 connections per host, uploads and GETs;
- ``driver``    performs a strategy's effects with those (the real counterpart of ``sim.driver``);
- ``locustfile`` the Locust user (one drop per task), usable interactively, headless, distributed;
- ``network``   a network namespace whose loopback is shaped like a browser's uplink;
- ``run``       ``bulkbench run``: server, network, Locust, results directory.
"""
