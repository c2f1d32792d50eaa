"""The HTTP transport under the official twilio client for one dispatch pass: one kept-alive connection pool."""
from __future__ import annotations

import base64
import json
import logging
from urllib.parse import urlencode, urlsplit, urlunsplit

import requests
from twilio.http import HttpClient
from twilio.http.response import Response
from urllib3 import HTTPConnectionPool, Timeout

JSON_TYPES = ("application/json", "application/scim+json")  # bodies the twilio client sends as JSON, not a form


class PassHttpClient(HttpClient):
    """Sends the official twilio client's requests over urllib3, which requests itself sends with.

    With the client library's own transport (TwilioHttpClient, on requests) one `messages.create` cost about
    1.8 ms of CPU, the biggest part of sending an SMS: for every call requests merges the session's settings,
    cookies and hooks, prepares the request anew and builds a rich response. Here requests is asked once per
    origin, at its first request, for the connection pool it would use (proxies and CA bundle from the
    environment, TLS verification), and each request goes straight to that pool: about 0.7 ms. Connections are
    kept alive for the pass and a dropped one is replaced before use, as requests does. Nothing is retried (as
    with requests' defaults): a failed send is the outbox's to retry. Errors are urllib3's own
    (urllib3.exceptions.HTTPError).

    With `base_url`, every request meant for a *.twilio.com host goes there instead (a Twilio-compatible provider,
    or a local server in tests), whichever Twilio domain, edge or region the client library picked.
    """

    def __init__(self, timeout: float, base_url: str | None = None):
        super().__init__(logging.getLogger("twilio.http_client"), is_async=False, timeout=timeout)
        self._base = urlsplit(base_url) if base_url else None
        self._session = requests.Session()  # only to find each origin's pool, and to close them all
        self._pools: dict[tuple[str, str], tuple[HTTPConnectionPool, bool]] = {}

    def request(self, method: str, url: str, params: dict | None = None, data: dict | None = None,
                headers: dict[str, str] | None = None, auth: tuple[str, str] | None = None,
                timeout: float | None = None, allow_redirects: bool = False) -> Response:
        """One request as TwilioHttpClient would make it; the twilio client never follows redirects, nor do we."""
        url = self._redirected(url)
        if params:
            url += ("&" if urlsplit(url).query else "?") + urlencode(params, doseq=True)
        headers = dict(headers or {})
        if auth is not None:
            headers["Authorization"] = _basic_auth(*auth)
        if headers.get("Content-Type") in JSON_TYPES:
            body = json.dumps(data).encode()
        else:
            body = urlencode(data, doseq=True).encode() if data else None
        pool, target = self._pool_for(url)
        seconds = timeout or self.timeout
        answer = pool.urlopen(method.upper(), target, body=body, headers=headers, retries=False, redirect=False,
                              assert_same_host=False, timeout=Timeout(connect=seconds, read=seconds))
        return Response(answer.status, answer.data.decode("utf-8", "replace"), answer.headers)  # JSON is UTF-8

    def close(self) -> None:
        self._session.close()

    def _redirected(self, url: str) -> str:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if self._base is None or not (host == "twilio.com" or host.endswith(".twilio.com")):
            return url
        base = self._base
        return urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path, parts.query, ""))

    def _pool_for(self, url: str) -> tuple[HTTPConnectionPool, str]:
        """The connection pool for `url`'s origin, as requests would pick it, and what to ask it for: the path,
        or the whole URL through a plain-HTTP proxy."""
        parts = urlsplit(url)
        origin = (parts.scheme, parts.netloc)
        if origin not in self._pools:
            session = self._session
            prepared = requests.Request("POST", url).prepare()
            settings = session.merge_environment_settings(url, {}, None, None, None)
            adapter = session.get_adapter(url)
            pool = adapter.get_connection_with_tls_context(prepared, settings["verify"], settings["proxies"],
                                                           settings["cert"])
            adapter.cert_verify(pool, url, settings["verify"], settings["cert"])
            whole_url = adapter.request_url(prepared, settings["proxies"]) != prepared.path_url
            self._pools[origin] = (pool, whole_url)
        pool, whole_url = self._pools[origin]
        if whole_url:
            return pool, url
        return pool, (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def _basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
