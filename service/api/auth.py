"""API keys: ``Authorization: Bearer <key>`` on every request once keys are configured.

A key has one role, and each role includes the ones before it:

- ``read``: look at models, versions, datasets and jobs, and compute with them (forward,
  gradient, explain, diagrams, the stateless endpoints, Open Inference Protocol inference);
- ``train``: also change parameters (train-step, ``PUT parameters``, rollback), datasets and
  training jobs;
- ``admin``: also create and delete models.

``ROUTE_ROLES`` maps each operation (method and route template) to its role, and is the only
place that does; an operation missing from it needs ``read`` when it only reads (GET, HEAD,
OPTIONS) and ``admin`` otherwise, so that a new write endpoint is closed until it is mapped.

The check is a pure ASGI middleware that decides from the method, the path and the
``Authorization`` header alone, before routing and before a byte of the body is read: 401 (with
``WWW-Authenticate: Bearer``) without a valid key, 403 for a key without the role, both
problem responses. Keys are held as SHA-256 digests, compared in constant time with every
configured key, and never logged or echoed.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from service.api.problems import Forbidden, Unauthorized, respond
from service.settings import Settings

Role = Literal["read", "train", "admin"]
ROLES: tuple[Role, ...] = get_args(Role)
RANK: dict[Role, int] = {role: rank for rank, role in enumerate(ROLES)}
BY_NAME: dict[str, Role] = {role: role for role in ROLES}
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REALM = "backprop-service"

# Method and route template of every operation that needs more than its default.
ROUTE_ROLES: dict[tuple[str, str], Role] = {
    # the registry
    ("POST", "/v1/models"): "admin",
    ("DELETE", "/v1/models/{name}"): "admin",
    ("PUT", "/v1/models/{name}/parameters"): "train",
    ("POST", "/v1/models/{name}/rollback"): "train",
    ("POST", "/v1/models/{name}/train-step"): "train",
    # compute on a stored model, and on an inline one (nothing is stored)
    ("POST", "/v1/models/{name}/forward"): "read",
    ("POST", "/v1/models/{name}/gradient"): "read",
    ("POST", "/v1/models/{name}/explain"): "read",
    ("POST", "/v1/models/{name}/input-gradient"): "read",
    ("POST", "/v1/models/{name}/gradient-check"): "read",
    ("POST", "/v1/forward"): "read",
    ("POST", "/v1/gradient"): "read",
    ("POST", "/v1/input-gradient"): "read",
    ("POST", "/v1/train-step"): "read",
    # datasets and training jobs
    ("POST", "/v1/datasets"): "train",
    ("DELETE", "/v1/datasets/{name}"): "train",
    ("POST", "/v1/models/{name}/train"): "train",
    ("POST", "/v1/jobs/{job_id}/cancel"): "train",
    ("POST", "/v1/jobs/{job_id}/resume"): "train",
    # Open Inference Protocol
    ("POST", "/v2/models/{name}/infer"): "read",
    ("POST", "/v2/models/{name}/versions/{version}/infer"): "read",
}

HEALTH_PATHS = frozenset({"/healthz", "/readyz", "/v2/health/live", "/v2/health/ready"})
METRICS_PATHS = frozenset({"/metrics"})
DOCS_PATHS = frozenset({"/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json", "/playground"})
# The docs UI's assets and the playground's page files (its API calls need a key like any).
DOCS_PREFIXES = ("/static/docs/", "/static/playground/")

# RFC 6750 b64token: what a Bearer credential may contain.
TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
SEGMENT = re.compile(r"\{[^}/]+\}")


def _template_regex(template: str) -> re.Pattern[str]:
    parts = SEGMENT.split(template)
    return re.compile("[^/]+".join(re.escape(part) for part in parts) + r"\Z")


_ROUTES: list[tuple[str, re.Pattern[str], Role]] = [
    (method, _template_regex(template), role) for (method, template), role in ROUTE_ROLES.items()
]


def required_role(method: str, path: str) -> Role:
    """The role an operation needs: from ``ROUTE_ROLES``, else by its method."""
    method = "GET" if method == "HEAD" else method
    for route_method, pattern, role in _ROUTES:
        if route_method == method and pattern.match(path):
            return role
    return "read" if method in READ_METHODS else "admin"


class InvalidApiKeys(ValueError):
    """The configured keys are malformed; the message never contains a key."""


def parse_keys(entries: Iterable[str], source: str) -> dict[str, Role]:
    """``key:role`` entries (blank ones skipped) as a mapping of key to role."""
    keys: dict[str, Role] = {}
    for number, entry in enumerate(entries, start=1):
        entry = entry.strip()
        if not entry:
            continue
        key, sep, role = entry.rpartition(":")
        key, role = key.strip(), role.strip()
        where = f"entry {number} of {source}"
        if not sep or not key:
            raise InvalidApiKeys(f"{where} is not of the form key:role")
        if role not in BY_NAME:
            raise InvalidApiKeys(f"{where} has the role {role!r}; roles are {', '.join(ROLES)}")
        if not TOKEN.fullmatch(key):
            raise InvalidApiKeys(
                f"{where}: a key may hold only letters, digits and -._~+/ (then = signs), "
                "the characters of a Bearer token"
            )
        if key in keys and keys[key] != role:
            raise InvalidApiKeys(f"{where} repeats an earlier key with another role")
        keys[key] = BY_NAME[role]
    return keys


def load_keys(settings: Settings) -> dict[str, Role]:
    """The keys of ``BACKPROP_API_KEYS`` (comma-separated) and ``BACKPROP_API_KEYS_FILE`` (one
    per line, ``#`` comments); InvalidApiKeys if either is malformed or the file unreadable."""
    keys = parse_keys(settings.api_keys.get_secret_value().split(","), "BACKPROP_API_KEYS")
    path = settings.api_keys_file
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise InvalidApiKeys(f"BACKPROP_API_KEYS_FILE: cannot read {path}: {reason}") from None
        lines = [line.split("#", 1)[0] for line in text.splitlines()]
        for key, role in parse_keys(lines, f"BACKPROP_API_KEYS_FILE {path}").items():
            if keys.get(key, role) != role:
                raise InvalidApiKeys(
                    "a key of BACKPROP_API_KEYS_FILE has another role in BACKPROP_API_KEYS"
                )
            keys[key] = role
    return keys


def public_paths(settings: Settings) -> frozenset[str]:
    """The paths served without a key, as the settings choose."""
    paths: set[str] = set()
    if settings.public_health:
        paths |= HEALTH_PATHS
    if settings.public_metrics:
        paths |= METRICS_PATHS
    if settings.public_docs:
        paths |= DOCS_PATHS
    return frozenset(paths)


def _digest(key: str | bytes) -> bytes:
    data = key.encode() if isinstance(key, str) else key
    return hashlib.sha256(data).digest()


class ApiKeys:
    """Pure ASGI: authenticate and authorise every HTTP request (see the module docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        keys: Mapping[str, Role],
        public: frozenset[str],
        public_docs: bool,
    ) -> None:
        self.app = app
        self.digests = [(_digest(key), role) for key, role in keys.items()]
        self.public = public
        self.public_docs = public_docs

    def identify(self, token: bytes | None) -> Role | None:
        """The role of the key ``token``, comparing its digest with every key's in constant
        time (no early exit, so timing tells neither whether nor which key matched)."""
        if token is None:
            return None
        candidate = _digest(token)
        found: Role | None = None
        for digest, role in self.digests:
            if hmac.compare_digest(candidate, digest):
                found = role
        return found

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.digests:
            await self.app(scope, receive, send)
            return
        path = _route_path(scope)
        if path in self.public or (self.public_docs and path.startswith(DOCS_PREFIXES)):
            await self.app(scope, receive, send)
            return
        token, malformed = _bearer(scope)
        role = self.identify(token)
        if role is None:
            if token is None and not malformed:
                detail = "this server needs an API key: send Authorization: Bearer <key>"
                challenge = f'Bearer realm="{REALM}"'
            else:
                detail = "the API key is not valid (send Authorization: Bearer <key>)"
                challenge = f'Bearer realm="{REALM}", error="invalid_token"'
            response = respond(Unauthorized(detail, challenge), scope.get("path"))
            await response(scope, receive, send)
            return
        needed = required_role(scope["method"], path)
        if RANK[role] < RANK[needed]:
            refused = Forbidden(
                f"{scope['method']} {path} needs the {needed} role; this key has the {role} role",
                f'Bearer realm="{REALM}", error="insufficient_scope", scope="{needed}"',
            )
            await respond(refused, scope.get("path"))(scope, receive, send)
            return
        scope.setdefault("state", {})["role"] = role
        await self.app(scope, receive, send)


def _route_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        return path[len(root) :] or "/"
    return path


def _bearer(scope: Scope) -> tuple[bytes | None, bool]:
    """The Bearer credential of the request, and whether an Authorization header was there but
    not of that form."""
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credential = value.strip().partition(b" ")
            credential = credential.strip()
            if scheme.lower() == b"bearer" and credential:
                return credential, False
            return None, True
    return None, False


def install(app: FastAPI, settings: Settings, keys: Mapping[str, Role]) -> None:
    """Add the middleware when keys are configured (without keys every request may do
    everything, and a layer that only passes requests on would cost each one a call)."""
    if not keys:
        return
    app.add_middleware(
        ApiKeys, keys=keys, public=public_paths(settings), public_docs=settings.public_docs
    )


def document(spec: dict[str, Any], settings: Settings) -> None:
    """Describe the scheme in an OpenAPI spec: the bearer scheme, and on every operation the
    role it needs (``x-required-role``) and its 401 and 403 problem responses."""
    spec.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key, `Authorization: Bearer <key>`, needed once the server has "
        "keys (BACKPROP_API_KEYS or BACKPROP_API_KEYS_FILE). Each key has a role: `read`, "
        "`train` (and read) or `admin` (and train); each operation's `x-required-role` names "
        "the one it needs.",
    }
    problem_ref = {"$ref": "#/components/schemas/Problem"}
    public = public_paths(settings)
    keyed = bool(settings.api_keys.get_secret_value()) or settings.api_keys_file is not None
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            if path in public:
                operation["security"] = []
                continue
            # Without keys the server serves anyone: `{}` documents that anonymous access.
            operation["security"] = [{"bearer": []}] if keyed else [{"bearer": []}, {}]
            operation["x-required-role"] = required_role(method.upper(), path)
            responses = operation.setdefault("responses", {})
            for status, description in (
                ("401", "No valid API key (when the server has keys)"),
                ("403", "The API key lacks the role this operation needs"),
            ):
                responses[status] = {
                    "description": description,
                    "content": {"application/problem+json": {"schema": problem_ref}},
                }
