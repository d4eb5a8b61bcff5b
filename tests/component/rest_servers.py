"""Small servers on 127.0.0.1 for the REST connector's tests: odd answers, TLS, a file store."""

from __future__ import annotations

import contextlib
import datetime
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.local_http import Handler, Server, running, serving

XML = (
    b'<?xml version="1.0"?><order id="7" xmlns:ns="urn:x"><ns:item sku="a">Pen</ns:item>'
    b'<ns:item sku="b">Ink</ns:item><note>fragile</note></order>'
)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


STORE_TOKEN = "store-token-never-shown"
"""The attachment storage's token in the component tests (tests/component/conftest.py)."""

JSON = [("Content-Type", "application/json")]
Reply = tuple[int, bytes, list[tuple[str, str]]]


def _cookies(query: dict[str, str], server: Server) -> Reply:
    twice = [("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2; Path=/"), ("X-One", "single")]
    return 200, b"{}", JSON + twice


def _slow(query: dict[str, str], server: Server) -> Reply:
    time.sleep(float(query.get("seconds", "1")))
    return 200, b"{}", JSON


def _flaky(query: dict[str, str], server: Server) -> Reply:
    """Fails ``times`` times (``status``, default 503), then answers 200."""
    with server.lock:
        count = sum(1 for path, _ in server.seen if path == "/flaky")  # type: ignore[attr-defined]
    if count <= int(query.get("times", "2")):
        return int(query.get("status", "503")), b"{}", [("Retry-After", "0")]
    return 200, b'{"ok": true}', JSON


_FIXED: dict[str, Reply] = {
    "/xml": (200, XML, [("Content-Type", "application/xml; charset=utf-8")]),
    "/notype-json": (200, b'{"untyped": true}', []),
    "/notype-text": (200, b"just words", []),
    "/text": (
        200,
        "caf\u00e9".encode("latin-1"),
        [("Content-Type", "text/plain; charset=latin-1")],
    ),
    "/empty": (200, b"", JSON),
    "/png": (200, PNG, [("Content-Type", "image/png")]),
    "/bad-xml": (200, b"<order><open>", [("Content-Type", "application/xml")]),
    "/bad-json": (200, b'{"cut": ', JSON),
    "/list": (200, b'[{"n": 1}, {"n": 2}, {"n": 3}]', JSON),
    "/csv": (200, b"a,b\n1,2\n", [("Content-Type", "text/csv")]),
}
_ROUTES = {"/cookies": _cookies, "/slow": _slow, "/flaky": _flaky}


def _by_prefix(path: str, query: dict[str, str]) -> Reply:
    last = path.rsplit("/", 1)[-1]
    if path.startswith("/redirect/"):
        if last == "0":
            return 200, b'{"arrived": true}', JSON
        return 302, b"", [("Location", f"/redirect/{int(last) - 1}")]
    if path.startswith("/files/"):
        size = int(query.get("bytes", "1000"))
        disposition = ("Content-Disposition", 'attachment; filename="report.pdf"')
        return (
            200,
            bytes(i % 251 for i in range(size)),
            [("Content-Type", "application/pdf"), disposition],
        )
    if path.startswith("/status/"):
        headers = list(JSON)
        if "retry_after" in query:
            headers.append(("Retry-After", query["retry_after"]))
        return int(last), b'{"problem": "as asked"}', headers
    return 404, b"{}", JSON


class Answers(Handler):
    """Answers by path; every request is recorded (path, time, Authorization) for the tests."""

    def answer(self) -> None:
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        server: Server = self.server  # type: ignore[assignment]
        with server.lock:
            server.seen.append((parts.path, time.monotonic()))  # type: ignore[attr-defined]
            server.authorizations.append(self.headers.get("Authorization"))  # type: ignore[attr-defined]
        route = _ROUTES.get(parts.path)
        if route is not None:
            reply = route(query, server)
        else:
            reply = _FIXED.get(parts.path) or _by_prefix(parts.path, query)
        status, body, headers = reply
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@contextlib.contextmanager
def answers() -> Iterator[Server]:
    with serving(Answers, seen=[], authorizations=[]) as server:
        yield server


@contextlib.contextmanager
def tls_answers(folder: Path) -> Iterator[Server]:
    """The same answers over HTTPS, with a self-signed certificate no client trusts."""
    cert, key = _self_signed(folder)
    server = Server(Answers, seen=[], authorizations=[])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    with running(server):
        yield server


def _self_signed(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def stored(store: Any, data: bytes, kind: str = "application/octet-stream") -> str:
    """Put ``data`` in the attachment storage; the URL a step reads it from."""
    answer = requests.post(
        f"{store.url}/objects",
        data=data,
        headers={"Authorization": f"Bearer {STORE_TOKEN}", "Content-Type": kind},
        timeout=10,
    )
    answer.raise_for_status()
    return f"{store.url}/objects/{answer.json()['objectId']}?storage_type=maester"
