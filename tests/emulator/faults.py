"""Fault injection and call counters, driven from the admin path.

A fault matches requests by route (an endpoint name such as
``create_credential``, a Flask rule such as
``/developers/projects/<project_id>/credentials``, a glob over the actual path,
or ``*``) and method. Each matching request, until ``count`` is used up, may be
delayed (``latency_ms``), answered with an error (``error_rate`` of them, with
``status`` and ``retry_after``), or processed and then left unanswered with the
connection closed (``drop_response_rate``). Random draws come from a generator
seeded per fault, so a test sees the same sequence every run.
"""
import collections
import fnmatch
import random
import threading

DEFAULT_STATUS = 503
REASONS = {
    408: "REQUEST_TIMEOUT",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_SERVER_ERROR",
    502: "BAD_GATEWAY",
    503: "SERVICE_UNAVAILABLE",
    504: "GATEWAY_TIMEOUT",
}


def _rate(spec, name, default):
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError("%s must be a number between 0 and 1" % name)
    return float(value)


def _non_negative_int(spec, name, default):
    value = spec.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("%s must be a non-negative integer" % name)
    return value


class Fault:
    """One validated fault rule with its own seeded random generator."""

    def __init__(self, spec):
        if not isinstance(spec, dict):
            raise ValueError("a fault is a JSON object")
        self.route = spec.get("route", "*")
        self.method = str(spec.get("method", "*")).upper()
        if not isinstance(self.route, str) or not self.route:
            raise ValueError("route must be a non-empty string")
        self.status = _non_negative_int(spec, "status", DEFAULT_STATUS)
        if not 400 <= self.status <= 599:
            raise ValueError("status must be a 4xx or 5xx code")
        # A fault that names a status but no rate fails every matching call.
        self.error_rate = _rate(spec, "error_rate", 1.0 if "status" in spec and "drop_response_rate" not in spec
                                and "latency_ms" not in spec else 0.0)
        self.retry_after = _non_negative_int(spec, "retry_after", 1 if self.status == 429 else None)
        self.latency_ms = _non_negative_int(spec, "latency_ms", 0)
        if self.latency_ms > 600000:
            raise ValueError("latency_ms must be at most 600000 (10 minutes)")
        self.drop_response_rate = _rate(spec, "drop_response_rate", 0.0)
        self.remaining = _non_negative_int(spec, "count", None)
        self.seed = spec.get("seed", 0)
        self.random = random.Random(self.seed)
        self.applied = 0

    def matches(self, endpoint, rule, path, method):
        if self.method not in ("*", method):
            return False
        return self.route in ("*", endpoint, rule) or fnmatch.fnmatchcase(path, self.route)

    def view(self):
        return {
            "route": self.route, "method": self.method, "status": self.status, "error_rate": self.error_rate,
            "retry_after": self.retry_after, "latency_ms": self.latency_ms,
            "drop_response_rate": self.drop_response_rate, "count": self.remaining, "seed": self.seed,
            "applied": self.applied,
        }


class Decision:
    """What to do with one request."""

    def __init__(self, latency_ms=0, error_status=None, retry_after=None, drop=False):
        self.latency_ms = latency_ms
        self.error_status = error_status
        self.retry_after = retry_after
        self.drop = drop


class FaultBoard:
    """The active faults and the per-route call counters."""

    def __init__(self):
        self._faults = []
        self._counters = collections.Counter()
        self._lock = threading.Lock()

    def add(self, spec):
        fault = Fault(spec)
        with self._lock:
            self._faults.append(fault)
        return fault.view()

    def clear(self):
        with self._lock:
            self._faults = []

    def list(self):
        with self._lock:
            return [fault.view() for fault in self._faults]

    def count(self, key):
        with self._lock:
            self._counters[key] += 1

    def counters(self):
        with self._lock:
            return dict(self._counters)

    def reset_counters(self):
        with self._lock:
            self._counters.clear()

    def decide(self, endpoint, rule, path, method):
        """Draw this request's fate from the first matching fault that has uses left."""
        with self._lock:
            for fault in self._faults:
                if fault.remaining == 0 or not fault.matches(endpoint, rule, path, method):
                    continue
                error = fault.error_rate > 0 and fault.random.random() < fault.error_rate
                drop = not error and fault.drop_response_rate > 0 and fault.random.random() < fault.drop_response_rate
                if not (error or drop or fault.latency_ms):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                fault.applied += 1
                return Decision(fault.latency_ms, fault.status if error else None,
                                fault.retry_after if error else None, drop)
        return Decision()
