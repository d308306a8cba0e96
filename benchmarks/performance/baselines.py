"""Bare baselines the benchmarks measure our server against, in the same run, as child processes.

- ``echo``: a bare ``websockets`` server that sends every frame back (the floor for a round trip);
- ``upload``: a minimal Starlette endpoint that streams a request body to a file (the floor for an
  upload), under the same uvicorn settings as the reference server.

Run: ``python -m benchmarks.performance.baselines echo|upload --port 0 --data-dir DIR``; prints the URL line
the same way ``bulkbench serve`` does, so ``ServerProcess`` can start either.
"""

from __future__ import annotations

import argparse
import uuid
from pathlib import Path

import uvicorn
import uvloop
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from websockets.asyncio.server import ServerConnection, serve

from reference_server.app import bind


async def _echo(port: int) -> None:
    async def handler(ws: ServerConnection) -> None:
        async for message in ws:
            await ws.send(message)

    sock = bind("127.0.0.1", port)
    async with serve(handler, sock=sock, max_size=None) as server:
        print(f"baseline echo on http://127.0.0.1:{sock.getsockname()[1]} (bare websockets)", flush=True)
        await server.serve_forever()


def _upload_app(data_dir: Path) -> Starlette:
    async def receive(request: Request) -> JSONResponse:
        path = data_dir / uuid.uuid4().hex
        size = 0
        with open(path, "wb") as out:
            async for chunk in request.stream():
                out.write(chunk)
                size += len(chunk)
        return JSONResponse({"size": size})

    return Starlette(routes=[Route("/api/upload", receive, methods=["POST"])])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["echo", "upload"])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--data-dir", default="bench-results/baseline")
    args = parser.parse_args()
    if args.kind == "echo":
        uvloop.run(_echo(args.port))
        return
    data_dir = Path(args.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    sock = bind("127.0.0.1", args.port)
    sock.listen(2048)
    print(f"baseline upload on http://127.0.0.1:{sock.getsockname()[1]} (minimal Starlette)", flush=True)
    config = uvicorn.Config(_upload_app(data_dir), log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()
