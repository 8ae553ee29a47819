"""A small synchronous client of the officer API, used by the CLI and the demo.

Problems returned by the node come back as :class:`RemoteError` with the node's stable code, which the CLI
reports the same way as a local named error.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from protocol.errors import ConfigError


class RemoteError(Exception):
    """The node refused the request with a problem document: its stable code, HTTP status and detail."""

    def __init__(self, code: str, status: int, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status
        self.detail = detail


class Client:
    """Officer API client bound to one node and one token."""

    def __init__(self, base_url: str, token: str | None, timeout: float = 30.0) -> None:
        parsed = urllib.parse.urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError("node URL must be http(s)://host:port")
        self.base = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes, dict[str, str]]:
        """Send one request (a ``bytes`` body as it is, of ``content_type``; anything else as JSON); raises
        RemoteError for a problem answer, ConfigError when unreachable."""
        url = self.base + path
        if query:
            clean = {k: v for k, v in query.items() if v is not None and v is not False}
            if clean:
                url += "?" + urllib.parse.urlencode(clean)
        data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)  # noqa: S310 - scheme checked in __init__
        if data is not None:
            request.add_header("Content-Type", content_type)
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        for name, value in (headers or {}).items():
            request.add_header(name, value)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310 - scheme checked
                return response.status, response.read(), dict(response.headers)
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                problem = json.loads(raw)
                raise RemoteError(str(problem["code"]), exc.code, str(problem.get("detail", ""))) from None
            except (ValueError, KeyError, TypeError):
                raise RemoteError("http_error", exc.code, f"node answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ConfigError(f"cannot reach node at {self.base}: {exc}") from exc

    def json(self, method: str, path: str, body: Any = None, **kwargs: Any) -> Any:
        """Send a request and decode the JSON answer."""
        _, raw, _ = self.request(method, path, body, **kwargs)
        return json.loads(raw) if raw else None
