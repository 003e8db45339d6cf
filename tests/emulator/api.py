"""The Flask application: Developers API, OAuth probes, token endpoint, admin path."""
import hmac
import ipaddress
import json
import logging
import math
import socket
import time

from flask import Flask, g, jsonify, request
from werkzeug.exceptions import HTTPException

from .errors import ApiError, GATEWAY, OAuth2Error, bad_request, correlation_id
from .faults import REASONS
from .variants import shape_of

DROP_KEY = "emulator.drop_response"
LOG = logging.getLogger("emulator")
# Paths the OAuth 1.0a gateway guards, and which key registry it checks.
DEVELOPERS_PREFIX = "/developers/"
OAUTH1_PING = "/probe/oauth1/ping"
OAUTH2_PING = "/probe/oauth2/ping"
TOKEN_PATH = "/oauth/token"


class DropResponse:
    """WSGI wrapper: when a fault says so, let the app commit, then close the connection unanswered."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        def start_or_hold(status, headers, exc_info=None):
            if environ.get(DROP_KEY):
                return lambda data: None
            return start_response(status, headers, exc_info)

        result = self.app(environ, start_or_hold)
        if not environ.get(DROP_KEY):
            return result
        if hasattr(result, "close"):
            result.close()
        connection = environ.get("werkzeug.socket")
        if connection is not None:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        # werkzeug treats ConnectionError as "client went away" and writes nothing.
        raise ConnectionAbortedError("response dropped by fault injection")


def _json_body(required=True):
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise bad_request("A JSON request body is required")
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as error:
        raise bad_request("Malformed JSON in request body: %s" % error) from error


def _is_loopback(address):
    try:
        return ipaddress.ip_address((address or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def create_app(context):  # pylint: disable=too-many-locals,too-many-statements
    """Build the app around an EmulatorContext (portal, verifiers, token service, faults, urls)."""
    portal = context.portal
    faults = context.faults
    shape = shape_of(context.variant)
    alias_field = shape["alias_field"]
    app = Flask("mcdev_emulator")
    app.config["MAX_CONTENT_LENGTH"] = portal.rules()["max_body_bytes"]
    app.json.sort_keys = False

    @app.before_request
    def gateway():
        g.correlation_id = correlation_id()
        path = request.path
        if path.startswith("/_admin"):
            if not _is_loopback(request.remote_addr):
                raise ApiError(403, "FORBIDDEN", "The admin path answers loopback clients only")
            token = request.headers.get("X-Admin-Token", "")
            if not hmac.compare_digest(token.encode("utf-8"), context.admin_token.encode("utf-8")):
                raise ApiError(401, "UNAUTHORIZED", "X-Admin-Token is missing or wrong")
            return
        rule = request.url_rule.rule if request.url_rule else "<unmatched>"
        faults.count("%s %s" % (request.method, rule))
        decision = faults.decide(request.endpoint or "", rule, path, request.method)
        if decision.latency_ms:
            time.sleep(decision.latency_ms / 1000.0)
        if decision.error_status:
            headers = {"Retry-After": str(decision.retry_after)} if decision.retry_after is not None else {}
            raise ApiError(decision.error_status, REASONS.get(decision.error_status, "INJECTED_FAULT"),
                           "Injected fault (HTTP %d)" % decision.error_status, source=GATEWAY,
                           recoverable=True, headers=headers)
        if decision.drop:
            request.environ[DROP_KEY] = True
        length = request.content_length
        if length is not None and length > portal.rules()["max_body_bytes"]:
            raise ApiError(413, "REQUEST_ENTITY_TOO_LARGE",
                           "The request body exceeds %d bytes" % portal.rules()["max_body_bytes"])
        if path.startswith(DEVELOPERS_PREFIX):
            g.account_id = _verify_oauth1(context.developers_verifier)
        elif path == OAUTH1_PING:
            g.probe_key = _verify_oauth1(context.probe_verifier)

    def _verify_oauth1(verifier):
        # The target as it was on the request line: Werkzeug's request.path is already percent-decoded.
        target = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
        return verifier.verify(
            request.method, "https", request.host, target, request.get_data(cache=True),
            request.headers.get("Authorization"),
        )

    @app.after_request
    def correlate(response):
        response.headers["Correlation-Id"] = getattr(g, "correlation_id", None) or correlation_id()
        return response

    @app.errorhandler(ApiError)
    def api_error(error):
        details = getattr(error, "gateway_details", None) or g.get("correlation_id")
        response = jsonify(error.envelope(details))
        response.status_code = error.status
        for name, value in error.headers.items():
            response.headers[name] = value
        return response

    @app.errorhandler(OAuth2Error)
    def oauth2_error(error):
        response = jsonify({"error": error.error, "error_description": error.description})
        response.status_code = error.status
        response.headers["Cache-Control"] = "no-store"
        for name, value in error.headers.items():
            response.headers[name] = value
        return response

    @app.errorhandler(HTTPException)
    def http_error(error):
        reasons = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED", 413: "REQUEST_ENTITY_TOO_LARGE"}
        return api_error(ApiError(error.code or 400, reasons.get(error.code, "BAD_REQUEST"),
                                  error.description or error.name))

    @app.errorhandler(Exception)
    def unexpected(error):
        # Bad input must never get here; this keeps even a bug inside the envelope.
        LOG.exception("unhandled error: %s", error)
        return api_error(ApiError(500, "INTERNAL_SERVER_ERROR", "Unexpected error in the emulator"))

    # --- Developers API -----------------------------------------------------------
    @app.get("/developers/projects/<project_id>")
    def get_project(project_id):
        return jsonify(portal.project_view(portal.project_for(g.account_id, project_id)))

    @app.post("/developers/projects/<project_id>/oauth2-upgrade")
    def upgrade_project(project_id):
        _json_body(required=False)
        return jsonify(portal.upgrade_project(g.account_id, project_id))

    def out(view):
        """A credential record in the variant's names."""
        if alias_field != "alias" and isinstance(view, dict) and "alias" in view:
            view = dict(view)
            view[alias_field] = view.pop("alias")
        return view

    def list_credentials(project_id):
        page = portal.list_credentials(g.account_id, project_id, request.args)
        return jsonify(dict(page, items=[out(item) for item in page["items"]]))

    app.add_url_rule(shape["list_path"], "list_credentials", list_credentials, methods=["GET"])

    @app.post("/developers/projects/<project_id>/credentials")
    def create_credential(project_id):
        body = _json_body()
        if alias_field != "alias" and isinstance(body, dict):
            body = {name: value for name, value in body.items() if name != "alias"}
            if alias_field not in body:
                raise bad_request("%s is required (1-64 characters)" % alias_field)
            body["alias"] = body.pop(alias_field)
        return jsonify(out(portal.create_credential(g.account_id, project_id, body))), 201

    @app.get("/developers/projects/<project_id>/credentials/<credential_id>")
    def get_credential(project_id, credential_id):
        return jsonify(out(portal.credential_view(portal.credential_for(g.account_id, project_id, credential_id))))

    @app.patch("/developers/projects/<project_id>/credentials/<credential_id>")
    def activate_credential(project_id, credential_id):
        return jsonify(out(portal.activate(g.account_id, project_id, credential_id, _json_body())))

    @app.delete("/developers/projects/<project_id>/credentials/<credential_id>")
    def revoke_credential(project_id, credential_id):
        return jsonify(out(portal.revoke(g.account_id, project_id, credential_id)))

    @app.post("/developers/projects/<project_id>/credentials/<credential_id>/renewal")
    def renew_credential(project_id, credential_id):
        _json_body(required=False)
        return jsonify(out(portal.renew(g.account_id, project_id, credential_id)))

    @app.get("/developers/projects/<project_id>/credentials/<credential_id>/certificate")
    def credential_certificate(project_id, credential_id):
        return jsonify(portal.certificate_of(g.account_id, project_id, credential_id))

    # --- probes -----------------------------------------------------------
    @app.route(OAUTH1_PING, methods=["GET", "POST"])
    def oauth1_ping():
        row = g.probe_key
        return jsonify({"status": "OK", "credentialId": row["id"], "consumerKey": row["consumer_key"],
                        "kid": row["kid"], "fingerprint": row["fingerprint"]})

    @app.post(TOKEN_PATH)
    def token():
        body = context.tokens.token(request.form, request.headers.get("Content-Type"),
                                    request.headers.get("DPoP"), request.base_url)
        response = jsonify(body)
        response.headers["Cache-Control"] = "no-store"
        response.headers["DPoP-Nonce"] = context.tokens.new_nonce()
        return response

    @app.route(OAUTH2_PING, methods=["GET", "POST"])
    def oauth2_ping():
        claims = context.tokens.check_resource(request.headers.get("Authorization"), request.headers.get("DPoP"),
                                               request.method, request.base_url)
        response = jsonify({"status": "OK", "clientId": claims["client_id"], "kid": claims["kid"],
                            "credentialId": claims["credential_id"], "scope": claims.get("scope")})
        response.headers["DPoP-Nonce"] = context.tokens.new_nonce()
        return response

    # --- admin -------------------------------------------------------------------
    @app.get("/_admin/health")
    def admin_health():
        return jsonify({"status": "OK", "now": portal.now(), "clock_offset": portal.clock_offset})

    @app.post("/_admin/accounts")
    def admin_accounts():
        body = _json_body(required=False)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object")
        return jsonify(portal.create_account(body.get("name"), body.get("p12_password"))), 201

    @app.post("/_admin/projects")
    def admin_projects():
        body = _json_body(required=False)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object")
        return jsonify(portal.create_project(body)), 201

    @app.get("/_admin/projects/<project_id>")
    def admin_project(project_id):
        return jsonify(portal.project_view(portal.project_for(None, project_id)))

    @app.post("/_admin/projects/<project_id>/credentials")
    def admin_seed_credential(project_id):
        return jsonify(portal.seed_credential(project_id, _json_body(required=False))), 201

    # The portal, as a person uses it in a browser: the same rules as the Developers API, no OAuth 1.0a.
    @app.get("/_admin/portal/projects/<project_id>/credentials")
    def admin_portal_screen(project_id):
        return jsonify(portal.list_credentials(None, project_id, request.args))

    @app.post("/_admin/portal/projects/<project_id>/credentials")
    def admin_portal_add(project_id):
        body = _json_body()
        return jsonify(portal.create_credential(None, project_id, body)), 201

    @app.post("/_admin/portal/projects/<project_id>/credentials/<credential_id>/revoke")
    def admin_portal_revoke(project_id, credential_id):
        body = _json_body()
        if not isinstance(body, dict) or body.get("confirm") != "REVOKE":
            raise bad_request('Type REVOKE to confirm: {"confirm": "REVOKE"}')
        return jsonify(portal.revoke(None, project_id, credential_id))

    @app.route("/_admin/clock", methods=["GET", "POST"])
    def admin_clock():
        if request.method == "POST":
            body = _json_body()
            offset = body.get("offset_seconds") if isinstance(body, dict) else None
            if isinstance(offset, bool) or not isinstance(offset, (int, float)) or math.isnan(offset):
                raise bad_request("offset_seconds must be a number")
            portal.set_clock_offset(offset)
        return jsonify({"offset_seconds": portal.clock_offset, "now": portal.now(),
                        "now_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(portal.now()))})

    @app.route("/_admin/faults", methods=["GET", "POST", "DELETE"])
    def admin_faults():
        if request.method == "POST":
            body = _json_body()
            specs = body if isinstance(body, list) else [body]
            try:
                for spec in specs:
                    faults.add(spec)
            except ValueError as error:
                raise bad_request(str(error)) from error
        elif request.method == "DELETE":
            faults.clear()
        return jsonify({"faults": faults.list()})

    @app.get("/_admin/counters")
    def admin_counters():
        return jsonify(faults.counters())

    @app.post("/_admin/reset")
    def admin_reset():
        body = _json_body(required=False)
        scope = body.get("scope", "all") if isinstance(body, dict) else "all"
        if scope not in ("all", "counters", "faults"):
            raise bad_request("scope must be all, counters or faults")
        if scope in ("all", "counters"):
            faults.reset_counters()
        if scope in ("all", "faults"):
            faults.clear()
        if scope == "all":
            portal.reset()
            context.reset_caches()
        return jsonify({"reset": scope})

    @app.route("/_admin/rules", methods=["GET", "POST"])
    def admin_rules():
        if request.method == "POST":
            body = _json_body()
            if not isinstance(body, dict):
                raise bad_request("The request body must be a JSON object of rule names and values")
            try:
                portal.update_rules(body)
            except ValueError as error:
                raise bad_request(str(error)) from error
        return jsonify(portal.rules())

    return DropResponse(app)
