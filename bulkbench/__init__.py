"""bulkbench: the shared, sans-I/O core.

Everything both engines (the SimPy model in ``sim/`` and the real server and
load tests) must agree on lives here: the wire protocol, the named limits,
server profiles, and the result schema. Nothing in this package touches a
socket, a file descriptor of a server, or a clock it does not get handed.
"""

__version__ = "0.1.0"
