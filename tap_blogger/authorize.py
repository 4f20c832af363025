"""`tap-blogger-auth`: get a Google OAuth2 refresh token for tap-blogger.

Runs Google's installed-app ("desktop app") flow with a loopback redirect: the user consents in a
browser, Google redirects to a one-shot HTTP server on 127.0.0.1, and the authorization code it
carries is exchanged (with PKCE) for tokens. Only the refresh token is printed, once, on stdout.
The client secret and the access token are never printed or logged.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import logging
import os
import sys
import textwrap
import typing as t
import webbrowser
from urllib.parse import urlsplit

import requests
from google_auth_oauthlib.flow import InstalledAppFlow, WSGITimeoutError
from oauthlib.oauth2.rfc6749 import errors as oauth_errors

PROG = "tap-blogger-auth"

SCOPES = {
    "readonly": "https://www.googleapis.com/auth/blogger.readonly",
    "full": "https://www.googleapis.com/auth/blogger",
}
DEFAULT_AUTH_URL = "https://accounts.google.com/o/oauth2/auth"
DEFAULT_TOKEN_URL = "https://oauth2.googleapis.com/token"
DEFAULT_TIMEOUT_SECONDS = 300.0
TOKEN_REQUEST_TIMEOUT_SECONDS = 30.0
LOOPBACK_HOST = "127.0.0.1"

ENV_CLIENT_ID = "TAP_BLOGGER_CLIENT_ID"
ENV_CLIENT_SECRET = "TAP_BLOGGER_CLIENT_SECRET"

# Loggers that, at DEBUG or INFO, write request bodies (client secret, authorization code) or
# token responses (access token). They are held at WARNING whatever the root logger says.
_NOISY_LOGGERS = (
    "google_auth_oauthlib",
    "requests_oauthlib",
    "oauthlib",
    "google",
    "requests",
    "urllib3",
)

_SUCCESS_PAGE = (
    "tap-blogger-auth has received Google's answer. "
    "You can close this tab and go back to the terminal."
)

_DESCRIPTION = """\
Get an OAuth2 refresh token for tap-blogger.

Opens Google's consent screen (or prints its URL), receives Google's redirect on a one-shot
server at http://127.0.0.1:PORT/, exchanges the code (with PKCE) and prints the refresh token
once on stdout. The client secret and the access token are never printed.

The OAuth client comes from --client-id/--client-secret, else from --client-secrets-file
(the JSON downloaded from Google Cloud console > APIs & Services > Credentials), else from
the environment variables TAP_BLOGGER_CLIENT_ID/TAP_BLOGGER_CLIENT_SECRET. Prefer the file or
the environment: command-line arguments are visible to other users of the machine. Create the
client as type "Desktop app"; a "Web application" client works only if
http://127.0.0.1:PORT/ is one of its authorised redirect URIs and you pass the same --port.
"""

_EPILOG = """\
Refresh tokens that stop working after 7 days:
  While an "External" app's OAuth consent screen has the publishing status "Testing",
  Google expires every refresh token it issues for it 7 days after issue. Set the status
  to "In production" (Google Cloud console > Google Auth Platform > Audience, formerly
  APIs & Services > OAuth consent screen: "Publish app") and run this command again.
  For use with your own Google account, publishing does not need Google's verification:
  at most Google shows a "Google hasn't verified this app" screen, which you pass with
  "Advanced" > "Go to <app name>". A refresh token also stops working when its access is
  removed at https://myaccount.google.com/permissions, after six months without use, or
  when 100 newer refresh tokens have been issued to the same account for the same client.

Scopes:
  readonly  https://www.googleapis.com/auth/blogger.readonly (default: blogs, posts,
            pages, comments)
  full      https://www.googleapis.com/auth/blogger (also needed for page view counts)

On a machine without a browser:
  Run with --no-browser --port 8765, forward that port from your computer
  (ssh -L 8765:127.0.0.1:8765 HOST) and open the printed URL in your own browser.

Exit status: 0 with the token printed; 1 on any error, explained in one line on stderr;
130 when interrupted.
"""


class AuthorizeError(Exception):
    """A failure explained to the user in one line."""


# --------------------------------------------------------------------------------------------
# Command line and client configuration
# --------------------------------------------------------------------------------------------


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, not {value}")
    return value


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be more than 0 seconds, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--client-id", help=f"OAuth client ID (default: ${ENV_CLIENT_ID}).")
    parser.add_argument(
        "--client-secret", help=f"OAuth client secret (default: ${ENV_CLIENT_SECRET})."
    )
    parser.add_argument(
        "--client-secrets-file",
        metavar="PATH",
        help='Client JSON from Google Cloud console (with an "installed" or "web" key).',
    )
    parser.add_argument(
        "--scope",
        choices=sorted(SCOPES),
        default="readonly",
        help="readonly (default) or full; full is needed for page views.",
    )
    parser.add_argument(
        "--port",
        type=_port,
        default=0,
        help="Port of the loopback redirect server on 127.0.0.1 (default: 0, any free port).",
    )
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="Only print the consent URL; by default a browser is opened too.",
    )
    parser.add_argument(
        "--timeout",
        type=_positive_seconds,
        default=DEFAULT_TIMEOUT_SECONDS,
        metavar="SECONDS",
        help="How long to wait for the browser to come back "
        f"(default: {DEFAULT_TIMEOUT_SECONDS:g}).",
    )
    parser.add_argument(
        "--auth-url",
        metavar="URL",
        help="Authorization endpoint "
        f"(default: the client file's auth_uri, else {DEFAULT_AUTH_URL}).",
    )
    parser.add_argument(
        "--token-url",
        metavar="URL",
        help=f"Token endpoint (default: the client file's token_uri, else {DEFAULT_TOKEN_URL}). "
        "Plain http is accepted only when both endpoints are on a loopback host.",
    )
    return parser


class ClientConfig(t.NamedTuple):
    client_id: str
    client_secret: str
    auth_url: str
    token_url: str


def _read_client_secrets_file(path: str) -> dict[str, str]:
    try:
        with open(path, encoding="utf-8") as handle:
            document = json.load(handle)
    except OSError as exc:
        raise AuthorizeError(f"cannot read --client-secrets-file {path}: {exc.strerror}") from None
    except (ValueError, UnicodeDecodeError):
        raise AuthorizeError(f"--client-secrets-file {path} is not a JSON file") from None
    section = None
    if isinstance(document, dict):
        section = document.get("installed") or document.get("web")
    if not isinstance(section, dict):
        raise AuthorizeError(
            f'--client-secrets-file {path} has no "installed" or "web" client: download the '
            "JSON of an OAuth client ID from Google Cloud console > APIs & Services > Credentials"
        )
    return {key: value for key, value in section.items() if isinstance(value, str)}


def resolve_client(args: argparse.Namespace, environ: t.Mapping[str, str]) -> ClientConfig:
    """Pick the client and endpoints: flags, then the client secrets file, then the environment."""
    from_file = (
        _read_client_secrets_file(args.client_secrets_file) if args.client_secrets_file else {}
    )
    client_id = args.client_id or from_file.get("client_id") or environ.get(ENV_CLIENT_ID, "")
    client_secret = (
        args.client_secret or from_file.get("client_secret") or environ.get(ENV_CLIENT_SECRET, "")
    )
    missing = [
        name
        for name, value in (("client ID", client_id), ("client secret", client_secret))
        if not value.strip()
    ]
    if missing:
        raise AuthorizeError(
            f"no OAuth {' or '.join(missing)}: pass --client-id and --client-secret, set "
            f"{ENV_CLIENT_ID} and {ENV_CLIENT_SECRET}, or pass --client-secrets-file "
            "(create a 'Desktop app' OAuth client in Google Cloud console)"
        )
    auth_url = args.auth_url or from_file.get("auth_uri") or DEFAULT_AUTH_URL
    token_url = args.token_url or from_file.get("token_uri") or DEFAULT_TOKEN_URL
    return ClientConfig(client_id.strip(), client_secret.strip(), auth_url, token_url)


def is_loopback_host(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_endpoints(auth_url: str, token_url: str) -> bool:
    """Refuse unusable endpoints before any network use; True when plain http must be allowed.

    Plain http carries the authorization code and the client secret in clear, so it is accepted
    only for a local emulator: both endpoints on a loopback host.
    """
    endpoints = []  # (url, plain http?, loopback host?)
    for option, url in (("--auth-url", auth_url), ("--token-url", token_url)):
        parts = urlsplit(url)
        try:
            host = parts.hostname
        except ValueError:
            host = None
        if parts.scheme not in ("http", "https") or not host:
            raise AuthorizeError(f"{option} must be an https:// URL, not {url!r}")
        endpoints.append((url, parts.scheme == "http", is_loopback_host(host)))
    plain = [(url, loopback) for url, is_plain, loopback in endpoints if is_plain]
    if not plain:
        return False
    # Name a remote plain-http endpoint first: that is the one that would leak.
    offender = next((url for url, loopback in plain if not loopback), None)
    if offender is None and not all(loopback for _, _, loopback in endpoints):
        offender = plain[0][0]
    if offender is not None:
        raise AuthorizeError(
            f"refusing plain http for {offender}: use https (plain http is accepted only when "
            "both --auth-url and --token-url are on a loopback host, such as a local emulator)"
        )
    return True


# --------------------------------------------------------------------------------------------
# The flow
# --------------------------------------------------------------------------------------------


def _err(message: str = "") -> None:
    print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def _stdout_to_stderr() -> t.Iterator[None]:
    """Send whatever a launched browser writes to our stdout to stderr instead."""
    try:
        sys.stdout.flush()
        stdout_fd = sys.stdout.fileno()
        stderr_fd = sys.stderr.fileno()
        saved = os.dup(stdout_fd)
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        os.dup2(stderr_fd, stdout_fd)
        yield
    finally:
        os.dup2(saved, stdout_fd)
        os.close(saved)


class _LoopbackFlow(InstalledAppFlow):
    """InstalledAppFlow that announces the URL on stderr and bounds the token request.

    - The consent URL is printed on stderr (stdout carries only the result) and a browser is
      opened if asked; a machine without one is not an error.
    - The client credentials go in the token request body (as Google documents) and the request
      has a timeout; a non-OAuth HTTP error from the token endpoint is reported with its status.
    """

    open_browser_on_start = True
    redirect_wait_seconds = DEFAULT_TIMEOUT_SECONDS

    def authorization_url(self, **kwargs: t.Any) -> tuple[str, str]:
        url, state = super().authorization_url(**kwargs)
        opened = False
        if self.open_browser_on_start:
            try:
                with _stdout_to_stderr():
                    opened = webbrowser.open(url, new=1, autoraise=True)
            except Exception:  # no usable browser: the printed URL still works
                opened = False
        if opened:
            _err("A browser has been opened at Google's consent screen. If it did not appear,")
            _err("open this URL in a browser signed in to the Google account of the blog(s):")
        else:
            _err("Open this URL in a browser signed in to the Google account of the blog(s):")
        _err()
        _err(f"    {url}")
        _err()
        _err(
            f"Waiting up to {self.redirect_wait_seconds:g} s for the redirect to "
            f"{self.redirect_uri} ..."
        )
        return url, state

    def fetch_token(self, **kwargs: t.Any) -> t.Mapping[str, t.Any]:
        hooks = self.oauth2session.compliance_hook["access_token_response"]
        if _check_token_http_status not in hooks:
            self.oauth2session.register_compliance_hook(
                "access_token_response", _check_token_http_status
            )
        kwargs.setdefault("include_client_id", True)
        kwargs.setdefault("timeout", TOKEN_REQUEST_TIMEOUT_SECONDS)
        return super().fetch_token(**kwargs)


def _check_token_http_status(response: requests.Response) -> requests.Response:
    """Let OAuth errors (JSON with "error") through to oauthlib; explain any other HTTP error."""
    if response.status_code < 400:
        return response
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return response  # an RFC 6749 error such as invalid_client: oauthlib raises it
    raise AuthorizeError(
        f"the token endpoint {response.url} answered HTTP {response.status_code} "
        f"{response.reason or ''}".rstrip()
    )


def _describe_oauth_error(exc: oauth_errors.OAuth2Error, token_url: str) -> str:
    detail = exc.error or type(exc).__name__
    if exc.description:
        detail = f"{detail}: {exc.description}"
    if isinstance(exc, oauth_errors.AccessDeniedError):
        return (
            "access was denied on the consent screen; run again and choose Allow "
            "(if the app is in Testing, add the account as a test user)"
        )
    if isinstance(exc, oauth_errors.MismatchingStateError):
        return (
            "the request that reached the loopback server does not belong to this run "
            "(state mismatch); run again and use the URL printed by this run"
        )
    if isinstance(exc, oauth_errors.MissingCodeError):
        return (
            "the request that reached the loopback server carried no authorization code; "
            "run again and open the printed URL"
        )
    if isinstance(exc, oauth_errors.InvalidClientError | oauth_errors.UnauthorizedClientError):
        return (
            f"the token endpoint rejected the OAuth client ({detail}); check the client ID "
            "and client secret"
        )
    if isinstance(exc, oauth_errors.InvalidGrantError):
        return (
            f"the token endpoint rejected the authorization code ({detail}); run again "
            "(if this repeats, check that the client ID and secret belong together)"
        )
    if isinstance(exc, oauth_errors.MissingTokenError):
        return f"the token endpoint {token_url} answered without an access token"
    return f"the authorization server answered with an error ({detail})"


def _granted_scopes(token: t.Mapping[str, t.Any]) -> list[str] | None:
    scope = token.get("scope")
    if scope is None:
        return None
    if isinstance(scope, str):
        return scope.split()
    return [str(item) for item in scope]


def obtain_refresh_token(
    client: ClientConfig,
    *,
    scope: str,
    port: int,
    open_browser: bool,
    timeout: float,
) -> str:
    """Run the consent flow; return the refresh token or raise AuthorizeError."""
    allow_plain_http = check_endpoints(client.auth_url, client.token_url)
    config = {
        "installed": {
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "auth_uri": client.auth_url,
            "token_uri": client.token_url,
            "redirect_uris": [f"http://{LOOPBACK_HOST}"],
        }
    }
    flow = _LoopbackFlow.from_client_config(config, scopes=[scope])
    flow.open_browser_on_start = open_browser
    flow.redirect_wait_seconds = timeout

    overrides = {"OAUTHLIB_RELAX_TOKEN_SCOPE": "1"}  # the granted scope is checked below
    if allow_plain_http:
        overrides["OAUTHLIB_INSECURE_TRANSPORT"] = "1"
    with _environ(overrides):
        try:
            flow.run_local_server(
                host=LOOPBACK_HOST,
                port=port,
                open_browser=False,  # done (and announced) in _LoopbackFlow.authorization_url
                authorization_prompt_message=None,
                success_message=_SUCCESS_PAGE,
                timeout_seconds=timeout,
                access_type="offline",
                prompt="consent",
            )
        except AuthorizeError:
            raise
        except WSGITimeoutError:
            raise AuthorizeError(
                f"timed out after {timeout:g} s waiting for the browser to come back to "
                f"{flow.redirect_uri}; run again and finish the consent screen sooner, or "
                "raise --timeout"
            ) from None
        except oauth_errors.OAuth2Error as exc:
            raise AuthorizeError(_describe_oauth_error(exc, client.token_url)) from None
        except requests.Timeout:
            raise AuthorizeError(
                f"the token endpoint {client.token_url} did not answer within "
                f"{TOKEN_REQUEST_TIMEOUT_SECONDS:g} s"
            ) from None
        except requests.RequestException as exc:
            raise AuthorizeError(
                f"cannot reach the token endpoint {client.token_url} ({type(exc).__name__})"
            ) from None
        except OSError as exc:
            where = f"{LOOPBACK_HOST}:{port}" if port else LOOPBACK_HOST
            raise AuthorizeError(
                f"cannot listen on {where} ({exc.strerror or type(exc).__name__}); "
                "pick another --port"
            ) from None

    token = flow.oauth2session.token or {}
    granted = _granted_scopes(token)
    acceptable = {scope, SCOPES["full"]}
    if granted is not None and not acceptable.intersection(granted):
        raise AuthorizeError(
            f"Google did not grant {scope}; run again and tick the Blogger permission on the "
            "consent screen"
        )
    refresh_token = token.get("refresh_token")
    if not refresh_token:
        raise AuthorizeError(
            "the token endpoint returned no refresh token; remove the app's access at "
            "https://myaccount.google.com/permissions and run again"
        )
    return str(refresh_token)


@contextlib.contextmanager
def _environ(overrides: t.Mapping[str, str]) -> t.Iterator[None]:
    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _quiet_library_logging() -> None:
    for name in _NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)


def _scrub(message: str, secrets: t.Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        message = message.replace(secret, "***")
    return " ".join(message.split())  # one line


def _print_result(refresh_token: str, client: ClientConfig, scope: str) -> None:
    print(f"refresh_token: {refresh_token}", flush=True)
    _err()
    _err(f"Authorised for {scope}. Keep the refresh token secret; put it in the tap's settings:")
    _err(
        textwrap.indent(
            "meltano config tap-blogger set refresh_token '<the token above>'\n"
            "(with client_id and client_secret set the same way), or in the config JSON:\n"
            f'{{"client_id": "{client.client_id}", "client_secret": "<your client secret>", '
            '"refresh_token": "<the token above>"}',
            "  ",
        )
    )


def main(argv: t.Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _quiet_library_logging()
    scope = SCOPES[args.scope]
    secrets: list[str] = []
    try:
        client = resolve_client(args, os.environ)
        secrets.append(client.client_secret)
        refresh_token = obtain_refresh_token(
            client,
            scope=scope,
            port=args.port,
            open_browser=not args.no_browser,
            timeout=args.timeout,
        )
    except AuthorizeError as exc:
        _err(f"{PROG}: error: {_scrub(str(exc), secrets)}")
        return 1
    except KeyboardInterrupt:
        _err(f"{PROG}: cancelled")
        return 130
    except Exception as exc:  # one line, never a traceback that may hold secrets
        detail = _scrub(str(exc), secrets)
        _err(f"{PROG}: error: unexpected {type(exc).__name__}" + (f": {detail}" if detail else ""))
        return 1
    _print_result(refresh_token, client, scope)
    return 0


if __name__ == "__main__":
    sys.exit(main())
