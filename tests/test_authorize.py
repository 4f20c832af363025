"""`tap-blogger-auth` end to end: the real command in a subprocess against the Blogger emulator.

The test plays the browser: it reads the consent URL the command prints, GETs it (the emulator
"consents" and redirects to the command's loopback server) and checks what the command prints.
"""

from __future__ import annotations

import json
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests

from tap_blogger.authorize import SCOPES, AuthorizeError, check_endpoints
from tests.blogger_emulator import BloggerEmulator, Dataset

ROOT = Path(__file__).resolve().parents[1]
PROCESS_TIMEOUT = 60.0
URL_PATTERN = re.compile(r"https?://\S+")
ERROR_PREFIX = "tap-blogger-auth: error: "


@pytest.fixture
def emu():
    with BloggerEmulator(Dataset.named("tiny")) as emulator:
        yield emulator


@dataclass
class AuthRun:
    """A running `tap-blogger-auth`; stderr is read line by line as it comes."""

    process: subprocess.Popen[str]
    stderr_lines: list[str] = field(default_factory=list)
    _queue: queue.Queue[str | None] = field(default_factory=queue.Queue)
    stdout: str = ""

    _stdout_chunks: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._readers = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        self._stdout_chunks.append(self.process.stdout.read())

    def _read_stderr(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._queue.put(line)
        self._queue.put(None)

    def consent_url(self, prefix: str, timeout: float = 30.0) -> str:
        """The first printed URL that starts with `prefix`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no consent URL printed; stderr so far: {self.stderr_lines}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"exited before printing a URL: {self.stderr_lines}")
            self.stderr_lines.append(line)
            for url in URL_PATTERN.findall(line):
                if url.startswith(prefix):
                    return url

    def finish(self, timeout: float = PROCESS_TIMEOUT) -> tuple[int, str, str]:
        """Exit code, stdout and the whole stderr."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        for reader in self._readers:
            reader.join(timeout=10)
        stdout = "".join(self._stdout_chunks)
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                break
            if line is None:
                break
            self.stderr_lines.append(line)
        self.stdout = stdout
        return self.process.returncode, stdout, "".join(self.stderr_lines)


def start(*args: str, env: dict[str, str] | None = None) -> AuthRun:
    base = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("TAP_BLOGGER_", "OAUTHLIB_")) and name != "BROWSER"
    }
    base.update(env or {})
    process = subprocess.Popen(
        [sys.executable, "-m", "tap_blogger.authorize", *args],
        cwd=ROOT,
        env=base,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return AuthRun(process)


def emulator_args(emu: BloggerEmulator, *extra: str, secret: str | None = None) -> list[str]:
    return [
        "--no-browser",
        "--auth-url",
        emu.auth_url,
        "--token-url",
        emu.token_url,
        "--client-id",
        emu.client_id,
        "--client-secret",
        emu.client_secret if secret is None else secret,
        "--timeout",
        "30",
        *extra,
    ]


def consent(run: AuthRun, emu: BloggerEmulator) -> tuple[str, requests.Response]:
    """Open the printed URL like a browser: the emulator consents and redirects back."""
    url = run.consent_url(emu.auth_url)
    response = requests.get(url, timeout=30)
    return url, response


def assert_no_secrets(emu: BloggerEmulator, *texts: str) -> None:
    for text in texts:
        assert emu.client_secret not in text
        for access_token in emu.issued_access_tokens:
            assert access_token not in text


def error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    assert "Traceback" not in stderr
    errors = [line for line in lines if line.startswith(ERROR_PREFIX)]
    assert len(errors) == 1, stderr
    assert lines[-1] == errors[0], stderr
    return errors[0]


# ---- the consent flow ---------------------------------------------------------------------------


def test_consent_prints_the_refresh_token_once(emu):
    run = start(*emulator_args(emu))
    url, response = consent(run, emu)
    code, stdout, stderr = run.finish()

    assert code == 0, stderr
    assert stdout.count(emu.refresh_token) == 1
    assert f"refresh_token: {emu.refresh_token}" in stdout.splitlines()
    assert emu.refresh_token not in stderr
    assert_no_secrets(emu, stdout, stderr)
    assert len(emu.issued_access_tokens) == 1  # the one the command received and kept to itself
    assert emu.counts["authorize"] == 1
    assert emu.counts["token"] == 1
    assert "meltano config tap-blogger set refresh_token" in stderr

    # The browser landed on the command's loopback server after the redirect.
    assert response.status_code == 200
    assert response.url.startswith("http://127.0.0.1:")
    assert "close this tab" in response.text

    # What was asked of the authorization server.
    query = parse_qs(urlsplit(url).query)
    assert query["client_id"] == [emu.client_id]
    assert query["scope"] == [SCOPES["readonly"]]
    assert query["response_type"] == ["code"]
    assert query["access_type"] == ["offline"]
    assert query["prompt"] == ["consent"]
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) == 43
    assert query["state"][0]
    redirect = urlsplit(query["redirect_uri"][0])
    assert (redirect.scheme, redirect.hostname) == ("http", "127.0.0.1")
    assert "client_secret" not in query


def test_full_scope_with_client_from_the_environment(emu):
    run = start(
        "--no-browser",
        "--scope",
        "full",
        "--auth-url",
        emu.auth_url,
        "--token-url",
        emu.token_url,
        env={
            "TAP_BLOGGER_CLIENT_ID": emu.client_id,
            "TAP_BLOGGER_CLIENT_SECRET": emu.client_secret,
        },
    )
    url, _ = consent(run, emu)
    code, stdout, stderr = run.finish()

    assert code == 0, stderr
    assert parse_qs(urlsplit(url).query)["scope"] == [SCOPES["full"]]
    assert stdout.count(emu.refresh_token) == 1
    assert_no_secrets(emu, stdout, stderr)
    assert (emu.counts["authorize"], emu.counts["token"]) == (1, 1)


@pytest.mark.parametrize("client_type", ["installed", "web"])
def test_client_secrets_file_with_its_own_endpoints(emu, tmp_path, client_type):
    secrets_file = tmp_path / "client_secret.json"
    secrets_file.write_text(
        json.dumps(
            {
                client_type: {
                    "client_id": emu.client_id,
                    "client_secret": emu.client_secret,
                    "project_id": "tap-blogger-test",
                    "auth_uri": emu.auth_url,
                    "token_uri": emu.token_url,
                    "redirect_uris": ["http://localhost"],
                }
            }
        )
    )
    run = start("--no-browser", "--client-secrets-file", str(secrets_file))
    consent(run, emu)
    code, stdout, stderr = run.finish()

    assert code == 0, stderr
    assert stdout.count(emu.refresh_token) == 1
    assert_no_secrets(emu, stdout, stderr)
    assert (emu.counts["authorize"], emu.counts["token"]) == (1, 1)


def test_opens_a_browser_by_default(emu, tmp_path):
    """Without --no-browser the URL goes to $BROWSER; what the browser prints stays off stdout."""
    opened = tmp_path / "opened-url"
    browser = tmp_path / "fake-browser"
    browser.write_text(
        f"#!{sys.executable}\n"
        "import sys\n"
        "print('browser chatter on stdout')\n"
        f"open({str(opened)!r}, 'w').write(sys.argv[1])\n"
    )
    browser.chmod(0o755)
    args = [arg for arg in emulator_args(emu) if arg != "--no-browser"]
    run = start(*args, env={"BROWSER": str(browser)})
    printed = run.consent_url(emu.auth_url)
    deadline = time.monotonic() + 30
    while not opened.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert opened.read_text() == printed
    requests.get(printed, timeout=30)
    code, stdout, stderr = run.finish()

    assert code == 0, stderr
    assert stdout == f"refresh_token: {emu.refresh_token}\n"
    assert "browser chatter on stdout" in stderr
    assert "A browser has been opened" in stderr


def test_fixed_port(emu):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run = start(*emulator_args(emu, "--port", str(port)))
    url, response = consent(run, emu)
    code, _, stderr = run.finish()

    assert code == 0, stderr
    assert parse_qs(urlsplit(url).query)["redirect_uri"] == [f"http://127.0.0.1:{port}/"]
    assert response.url.startswith(f"http://127.0.0.1:{port}/?")


# ---- errors -------------------------------------------------------------------------------------


def test_wrong_client_secret(emu):
    wrong = "GOCSPX-" + "x" * 28
    run = start(*emulator_args(emu, secret=wrong))
    consent(run, emu)
    code, stdout, stderr = run.finish()

    assert code == 1
    assert stdout == ""
    line = error_line(stderr)
    assert "rejected the OAuth client" in line
    assert "client secret" in line
    assert wrong not in stderr
    assert_no_secrets(emu, stdout, stderr)
    assert (emu.counts["authorize"], emu.counts["token"]) == (1, 1)
    assert emu.issued_access_tokens == []


@pytest.mark.parametrize(
    ("redirect_query", "expected"),
    [
        ({"error": "access_denied"}, "access was denied"),
        ({"code": "4/0Aforged"}, "does not belong to this run"),
    ],
    ids=["denied", "forged-state"],
)
def test_bad_redirect_is_refused_without_token_request(emu, redirect_query, expected):
    run = start(*emulator_args(emu))
    url = run.consent_url(emu.auth_url)
    query = parse_qs(urlsplit(url).query)
    # What a browser brings back when the user clicks "Cancel" (Google keeps the state), or
    # a request from something else that does not know the state.
    answer = dict(redirect_query)
    if "error" in answer:
        answer["state"] = query["state"][0]
    else:
        answer["state"] = "not-the-state"
    requests.get(f"{query['redirect_uri'][0]}?{urlencode(answer)}", timeout=30)
    code, stdout, stderr = run.finish()

    assert code == 1
    assert stdout == ""
    assert expected in error_line(stderr)
    assert emu.counts["token"] == 0


@pytest.mark.parametrize("fault", ["502", "500"])
def test_token_endpoint_failure(emu, fault):
    emu.faults.add(fault, route="token")
    run = start(*emulator_args(emu))
    consent(run, emu)
    code, stdout, stderr = run.finish()

    assert code == 1
    assert stdout == ""
    line = error_line(stderr)
    assert f"answered HTTP {fault}" in line
    assert emu.token_url in line
    assert_no_secrets(emu, stdout, stderr)


def test_unreachable_token_endpoint(emu):
    with socket.socket() as probe:  # a loopback port with nothing listening
        probe.bind(("127.0.0.1", 0))
        dead_port = probe.getsockname()[1]
    run = start(*emulator_args(emu, "--token-url", f"http://127.0.0.1:{dead_port}/token"))
    consent(run, emu)
    code, stdout, stderr = run.finish()

    assert code == 1
    assert "cannot reach the token endpoint" in error_line(stderr)
    assert_no_secrets(emu, stdout, stderr)


def test_timeout_waiting_for_the_redirect(emu):
    args = emulator_args(emu)
    args[args.index("--timeout") + 1] = "1"
    run = start(*args)
    run.consent_url(emu.auth_url)  # printed, but nobody consents
    started = time.monotonic()
    code, stdout, stderr = run.finish()

    assert code == 1
    assert stdout == ""
    assert time.monotonic() - started < 20
    assert "timed out after 1 s" in error_line(stderr)
    assert (emu.counts["authorize"], emu.counts["token"]) == (0, 0)


def test_port_in_use(emu):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        run = start(*emulator_args(emu, "--port", str(busy.getsockname()[1])))
        code, stdout, stderr = run.finish()

    assert code == 1
    assert stdout == ""
    assert "cannot listen on 127.0.0.1:" in error_line(stderr)
    assert sum(emu.counts.values()) == 0


@pytest.mark.parametrize(
    "which",
    ["token", "auth"],
)
def test_plain_http_to_a_remote_host_is_refused_before_any_request(emu, which):
    remote = "http://oauth2.blogger-auth-test.invalid/" + which
    args = emulator_args(emu)
    args[args.index(f"--{which}-url") + 1] = remote
    run = start(*args)
    code, stdout, stderr = run.finish()

    assert code == 1
    assert stdout == ""
    line = error_line(stderr)
    assert f"refusing plain http for {remote}" in line
    assert "http://127.0.0.1" not in stderr  # no consent URL, no loopback server
    assert sum(emu.counts.values()) == 0
    assert emu.client_secret not in stderr


def test_missing_client_is_explained():
    run = start("--no-browser")
    code, stdout, stderr = run.finish()

    assert code == 1
    assert stdout == ""
    line = error_line(stderr)
    assert "--client-id" in line
    assert "TAP_BLOGGER_CLIENT_ID" in line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("not json", "is not a JSON file"),
        ('{"other": {}}', 'no "installed" or "web" client'),
    ],
)
def test_bad_client_secrets_file(tmp_path, content, expected):
    path = tmp_path / "client.json"
    path.write_text(content)
    run = start("--no-browser", "--client-secrets-file", str(path))
    code, _, stderr = run.finish()

    assert code == 1
    assert expected in error_line(stderr)


def test_help_explains_the_seven_day_expiry():
    result = subprocess.run(
        [sys.executable, "-m", "tap_blogger.authorize", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=PROCESS_TIMEOUT,
        check=True,
    )
    assert "7 days" in result.stdout
    assert '"Testing"' in result.stdout
    assert '"In production"' in result.stdout
    assert "--no-browser" in result.stdout


# ---- endpoint rules (no network) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth_url", "token_url", "plain_http"),
    [
        ("https://accounts.google.com/o/oauth2/auth", "https://oauth2.googleapis.com/token", False),
        ("http://127.0.0.1:8080/o/oauth2/auth", "http://127.0.0.1:8080/token", True),
        ("http://localhost:1/auth", "http://[::1]:2/token", True),
        ("http://127.0.0.2/auth", "https://127.0.0.1/token", True),
    ],
)
def test_accepted_endpoints(auth_url, token_url, plain_http):
    assert check_endpoints(auth_url, token_url) is plain_http


@pytest.mark.parametrize(
    ("auth_url", "token_url"),
    [
        ("https://accounts.google.com/o/oauth2/auth", "http://oauth2.googleapis.com/token"),
        ("http://accounts.google.com/o/oauth2/auth", "https://oauth2.googleapis.com/token"),
        # plain http to loopback while the other endpoint is remote: not an emulator setup
        ("http://127.0.0.1/auth", "https://oauth2.googleapis.com/token"),
        ("http://10.0.0.1/auth", "http://10.0.0.1/token"),
        ("http://localhost.example.com/auth", "http://localhost.example.com/token"),
        ("ftp://127.0.0.1/auth", "http://127.0.0.1/token"),
        ("accounts.google.com/o/oauth2/auth", "https://oauth2.googleapis.com/token"),
    ],
)
def test_refused_endpoints(auth_url, token_url):
    with pytest.raises(AuthorizeError):
        check_endpoints(auth_url, token_url)
