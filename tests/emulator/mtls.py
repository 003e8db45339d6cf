"""The mTLS probe: a TLS port that requires a client certificate chaining to a
trusted CA, and answers ``GET /ping`` 200 only for an ACTIVE certificate the
portal knows (422 INVALID_CLIENT_CERT otherwise).

werkzeug does not hand the peer certificate to the application, so this one
port is a small threaded http.server whose sockets are wrapped with ``ssl``.
"""
import hashlib
import http.server
import json
import logging
import socket
import socketserver
import ssl

from .errors import GATEWAY, ApiError, correlation_id

LOG = logging.getLogger("emulator.mtls")
# OpenSSL X509_V_FLAG_NO_CHECK_TIME: validity is judged by the emulated clock in
# the handler, so time travel works both ways; the chain is still verified.
NO_CHECK_TIME = 0x200000
HANDSHAKE_TIMEOUT = 10


def client_auth_context(cert_path, key_path, client_ca_path):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_path, key_path)
    context.load_verify_locations(cafile=client_ca_path)
    context.verify_mode = ssl.CERT_REQUIRED
    context.verify_flags |= NO_CHECK_TIME
    return context


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mcdev-emulator-mtls"

    def setup(self):
        # The handshake runs here, in the connection's own thread, not in the accept loop.
        self.request.settimeout(HANDSHAKE_TIMEOUT)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        LOG.debug(format, *args)

    def _send(self, status, body, cid):
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Correlation-Id", cid)
        self.end_headers()
        self.wfile.write(data)

    def _answer(self):
        cid = correlation_id()
        self.server.faults.count("%s mtls%s" % (self.command, self.path.split("?")[0]))
        if self.path.split("?")[0] != "/ping":
            self._send(404, ApiError(404, "NOT_FOUND", "Only /ping is served here", GATEWAY).envelope(cid), cid)
            return
        der = self.request.getpeercert(binary_form=True)
        fingerprint = hashlib.sha256(der).hexdigest() if der else None
        row, status = self.server.portal.mtls_credential(fingerprint) if fingerprint else (None, None)
        if row is None or status != "ACTIVE":
            reason = "not registered" if row is None else status
            error = ApiError(422, "INVALID_CLIENT_CERT", "The client certificate is not valid (%s)" % reason,
                             GATEWAY)
            self._send(422, error.envelope(cid), cid)
            return
        self._send(200, {"status": "OK", "fingerprint": fingerprint, "credentialId": row["id"],
                         "environment": row["environment"]}, cid)

    do_GET = _answer  # noqa: N815  (http.server dispatches on do_<METHOD>)
    do_POST = _answer  # noqa: N815


class MtlsServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    """Accepts plain TCP, wraps each connection in TLS and handshakes in the worker thread."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address, context, portal, faults):
        self.ssl_context = context
        self.portal = portal
        self.faults = faults
        super().__init__(address, _Handler)

    def get_request(self):
        sock, address = self.socket.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, client_address):
        # A failed handshake (foreign or missing client certificate) is expected traffic.
        LOG.debug("mTLS connection from %s ended with an error", client_address, exc_info=True)
