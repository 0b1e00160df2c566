"""Which model servers a worker may send frames and API keys to (the VLM_ALLOWED_BASE_URLS list).

One strict parser for both the allow-list entries and the URLs checked against them; the web
app checks a URL when a model version is added (form and service), and the openai backend checks
it again, and the URL of each request it builds, before anything is sent.

The rule:

- An entry is ``scheme://host[:port][/path]``. A URL is allowed when its scheme, host and port
  equal an entry's exactly and its path is the entry's path or lies under it at a ``/`` boundary
  (``/v1`` allows ``/v1``, ``/v1/`` and ``/v1/x``, never ``/v1evil``; no path allows any path).
- An entry without a port means the scheme's default port (80 for http, 443 for https) and no
  other. ``:*`` in an entry means any port on that host (e.g. ``http://127.0.0.1:*`` for local
  test servers); URLs themselves never carry ``*``.
- Scheme and host are compared case-insensitively (normalised to lower case); paths are
  compared as written. A URL is passed on in its normal form: lower-case scheme and host, no
  default port, no trailing ``/``.
- Refused in URLs and entries alike: a scheme other than http/https or one not followed by
  ``://``; anything outside printable ASCII (whitespace, control characters, unicode hosts —
  write an international name in punycode, ``xn--…``); backslashes; ``@`` anywhere (so no
  user-info); ``%`` (no percent-encoding at all); a query (``?``) or fragment (``#``); a missing
  host; a host with a trailing dot, an empty label or characters outside ``a-z 0-9 - _``; a
  host that is a number in any form other than dotted-decimal ``a.b.c.d`` (``2130706433``,
  ``0x7f.0.0.1``, ``0177.0.0.1``, ``127.1``); IPv6 other than a bracketed literal (no zone ids);
  an empty, non-numeric, zero-led or out-of-range port; empty, ``.`` or ``..`` path segments
  and path characters outside ``A-Z a-z 0-9 - . _ ~ /``.

Plain Python on purpose: ``workers/`` has no Django, and the worker gets the list as data in
its ModelSpec.
"""

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

SETTING = "VLM_ALLOWED_BASE_URLS"
DEFAULT_PORTS = {"http": 80, "https": 443}
ANY_PORT = None  # an entry's port written as "*"
MAX_LENGTH = 2000

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9]*)://")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")  # a host ending in one is an IPv4 address to URL parsers
_PATH_SEGMENT = re.compile(r"[A-Za-z0-9._~-]+")
_NAMED = {
    "\\": "a backslash",
    "@": "an '@' (user-info such as user:password@ is not allowed)",
    "%": "percent-encoding ('%')",
    "?": "a query ('?')",
    "#": "a fragment ('#')",
}
_ALLOWED_CHARACTERS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~:/[]*")


class URLRefused(ValueError):
    """The URL is not one a worker may send frames and API keys to."""


class AllowListError(ValueError):
    """An entry of VLM_ALLOWED_BASE_URLS is malformed: a configuration error."""


@dataclass(frozen=True)
class ServerURL:
    scheme: str  # "http" | "https"
    host: str  # lower case; an IPv6 address compressed, without brackets
    port: int | None  # the effective port; None (entries only): any port
    path: str  # "" or "/a/b": no trailing "/"

    @property
    def is_ipv6(self) -> bool:
        return ":" in self.host

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if self.is_ipv6 else self.host
        if self.port is ANY_PORT:
            port = ":*"
        else:
            port = "" if self.port == DEFAULT_PORTS[self.scheme] else f":{self.port}"
        return f"{self.scheme}://{host}{port}{self.path}"

    def allows(self, other: "ServerURL") -> bool:
        """This entry allows `other`: same scheme, host and port; path under this one's at a '/'."""
        return (
            self.scheme == other.scheme
            and self.host == other.host
            and (self.port is ANY_PORT or self.port == other.port)
            and (not self.path or other.path == self.path or other.path.startswith(self.path + "/"))
        )


def parse_server_url(text: object, *, entry: bool = False) -> ServerURL:
    """Parse strictly; raise URLRefused naming the problem. `entry`: an allow-list entry (":*" allowed)."""
    if not isinstance(text, str):
        raise URLRefused(f"a URL must be text, not {type(text).__name__}")
    if not text:
        raise URLRefused("the URL is empty")
    if len(text) > MAX_LENGTH:
        raise URLRefused(f"the URL is longer than {MAX_LENGTH} characters")
    for position, character in enumerate(text):
        if character in _NAMED:
            raise URLRefused(f"it contains {_NAMED[character]}")
        if character not in _ALLOWED_CHARACTERS:
            if character.isspace() or not character.isprintable():
                raise URLRefused(f"it contains whitespace or a control character ({character!r} at {position})")
            if not character.isascii():
                raise URLRefused(
                    f"it contains a non-ASCII character ({character!r} at {position}); "
                    "write an international host name in punycode (xn--…)"
                )
            raise URLRefused(f"it contains the character {character!r}, which is not allowed")

    scheme_match = _SCHEME.match(text)
    if not scheme_match:
        raise URLRefused("it must start with http:// or https://")
    scheme = scheme_match.group(1).lower()
    if scheme not in DEFAULT_PORTS:
        raise URLRefused(f"the scheme {scheme!r} is not allowed (only http and https)")
    authority, slash, rest = text[scheme_match.end() :].partition("/")
    host, port = _host_and_port(authority, scheme, entry=entry)
    return ServerURL(scheme=scheme, host=host, port=port, path=_path(slash + rest))


def _host_and_port(authority: str, scheme: str, *, entry: bool) -> tuple[str, int | None]:
    if not authority:
        raise URLRefused("it has no host")
    if authority.startswith("["):
        literal, bracket, after = authority[1:].partition("]")
        if not bracket:
            raise URLRefused("an IPv6 address is missing its closing ']'")
        try:
            host = ipaddress.IPv6Address(literal).compressed
        except ValueError:
            raise URLRefused(f"[{literal}] is not an IPv6 address") from None
        if after and not after.startswith(":"):
            raise URLRefused("only ':port' may follow an IPv6 address")
        port_text = after[1:] if after else None
    else:
        if "[" in authority or "]" in authority:
            raise URLRefused("brackets are only allowed around a whole IPv6 address")
        if authority.count(":") > 1:
            raise URLRefused("the host has more than one ':' (an IPv6 address must be in brackets)")
        host, colon, port_text = authority.partition(":")
        port_text = port_text if colon else None
        host = _host_name(host.lower())
    return host, _port(port_text, scheme, entry=entry)


def _host_name(host: str) -> str:
    if not host:
        raise URLRefused("it has no host")
    if host.endswith("."):
        raise URLRefused(f"the host {host!r} ends with a dot")
    if len(host) > 253:
        raise URLRefused("the host is longer than 253 characters")
    labels = host.split(".")
    if "" in labels:
        raise URLRefused(f"the host {host!r} has an empty label ('..' or a leading dot)")
    if _NUMERIC_LABEL.fullmatch(labels[-1]):
        # URL parsers read such a host as an IPv4 address, in decimal, octal or hex, whole or in parts.
        canonical = len(labels) == 4 and all(
            label.isdigit() and int(label) <= 255 and str(int(label)) == label for label in labels
        )
        if not canonical:
            raise URLRefused(
                f"the host {host!r} is a number in a form other than a.b.c.d "
                "(decimal, octal, hex and shortened IPv4 forms are refused)"
            )
        return host
    for label in labels:
        if not _LABEL.fullmatch(label):
            raise URLRefused(f"the host label {label!r} is not a valid name (a-z, 0-9, '-', '_'; at most 63)")
    return host


def _port(port_text: str | None, scheme: str, *, entry: bool) -> int | None:
    if port_text is None:
        return DEFAULT_PORTS[scheme]
    if port_text == "*":
        if not entry:
            raise URLRefused("'*' is only allowed as the port of an allow-list entry, not in a URL")
        return ANY_PORT
    if not port_text:
        raise URLRefused("the port is empty (':' with no number)")
    if not port_text.isdigit() or not port_text.isascii():
        raise URLRefused(f"the port {port_text!r} is not a number")
    if len(port_text) > 1 and port_text.startswith("0"):
        raise URLRefused(f"the port {port_text!r} has a leading zero")
    port = int(port_text)
    if not 1 <= port <= 65535:
        raise URLRefused(f"the port {port} is out of range (1–65535)")
    return port


def _path(path: str) -> str:
    if not path:
        return ""
    segments = path[1:].split("/")
    if segments[-1] == "":
        segments.pop()  # one trailing "/" is fine (and dropped)
    for segment in segments:
        if segment == "":
            raise URLRefused("the path has an empty segment ('//')")
        if segment in (".", ".."):
            raise URLRefused(f"the path has a {segment!r} segment")
        if not _PATH_SEGMENT.fullmatch(segment):
            bad = next(c for c in segment if not _PATH_SEGMENT.fullmatch(c))
            raise URLRefused(f"the path contains {bad!r} (only A-Z a-z 0-9 - . _ ~ and '/')")
    return "".join("/" + segment for segment in segments)


def parse_allow_list(entries: object) -> tuple[ServerURL, ...]:
    """The setting's entries, parsed; AllowListError (a configuration error) names a bad one."""
    if isinstance(entries, str | bytes) or not isinstance(entries, Iterable):
        raise AllowListError(f"{SETTING} must be a list of URLs, not {type(entries).__name__}.")
    parsed = []
    for raw in entries:
        text = raw.strip() if isinstance(raw, str) else raw  # "a, b" in the environment is fine
        try:
            parsed.append(parse_server_url(text, entry=True))
        except URLRefused as exc:
            raise AllowListError(f"{SETTING} entry {raw!r} is malformed: {exc}.") from None
    return tuple(parsed)


def check_base_url(url: object, allowed: object) -> ServerURL:
    """The URL, parsed, if an entry of `allowed` allows it; else URLRefused saying why.

    A malformed `allowed` raises AllowListError first, whatever the URL.
    """
    entries = parse_allow_list(allowed)
    try:
        parsed = parse_server_url(url)
    except URLRefused as exc:
        raise URLRefused(f"Model server URL {url!r} refused: {exc}.") from None
    if not entries:
        raise URLRefused(
            f"Model server URL {url!r} refused: this installation allows no model servers ({SETTING} is empty)."
        )
    if not any(entry.allows(parsed) for entry in entries):
        raise URLRefused(
            f"Model server URL {url!r} refused: that server is not on this installation's list of model servers "
            f"({SETTING}: {', '.join(entry.url for entry in entries)})."
        )
    return parsed


def confirm_request_target(checked: ServerURL, *, scheme: str, host: str, port: int | None, path: str) -> None:
    """Raise URLRefused unless a request about to be sent goes where `checked` says.

    The HTTP client parses URLs its own way: this compares what it actually built (its scheme,
    host, port — None meaning the default — and raw path) with what the allow-list passed.
    """
    problems = []
    if scheme.lower() != checked.scheme:
        problems.append(f"scheme {scheme!r}")
    if host.lower().strip("[]") != checked.host:
        problems.append(f"host {host!r}")
    if (DEFAULT_PORTS.get(scheme.lower()) if port is None else port) != checked.port:
        problems.append(f"port {port!r}")
    if not path.startswith(checked.path + "/"):
        problems.append(f"path {path!r}")
    if problems:
        raise URLRefused(
            f"Refusing to send: the request would go to {', '.join(problems)}, not under {checked.url} "
            "(the URL the allow-list passed)."
        )
