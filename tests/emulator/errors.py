"""Mastercard's error envelope and the reason codes the emulator returns."""
import secrets
import time

GATEWAY = "Gateway"
DEVELOPERS_API = "DEVELOPERS_API"
DEVELOPERS_PLATFORM = "DEVELOPERS_PLATFORM"


def correlation_id():
    """Return an id shaped like the ones Mastercard puts in Details: <millis>-<hex>."""
    return "%d-%s" % (int(time.time() * 1000), secrets.token_hex(8))


class ApiError(Exception):
    """An error that becomes one Mastercard error envelope."""

    def __init__(self, status, reason_code, description, source=DEVELOPERS_API, recoverable=False, headers=None):
        super().__init__(description)
        self.status = status
        self.reason_code = reason_code
        self.description = description
        self.source = source
        self.recoverable = recoverable
        self.headers = dict(headers or {})

    def envelope(self, details):
        """The JSON body Mastercard sends for this error."""
        return {
            "Errors": {
                "Error": [
                    {
                        "Source": self.source,
                        "ReasonCode": self.reason_code,
                        "Description": self.description,
                        "Details": details,
                        "Recoverable": self.recoverable,
                    }
                ]
            }
        }


def gateway_error(status, reason_code, description, details=None):
    """A gateway error (before the API is reached); Details may carry the base string."""
    error = ApiError(status, reason_code, description, source=GATEWAY)
    error.gateway_details = details
    return error


def bad_request(description, reason_code="BAD_REQUEST"):
    return ApiError(400, reason_code, description)


def invalid_csr(description):
    return ApiError(400, "INVALID_CSR", description, source=DEVELOPERS_PLATFORM)


def invalid_key_type(description):
    return ApiError(400, "INVALID_KEY_TYPE", description, source=DEVELOPERS_PLATFORM)


def project_not_found(project_id):
    return ApiError(404, "PROJECT_NOT_FOUND", "Project %s not found" % project_id)


def credential_not_found(credential_id):
    return ApiError(404, "CREDENTIAL_NOT_FOUND", "Credential %s not found" % credential_id)


class OAuth2Error(Exception):
    """An RFC 6749 style error from the token endpoint or the DPoP resource ping."""

    def __init__(self, status, error, description, headers=None):
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.headers = dict(headers or {})
