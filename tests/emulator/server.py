"""Process wiring: state, PKI, the HTTPS API server, the mTLS probe, the ready file."""
import argparse
import json
import logging
import os
import secrets
import signal
import socket
import ssl
import sys
import threading
import time

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from .api import OAUTH1_PING, OAUTH2_PING, TOKEN_PATH, create_app
from .faults import FaultBoard
from .model import Portal
from .mtls import MtlsServer, client_auth_context
from .oauth1 import NonceCache, Verifier
from .oauth2 import TokenService
from .pki import Pki
from .store import Store
from .variants import DEFAULT as DEFAULT_VARIANT, VARIANTS

LOG = logging.getLogger("emulator")
HANDSHAKE_TIMEOUT = 10


class _ApiHandler(WSGIRequestHandler):
    """werkzeug's handler, with the TLS handshake moved into the worker thread and no access log."""

    def setup(self):
        self.request.settimeout(HANDSHAKE_TIMEOUT)
        self.request.do_handshake()
        super().setup()

    def log_request(self, code="-", size="-"):
        del code, size


class ApiServer(ThreadedWSGIServer):
    """werkzeug's threaded server; TLS is wrapped per connection so a slow client never blocks accept()."""

    request_queue_size = 256

    def __init__(self, host, port, app, context):
        super().__init__(host, port, app, handler=_ApiHandler)
        self.tls_context = context
        # werkzeug reads ssl_context to set wsgi.url_scheme to https.
        self.ssl_context = context

    def get_request(self):
        sock, address = self.socket.accept()
        # Headers and body go out in separate writes; without NODELAY, Nagle and delayed ACKs add latency.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return self.tls_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), address

    def handle_error(self, request, client_address):
        LOG.debug("connection from %s ended with an error", client_address, exc_info=True)


class EmulatorContext:  # pylint: disable=too-few-public-methods
    """Everything the Flask app needs, built once per process."""

    def __init__(self, portal, issuer_of, variant=DEFAULT_VARIANT):
        self.portal = portal
        self.variant = variant
        self.faults = FaultBoard()
        self.admin_token = secrets.token_urlsafe(24)
        self.nonces = NonceCache()
        self.developers_verifier = Verifier(portal.account_key, portal.now, portal.rules, self.nonces)
        self.probe_verifier = Verifier(portal.project_key, portal.now, portal.rules, self.nonces)
        secret = portal.store.get_meta("token_secret")
        if not secret:
            secret = secrets.token_hex(32)
            portal.store.set_meta("token_secret", secret)
        self.token_secret = secret
        self.tokens = TokenService(portal, bytes.fromhex(secret), issuer_of)

    def reset_caches(self):
        self.nonces.clear()
        # The token secret lives in the wiped meta table; keep it so issued tokens stay verifiable.
        self.portal.store.set_meta("token_secret", self.token_secret)


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback by default)")
    parser.add_argument("--port", type=int, default=0, help="HTTPS API port; 0 picks a free one")
    parser.add_argument("--mtls-port", type=int, default=0, help="mTLS probe port; 0 picks a free one")
    parser.add_argument("--state", required=True, help="SQLite state file; the PKI lives in <state>.pki/")
    parser.add_argument("--ready-file", required=True, help="JSON written once the ports accept connections")
    parser.add_argument("--rules", default=None, help="JSON object of rule overrides, or @path to a JSON file")
    parser.add_argument("--variant", default=DEFAULT_VARIANT, choices=sorted(VARIANTS),
                        help="serve a variant of the Developers API's paths and fields (tests/emulator/variants.py)")
    parser.add_argument("--log-level", default="WARNING")
    parser.add_argument("--exit-with-parent", action="store_true",
                        help="stop when the launching process dies (the test harness sets this, so no emulator outlives its test run)")
    return parser.parse_args(argv)


def load_rules(text):
    if not text:
        return {}
    if text.startswith("@"):
        with open(text[1:], encoding="utf-8") as handle:
            text = handle.read()
    rules = json.loads(text)
    if not isinstance(rules, dict):
        raise ValueError("--rules must be a JSON object")
    return rules


def write_ready_file(path, info):
    temporary = "%s.%d.tmp" % (path, os.getpid())
    with open(temporary, "w", encoding="utf-8") as handle:
        json.dump(info, handle, indent=2, sort_keys=True)
    os.replace(temporary, path)


def main(argv=None):  # pylint: disable=too-many-locals
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    started = time.time()
    state_path = os.path.abspath(args.state)
    os.makedirs(os.path.dirname(state_path), exist_ok=True)
    server_names = [args.host, "localhost", "127.0.0.1"] if args.host != "127.0.0.1" else ["127.0.0.1", "localhost"]
    pki = Pki(state_path + ".pki", server_names)
    store = Store(state_path)
    portal = Portal(store, pki, load_rules(args.rules))

    api_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    api_context.minimum_version = ssl.TLSVersion.TLSv1_2
    api_context.load_cert_chain(pki.server_cert_path, pki.server_key_path)

    origin = {}
    context = EmulatorContext(portal, lambda: portal.rules()["oauth2_issuer"] or origin["issuer"], args.variant)
    api_server = ApiServer(args.host, args.port, create_app(context), api_context)
    mtls_server = MtlsServer((args.host, args.mtls_port),
                             client_auth_context(pki.server_cert_path, pki.server_key_path, pki.client_ca_bundle_path),
                             portal, context.faults)
    host = "[%s]" % args.host if ":" in args.host else args.host
    base = "https://%s:%d" % (host, api_server.server_port)
    origin["issuer"] = base
    mtls_base = "https://%s:%d" % (host, mtls_server.server_address[1])
    # A short poll interval keeps SIGTERM-to-exit quick.
    threads = [threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, name=name, daemon=True)
               for name, server in (("api", api_server), ("mtls", mtls_server))]
    for thread in threads:
        thread.start()

    info = {
        "pid": os.getpid(),
        "host": args.host,
        "port": api_server.server_port,
        "mtls_port": mtls_server.server_address[1],
        "api_url": base + "/developers",
        "variant": args.variant,
        "admin_url": base + "/_admin",
        "mtls_url": mtls_base,
        "mtls_ping_url": mtls_base + "/ping",
        "oauth1_ping_url": base + OAUTH1_PING,
        "token_url": base + TOKEN_PATH,
        "issuer": base,
        "oauth2_ping_url": base + OAUTH2_PING,
        "ca_path": pki.ca_path,
        "external_ca_path": pki.external_ca_path,
        "external_ca_key_path": pki.external_ca_key_path,
        "client_ca_bundle_path": pki.client_ca_bundle_path,
        "state": state_path,
        "admin_token": context.admin_token,
        "startup_seconds": round(time.time() - started, 3),
    }
    stop = threading.Event()

    def request_stop(signum, frame):
        del signum, frame
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    parent = os.getppid()
    write_ready_file(args.ready_file, info)
    LOG.warning("emulator ready: %s (mTLS %s)", info["api_url"], info["mtls_url"])
    try:
        while not stop.wait(0.2):
            if args.exit_with_parent and os.getppid() != parent:
                LOG.warning("parent process %d is gone; stopping", parent)
                break
    finally:
        for server in (api_server, mtls_server):
            server.shutdown()
            server.server_close()
        store.close()
        try:
            os.unlink(args.ready_file)
        except OSError:
            pass
    return 0
