"""Token auth on a real server: a token grants named canvases only, and nothing lands without one."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from bulkbench.auth import MAX_TOKEN_CHARS, TokenAuthority
from bulkbench.cli import main
from bulkbench.protocol import ErrorCode, Event, OpType, ProtocolError
from tests.conftest import ServerFactory
from tests.helpers import WsClient, canvas_of, image_bytes, node, sha256_hex, upload

SECRET = b"test-secret-0123456789abcdef"


@pytest.fixture
def authority() -> TokenAuthority:
    return TokenAuthority(SECRET)


@pytest.fixture
def server(start_server: ServerFactory, tmp_path: Path):
    secret_file = tmp_path / "secret"
    secret_file.write_bytes(SECRET + b"\n")
    return start_server("optimized", auth_secret_file=secret_file, emulation=False)


def _token(authority: TokenAuthority, *canvases: str, ttl: float = 600.0) -> str:
    return authority.mint(list(canvases), time.time() + ttl)


def _refusal(client: WsClient) -> dict:
    event, data = client.until(Event.ERROR, Event.CANVAS_JOINED)
    assert event == Event.ERROR, data
    return data


def _uploads(server) -> list[Path]:
    return sorted((server.data_dir / "uploads").glob("*"))


def test_token_grants_its_canvas_and_no_other(server, authority: TokenAuthority) -> None:
    token_a = _token(authority, "canvas-a")
    with httpx.Client(base_url=server.url, timeout=10,
                      headers={"Authorization": f"Bearer {_token(authority, '*')}"}) as admin:
        a = WsClient(server.ws_url, token=token_a)
        try:
            assert a.join("canvas-a")["canvas"]["nodes"] == []
            event, _ = a.op("op-a", OpType.NODE_CREATE, node(1))
            assert event == Event.OPERATION_ACK
            # the same socket asks for canvas-b: refused, and it stays where it was
            a.send(Event.JOIN_CANVAS, {"canvasId": "canvas-b"})
            assert _refusal(a)["code"] == ErrorCode.FORBIDDEN
            event, _ = a.op("op-b", OpType.NODE_CREATE, node(2))
            assert event == Event.OPERATION_ACK
        finally:
            a.close()
        assert sorted(n["id"] for n in admin.get("/api/canvases/canvas-a").json()["nodes"]) == ["n1", "n2"]
        assert admin.get("/api/canvases/canvas-b").status_code == 404  # never opened, never changed

    # a token in join_canvas itself works too; one for another canvas does not
    b = WsClient(server.ws_url)
    try:
        b.send(Event.JOIN_CANVAS, {"canvasId": "canvas-a", "token": _token(authority, "canvas-b")})
        assert _refusal(b)["code"] == ErrorCode.FORBIDDEN
        event, data = b.op("op-c", OpType.NODE_CREATE, node(3))
        assert (event, data["code"]) == (Event.OPERATION_REJECTED, ErrorCode.NOT_JOINED)
        b.send(Event.JOIN_CANVAS, {"canvasId": "canvas-b", "token": _token(authority, "canvas-b")})
        assert b.until(Event.CANVAS_JOINED)[1]["canvas"]["id"] == "canvas-b"
    finally:
        b.close()

    # reading a canvas over HTTP needs a token that grants it
    assert httpx.get(f"{server.url}/api/canvases/canvas-a", timeout=10).status_code == 401
    wrong = httpx.get(f"{server.url}/api/canvases/canvas-a", timeout=10,
                      headers={"Authorization": f"Bearer {_token(authority, 'canvas-b')}"})
    assert wrong.status_code == 403 and wrong.json()["error"]["code"] == ErrorCode.FORBIDDEN
    right = httpx.get(f"{server.url}/api/canvases/canvas-a", params={"token": token_a}, timeout=10)
    assert right.status_code == 200 and len(right.json()["nodes"]) == 2


@pytest.mark.parametrize("bad", ["none", "tampered", "expired", "other-secret", "garbage"])
def test_bad_tokens_are_refused_everywhere(server, authority: TokenAuthority, bad: str) -> None:
    good = _token(authority, "canvas-a")
    header, claims, signature = good.split(".")
    token = {
        "none": None,
        "tampered": f"{header}.{_token(authority, '*').split('.')[1]}.{signature}",  # widened claims
        "expired": _token(authority, "canvas-a", ttl=-1),
        "other-secret": _token(TokenAuthority(b"another-secret-of-enough-bytes"), "canvas-a"),
        "garbage": "v1.!!!.???",
    }[bad]
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    data = image_bytes(seed=5)
    refused = upload(httpx.Client(base_url=server.url, headers=headers, timeout=10), data)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == ErrorCode.UNAUTHORIZED
    assert _uploads(server) == []  # nothing landed
    assert httpx.get(f"{server.url}/api/canvases/canvas-a", headers=headers, timeout=10).status_code == 401

    client = WsClient(server.ws_url, token=token)
    try:
        client.send(Event.JOIN_CANVAS, {"canvasId": "canvas-a"})
        assert _refusal(client)["code"] == ErrorCode.UNAUTHORIZED
    finally:
        client.close()


def test_uploads_and_files_need_a_token_monitoring_does_not(server, authority: TokenAuthority) -> None:
    token = _token(authority, "canvas-a")
    data = image_bytes(seed=6)
    with httpx.Client(base_url=server.url, timeout=10) as anonymous:
        assert upload(anonymous, data).status_code == 401
        assert _uploads(server) == []
        stored = upload(httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"},
                                     timeout=10), data)
        assert stored.status_code == 200, stored.text
        assert stored.json()["hash"] == sha256_hex(data)
        url = stored.json()["url"]
        assert anonymous.get(url).status_code == 401
        assert anonymous.get(url, params={"token": token}).content == data  # <img src="...?token=">
        assert anonymous.get("/healthz").status_code == 200
        assert anonymous.get("/metrics").status_code == 200


def test_auth_off_needs_no_token(start_server: ServerFactory) -> None:
    server = start_server("optimized", emulation=False)
    client = WsClient(server.ws_url)
    try:
        client.join("open")
        assert client.op("o1", OpType.NODE_CREATE, node(1))[0] == Event.OPERATION_ACK
    finally:
        client.close()
    assert len(canvas_of(server, "open")["nodes"]) == 1


def test_token_command_mints_and_refuses_a_short_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        authority: TokenAuthority) -> None:
    secret = tmp_path / "secret"
    secret.write_bytes(SECRET)
    assert main(["token", "--secret-file", str(secret), "--canvas", "x", "--canvas", "y"]) == 0
    grant = authority.check(capsys.readouterr().out.strip(), time.time())
    assert grant.canvases == {"x", "y"} and grant.allows("y") and not grant.allows("z")
    secret.write_bytes(b"short")
    assert main(["token", "--secret-file", str(secret), "--canvas", "x"]) == 2
    assert "at least 16 bytes" in capsys.readouterr().err


def test_a_token_over_max_token_chars_is_refused_before_it_is_read(authority: TokenAuthority) -> None:
    long_token = "v1." + "a" * MAX_TOKEN_CHARS + ".b"
    try:
        authority.check(long_token, time.time())
    except ProtocolError as refused:
        assert refused.code == ErrorCode.UNAUTHORIZED and str(MAX_TOKEN_CHARS) in refused.message
    else:
        raise AssertionError("an over-long token was accepted")
    assert authority.check(_token(authority, "x"), time.time()).allows("x")  # an ordinary one still works
