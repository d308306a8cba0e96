"""The app's page, served as its README serves it (``python3 -m http.server``), with a deeper listen queue.

``http.server`` listens with a backlog of 5 (``socketserver``'s ``request_queue_size``). Two Chromiums
opening their connections at once on two busy cores overflow it (the app's namespace counted 5-7
``TcpExtListenOverflows`` in every two-browser run); a dropped connection is retried after 1, 3, 7 s...,
and a page whose scripts wait that long never joins its canvas. The files and the answers are the same.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import sys

LISTEN_BACKLOG = 128
"""Connections the kernel holds for the server before it accepts them (Linux's default cap is 4096)."""


class PageServer(http.server.ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base class's name)
        """Every request on stderr would be hundreds of lines a drop, read by nobody."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("port", type=int)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--directory", required=True)
    args = parser.parse_args(argv)
    handler = functools.partial(QuietHandler, directory=args.directory)
    with PageServer((args.bind, args.port), handler) as server:
        server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
