"""Authenticators for the three credential modes: OAuth2 refresh token, access token, API key."""

from __future__ import annotations

import threading
import time
import typing as t

import requests
from singer_sdk.authenticators import APIKeyAuthenticator, BearerTokenAuthenticator
from singer_sdk.authenticators import OAuthAuthenticator as _SDKOAuthAuthenticator

from tap_blogger.errors import AuthError
from tap_blogger.redact import protect_secrets

if t.TYPE_CHECKING:
    from collections.abc import Mapping

# Refresh this long before Google's expiry (or a fifth of a short lifetime), so that no request
# leaves with a token that dies in flight.
REFRESH_MARGIN_SECONDS = 60.0
TOKEN_ATTEMPTS = 3

_HOW_TO_REAUTHORISE = (
    "Run `tap-blogger-auth --client-id ... --client-secret ...` to authorise again and put the "
    "refresh token it prints into the `refresh_token` setting."
)


class GoogleOAuthAuthenticator(_SDKOAuthAuthenticator):
    """OAuth2 refresh-token grant against Google's token endpoint, shared by every stream.

    One instance lives for the whole run, so a run makes one token request (plus one per expiry),
    whatever the number of streams or worker threads.
    """

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        refresh_token: str,
        token_url: str,
        timeout: float,
        user_agent: str,
    ) -> None:
        super().__init__(
            auth_endpoint=token_url,
            client_id=client_id,
            client_secret=client_secret,
            oauth_headers={"User-Agent": user_agent},
        )
        self._refresh_token = refresh_token
        self._timeout = timeout
        self._lock = threading.Lock()
        self._expires_at = 0.0
        self._refusal: str | None = None
        self.token_requests = 0

    @property
    def oauth_request_body(self) -> dict:
        return {
            "grant_type": "refresh_token",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "refresh_token": self._refresh_token,
        }

    def is_token_valid(self) -> bool:
        return self.access_token is not None and time.monotonic() < self._expires_at

    def invalidate(self, rejected_token: str | None) -> None:
        """Forget a token the API rejected (unless another thread already replaced it)."""
        with self._lock:
            if rejected_token is None or rejected_token == self.access_token:
                self._expires_at = 0.0

    def authenticate_request(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        with self._lock:
            if self._refusal is not None:  # the run is ending: no other thread asks again
                raise AuthError(self._refusal)
            if not self.is_token_valid():
                try:
                    self.update_access_token()
                except AuthError as exc:
                    self._refusal = str(exc)
                    raise
            token = self.access_token
        request.headers["Authorization"] = f"Bearer {token}"
        return request

    def update_access_token(self) -> None:
        self.logger.info("Requesting a new access token from the OAuth token endpoint.")
        for attempt in range(1, TOKEN_ATTEMPTS + 1):
            self.token_requests += 1
            started = time.monotonic()
            try:
                response = self._session.post(
                    self.auth_endpoint,
                    data=self.oauth_request_payload,
                    headers=self._oauth_headers,
                    timeout=self._timeout,
                )
            except requests.RequestException as exc:
                failure = f"could not reach it ({type(exc).__name__})"
            else:
                if response.status_code == 200:
                    self._accept(response, started)
                    return
                failure = _token_failure(response)
            if attempt < TOKEN_ATTEMPTS:
                time.sleep(2 ** (attempt - 1))
        raise AuthError(
            f"The OAuth token endpoint {self.auth_endpoint} failed {TOKEN_ATTEMPTS} times: "
            f"{failure}. Check `token_url` and the network, then rerun; nothing was extracted."
        )

    def _accept(self, response: requests.Response, started: float) -> None:
        try:
            body = response.json()
            token = body["access_token"]
        except (ValueError, KeyError, TypeError):
            raise AuthError(
                f"The OAuth token endpoint {self.auth_endpoint} answered HTTP 200 without an "
                "access token. Check `token_url`: it must be Google's OAuth2 token endpoint."
            ) from None
        lifetime = float(body.get("expires_in") or 3600)
        margin = min(REFRESH_MARGIN_SECONDS, lifetime / 5)
        protect_secrets([token])
        self.access_token = token
        self._expires_at = started + lifetime - margin
        self.logger.info("Access token received; valid for %d s.", int(lifetime))


def _token_failure(response: requests.Response) -> str:
    """Raise at once for answers that no retry can change; describe the others."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = body.get("error") if isinstance(body, dict) else None
    error = error if isinstance(error, str) else ""
    if error == "invalid_grant":
        raise AuthError(
            "Google refused the refresh token (HTTP 400 invalid_grant): it was revoked or has "
            "expired. Refresh tokens of an OAuth client whose consent screen is in 'Testing' "
            f"status expire after 7 days. {_HOW_TO_REAUTHORISE}"
        )
    if error in {"invalid_client", "unauthorized_client"}:
        raise AuthError(
            f"Google does not accept this OAuth client (HTTP {response.status_code} {error}): "
            "`client_id` or `client_secret` is wrong, or the client was deleted in the Google "
            "Cloud console (APIs & Services > Credentials). Fix both settings, then "
            f"{_HOW_TO_REAUTHORISE[0].lower()}{_HOW_TO_REAUTHORISE[1:]}"
        )
    if response.status_code < 500 and response.status_code != 429:
        raise AuthError(
            f"The OAuth token endpoint refused the request (HTTP {response.status_code}"
            f"{' ' + error if error else ''}). Check `client_id`, `client_secret`, "
            f"`refresh_token` and `token_url`."
        )
    return f"HTTP {response.status_code}"


def build_authenticator(config: Mapping[str, t.Any], *, timeout: float, user_agent: str) -> t.Any:
    """The authenticator for the credential mode the config selects (validated at start-up)."""
    if config.get("refresh_token"):
        return GoogleOAuthAuthenticator(
            client_id=config["client_id"],
            client_secret=config["client_secret"],
            refresh_token=config["refresh_token"],
            token_url=config["token_url"],
            timeout=timeout,
            user_agent=user_agent,
        )
    if config.get("access_token"):
        return BearerTokenAuthenticator(token=config["access_token"])
    return APIKeyAuthenticator(key="key", value=config["api_key"], location="params")
