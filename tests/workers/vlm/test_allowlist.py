"""The model-server allow-list: hostile URLs refused (with the reason), fine ones allowed in their
normal form, malformed entries a configuration error, and the openai backend refusing to send —
to a real server on 127.0.0.1 that must receive nothing."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.workers.vlm.test_openai_backend import ScriptedServer
from workers.vlm.allowlist import (
    AllowListError,
    ServerURL,
    URLRefused,
    check_base_url,
    confirm_request_target,
    parse_allow_list,
)
from workers.vlm.backends import ModelSpec, OpenAIBackend, load_backend
from workers.vlm.prompts import detection_prompt

ALLOWED = [
    "http://vllm:8000/v1",
    "http://127.0.0.1:8000",
    "https://api.example.com/v1",
    "http://[::1]:8000",
    "http://plain",  # no port: port 80 only
    "http://anyport.internal:*/v1",  # ":*": any port
]
NOT_LISTED = "not on this installation's list"
NUMBER = "a number in a form other than a.b.c.d"

HOSTILE = [
    # the classics: an allowed prefix followed by another host
    ("http://vllm:8000.evil.com/v1", "port '8000.evil.com' is not a number"),
    ("http://vllm:8000@evil.com/v1", "user-info"),
    ("http://vllm:8000#@evil.com", "a fragment"),
    ("http://evil.com?vllm:8000", "a query"),
    ("http://evil.com#http://vllm:8000/v1", "a fragment"),
    ("http://evil.com/http://vllm:8000/v1", "the path contains ':'"),
    ("http://127.0.0.1:8000@evil.com", "user-info"),
    ("http://127.0.0.1:8000.evil.com", "is not a number"),
    ("https://api.example.com.evil.com/v1", NOT_LISTED),
    ("https://api.example.com:443.evil.com/v1", "is not a number"),
    ("https://evil.com/api.example.com/v1", NOT_LISTED),
    ("http://vllm%3a8000@evil.com", "percent-encoding"),
    # user-info, backslashes
    ("http://user:pass@vllm:8000/v1", "user-info"),
    ("http://user@vllm:8000/v1", "user-info"),
    ("http://@vllm:8000/v1", "user-info"),
    ("http://vllm:8000\\@evil.com/v1", "a backslash"),
    ("http://evil.com\\.vllm:8000", "a backslash"),
    ("http://vllm:8000/v1\\..\\admin", "a backslash"),
    # path prefix boundary, dot segments, encodings
    ("http://vllm:8000/v1evil", NOT_LISTED),
    ("http://vllm:8000/v", NOT_LISTED),
    ("http://vllm:8000/", NOT_LISTED),
    ("http://vllm:8000", NOT_LISTED),
    ("http://vllm:8000/V1", NOT_LISTED),  # paths compare as written
    ("http://vllm:8000/v1/../admin", "a '..' segment"),
    ("http://vllm:8000/v1/..", "a '..' segment"),
    ("http://vllm:8000/v1/./x", "a '.' segment"),
    ("http://vllm:8000/v1/%2e%2e/admin", "percent-encoding"),
    ("http://vllm:8000/v1/%2E%2E/admin", "percent-encoding"),
    ("http://vllm:8000/v1%2fadmin", "percent-encoding"),
    ("http://vllm:8000/v1/%252e%252e/", "percent-encoding"),
    ("http://vllm:8000//v1", "an empty segment"),
    ("http://vllm:8000/v1//x", "an empty segment"),
    ("http://vllm:8000/v1/..;/admin", "the character ';'"),
    ("http://vllm:8000/v1;x", "the character ';'"),
    ("http://vllm:8000/v1/a:b", "the path contains ':'"),
    ("http://vllm:8000/v1/[x]", "the path contains '['"),
    ("http://vllm:8000/v1/*", "the path contains '*'"),
    ("http://vllm:8000/v1?x=1", "a query"),
    ("http://vllm:8000/v1?", "a query"),
    ("http://vllm:8000/v1#", "a fragment"),
    # scheme
    ("https://vllm:8000/v1", NOT_LISTED),
    ("http://api.example.com/v1", NOT_LISTED),
    ("ftp://vllm:8000/v1", "the scheme 'ftp'"),
    ("file:///etc/passwd", "the scheme 'file'"),
    ("gopher://vllm:8000/v1", "the scheme 'gopher'"),
    ("javascript:alert(1)", "the character '('"),
    ("data:text/plain,hi", "the character ','"),
    ("//vllm:8000/v1", "must start with http:// or https://"),
    ("vllm:8000/v1", "must start with http:// or https://"),
    ("http:/vllm:8000/v1", "must start with http:// or https://"),
    ("http:vllm:8000/v1", "must start with http:// or https://"),
    ("http:\\\\vllm:8000/v1", "a backslash"),
    ("1http://vllm:8000/v1", "must start with http:// or https://"),
    # host: missing, dots, labels, length
    ("http://", "has no host"),
    ("http:///v1", "has no host"),
    ("http://:8000/v1", "has no host"),
    ("http://vllm.:8000/v1", "ends with a dot"),
    ("http://127.0.0.1.:8000", "ends with a dot"),
    ("https://api.example.com./v1", "ends with a dot"),
    ("http://.vllm:8000/v1", "an empty label"),
    ("http://a..vllm:8000/v1", "an empty label"),
    ("http://-vllm:8000/v1", "is not a valid name"),
    ("http://vllm-:8000/v1", "is not a valid name"),
    ("http://vl*lm:8000/v1", "is not a valid name"),
    ("http://" + "a" * 64 + ":8000/v1", "is not a valid name"),
    ("http://" + "a." * 127 + "a:8000/v1", "longer than 253"),
    ("http://xn--vllm-abc:8000/v1", NOT_LISTED),
    ("http://evil.com:8000", NOT_LISTED),
    # IPv4 in other forms
    ("http://2130706433:8000/", NUMBER),
    ("http://0x7f000001:8000/", NUMBER),
    ("http://0x7f.0.0.1:8000/", NUMBER),
    ("http://0177.0.0.1:8000/", NUMBER),
    ("http://127.1:8000/", NUMBER),
    ("http://127.0.1:8000/", NUMBER),
    ("http://127.0.0.01:8000/", NUMBER),
    ("http://127.000.000.001:8000/", NUMBER),
    ("http://256.0.0.1:8000/", NUMBER),
    ("http://1.2.3.4.5:8000/", NUMBER),
    ("http://0:8000/", NUMBER),
    ("http://0x:8000/", NUMBER),
    ("http://vllm.0x10:8000/v1", NUMBER),
    ("http://vllm.8000/v1", NUMBER),
    ("http://0.0.0.0:8000", NOT_LISTED),
    ("http://127.0.0.2:8000", NOT_LISTED),
    # IPv6
    ("http://[::1]:8001", NOT_LISTED),
    ("http://[::2]:8000", NOT_LISTED),
    ("http://[::1]", NOT_LISTED),
    ("http://[::ffff:127.0.0.1]:8000", NOT_LISTED),  # IPv4-mapped is another literal
    ("http://[::1%25eth0]:8000", "percent-encoding"),
    ("http://[::1:8000", "missing its closing ']'"),
    ("http://[vllm]:8000", "is not an IPv6 address"),
    ("http://[v1.fe]:8000", "is not an IPv6 address"),
    ("http://[127.0.0.1]:8000", "is not an IPv6 address"),
    ("http://[::1]x:8000", "only ':port' may follow"),
    ("http://[::1]]:8000", "only ':port' may follow"),
    ("http://::1:8000", "more than one ':'"),
    ("http://vll]m:8000", "brackets are only allowed"),
    ("http://vllm[::1]:8000", "brackets are only allowed"),
    # ports
    ("http://vllm:/v1", "the port is empty"),
    ("http://vllm:0/v1", "out of range"),
    ("http://vllm:65536/v1", "out of range"),
    ("http://vllm:99999999999999999999/v1", "out of range"),
    ("http://vllm:08000/v1", "leading zero"),
    ("http://vllm:8000:8000/v1", "more than one ':'"),
    ("http://vllm:8000.:8000/v1", "more than one ':'"),
    ("http://vllm:+8000/v1", "the character '+'"),
    ("http://vllm:-1/v1", "is not a number"),
    ("http://vllm:0x1f40/v1", "is not a number"),
    ("http://vllm:8001/v1", NOT_LISTED),
    ("http://vllm/v1", NOT_LISTED),  # port 80 ≠ 8000
    ("http://plain:8080/v1", NOT_LISTED),  # an entry without a port means port 80 only
    ("http://plain:443/v1", NOT_LISTED),
    ("https://plain/v1", NOT_LISTED),
    ("http://vllm:*/v1", "'*' is only allowed as the port of an allow-list entry"),
    ("http://anyport.internal:*/v1", "'*' is only allowed as the port of an allow-list entry"),
    ("http://anyport.internal:9000/v2", NOT_LISTED),
    # whitespace, control and non-ASCII characters
    ("http://vllm:8000 /v1", "whitespace or a control character"),
    (" http://vllm:8000/v1", "whitespace or a control character"),
    ("http://vllm:8000/v1 ", "whitespace or a control character"),
    ("http://vllm:8000/v1\n", "whitespace or a control character"),
    ("http://vllm:8000/v1\r\nX-Evil: 1", "whitespace or a control character"),
    ("http://vllm\t:8000/v1", "whitespace or a control character"),
    ("http://vllm:8000\x00.evil.com", "whitespace or a control character"),
    ("http://vllm:8000/v1\x7f", "whitespace or a control character"),
    ("http://vllm\u200b:8000/v1", "whitespace or a control character"),  # zero-width space
    ("http://vllm\u3000:8000/v1", "whitespace or a control character"),  # ideographic space
    ("http://\uff56llm:8000/v1", "non-ASCII"),  # fullwidth v: NFKC makes it "vllm"
    ("http://vllm\u3002evil.com:8000/v1", "non-ASCII"),  # ideographic full stop: IDNA makes it "."
    ("http://vllm:\uff18\uff10\uff10\uff10/v1", "non-ASCII"),  # fullwidth digits
    ("http://vllm:8000/v1/\u212a", "non-ASCII"),  # Kelvin sign
    ("http://b\u00fccher.example:8000/v1", "non-ASCII"),
    ("http://vllm:8000/v1<script>", "the character '<'"),
    ('http://vllm:8000/v1"', "the character '\"'"),
    # not a URL at all
    ("", "is empty"),
    (None, "must be text"),
    (b"http://vllm:8000/v1", "must be text"),
    ("http://vllm:8000/v1/" + "a" * 3000, "longer than 2000"),
]


@pytest.mark.parametrize(("url", "reason"), HOSTILE, ids=[repr(u)[:60] for u, _ in HOSTILE])
def test_hostile_urls_are_refused_with_the_reason(url, reason):
    with pytest.raises(URLRefused) as refused:
        check_base_url(url, ALLOWED)
    assert reason in str(refused.value)
    assert "refused" in str(refused.value)


FINE = [
    ("http://vllm:8000/v1", "http://vllm:8000/v1"),
    ("http://vllm:8000/v1/", "http://vllm:8000/v1"),
    ("http://vllm:8000/v1/chat", "http://vllm:8000/v1/chat"),
    ("http://vllm:8000/v1/a.b_c~d-e/", "http://vllm:8000/v1/a.b_c~d-e"),
    ("HTTP://VLLM:8000/v1", "http://vllm:8000/v1"),  # scheme and host: normalised, not refused
    ("Http://Vllm:8000/v1", "http://vllm:8000/v1"),
    ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
    ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
    ("http://127.0.0.1:8000/anything/v1", "http://127.0.0.1:8000/anything/v1"),
    ("https://api.example.com/v1", "https://api.example.com/v1"),
    ("https://api.example.com:443/v1", "https://api.example.com/v1"),
    ("https://API.Example.COM/v1/", "https://api.example.com/v1"),
    ("http://[::1]:8000/v1", "http://[::1]:8000/v1"),
    ("http://[0:0:0:0:0:0:0:1]:8000", "http://[::1]:8000"),
    ("http://[0::1]:8000", "http://[::1]:8000"),
    ("http://plain/v1", "http://plain/v1"),
    ("http://plain:80/v1", "http://plain/v1"),
    ("http://anyport.internal:1/v1", "http://anyport.internal:1/v1"),
    ("http://anyport.internal:65535/v1/x", "http://anyport.internal:65535/v1/x"),
    ("http://anyport.internal/v1", "http://anyport.internal/v1"),
]


@pytest.mark.parametrize(("url", "normal"), FINE)
def test_allowed_urls_pass_in_their_normal_form(url, normal):
    assert check_base_url(url, ALLOWED).url == normal


@pytest.mark.parametrize(
    ("entry", "url", "allowed"),
    [
        ("http://vllm:8000/v1/", "http://vllm:8000/v1", True),  # an entry's trailing "/" is the same entry
        ("http://vllm:8000/v1/", "http://vllm:8000/v1x", False),
        ("http://vllm:8000/", "http://vllm:8000/anything", True),
        ("http://vllm:8000", "http://vllm:8000", True),
        ("HTTP://VLLM:8000/v1", "http://vllm:8000/v1/x", True),
        ("http://vllm:80", "http://vllm/v1", True),
        ("http://vllm", "http://vllm:8000", False),
        ("https://vllm", "https://vllm:443", True),
        ("https://vllm", "https://vllm:8443", False),
        ("http://127.0.0.1:*", "http://127.0.0.1:54321/v1", True),
        ("http://127.0.0.1:*", "http://127.0.0.2:54321/v1", False),
        ("http://127.0.0.1:*", "https://127.0.0.1:54321/v1", False),
        ("http://[::1]:*/v1", "http://[::1]:9/v1/x", True),
        ("http://[::1]:*/v1", "http://[::1]:9/v2", False),
        ("http://vllm.internal:8000/", "http://internal:8000/", False),
        ("http://internal:8000/", "http://vllm.internal:8000/", False),
    ],
)
def test_entry_semantics(entry, url, allowed):
    if allowed:
        check_base_url(url, [entry])
    else:
        with pytest.raises(URLRefused, match=NOT_LISTED):
            check_base_url(url, [entry])


@pytest.mark.parametrize(
    ("entries", "reason"),
    [
        (["vllm:8000"], "must start with http:// or https://"),
        (["http://user@vllm:8000"], "user-info"),
        (["http://vllm:8000/v1?x=1"], "a query"),
        (["http://vllm:8000/#x"], "a fragment"),
        (["http://vllm:abc"], "is not a number"),
        (["http://vllm:*8"], "is not a number"),
        (["http://vllm:99999"], "out of range"),
        (["ftp://vllm"], "the scheme 'ftp'"),
        (["http://2130706433"], NUMBER),
        (["http://vllm:8000/%2e"], "percent-encoding"),
        (["http://*:8000"], "is not a valid name"),
        (["http://vllm.:8000"], "ends with a dot"),
        (["http://vllm:8000/../x"], "a '..' segment"),
        (["http://vllm:8000/v1", ""], "is empty"),
        (["http://vllm:8000/v1", "   "], "is empty"),
        (["http://vl lm:8000"], "whitespace"),
        (["http://\uff56llm:8000"], "non-ASCII"),
        ([None], "must be text"),
        ("http://vllm:8000/", "must be a list of URLs, not str"),
        (None, "must be a list of URLs, not NoneType"),
    ],
)
def test_a_malformed_allow_list_is_a_configuration_error(entries, reason):
    with pytest.raises(AllowListError) as error:
        parse_allow_list(entries)
    assert reason in str(error.value) and "VLM_ALLOWED_BASE_URLS" in str(error.value)
    with pytest.raises(AllowListError):  # whatever the URL: the list is checked first
        check_base_url("http://vllm:8000/v1", entries)


def test_entries_may_have_spaces_around_them_as_in_an_environment_list():
    assert [e.url for e in parse_allow_list([" http://vllm:8000/v1", "http://127.0.0.1:* "])] == [
        "http://vllm:8000/v1",
        "http://127.0.0.1:*",
    ]


def test_an_empty_allow_list_allows_nothing():
    with pytest.raises(URLRefused, match="allows no model servers"):
        check_base_url("http://vllm:8000/v1", [])


def test_the_request_target_is_confirmed_against_the_checked_url():
    checked = ServerURL("http", "vllm", 8000, "/v1")
    confirm_request_target(checked, scheme="http", host="vllm", port=8000, path="/v1/chat/completions")
    confirm_request_target(ServerURL("http", "plain", 80, ""), scheme="http", host="plain", port=None, path="/x")
    for field, value, problem in [
        ("scheme", "https", "scheme"),
        ("host", "evil.com", "host"),
        ("port", 8001, "port"),
        ("port", None, "port"),  # None: the default port, 80 ≠ 8000
        ("path", "/v1evil/chat/completions", "path"),
        ("path", "/chat/completions", "path"),
    ]:
        target = {"scheme": "http", "host": "vllm", "port": 8000, "path": "/v1/chat/completions", field: value}
        with pytest.raises(URLRefused, match=problem):
            confirm_request_target(checked, **target)


# --- the worker: refuses before it sends anything -------------------------------------------


@pytest.fixture
def server():
    scripted = ScriptedServer()
    yield scripted
    scripted.close()


def _spec(base_url, allowed, **overrides) -> ModelSpec:
    settings = {"max_retries": 0, "timeout_seconds": 2.0, "concurrency": 1, "api_key": "secret-token"}
    return ModelSpec(
        name="served",
        backend="openai",
        model="m",
        base_url=base_url,
        allowed_base_urls=tuple(allowed),
        **{**settings, **overrides},
    )


def test_the_worker_sends_to_an_allowed_server(server, world):
    cards, frames = world
    port = server.httpd.server_port
    out = load_backend(_spec(server.url, [f"http://127.0.0.1:{port}/v1"])).generate(
        [detection_prompt(cards, frames[0])]
    )
    assert out[0].error == "" and [r["path"] for r in server.requests] == ["/v1/chat/completions"]


WORKER_HOSTILE = [  # {here} is the scripted server's 127.0.0.1:port, {port} its port
    ("http://{here}/v1", [], "allows no model servers"),  # a spec without an allow-list
    ("http://{here}/v1", ["http://127.0.0.1"], NOT_LISTED),  # no port: 80 only
    ("http://{here}/v1", ["http://127.0.0.1:1/v1"], NOT_LISTED),
    ("http://{here}/v1", ["http://localhost:*"], NOT_LISTED),
    ("http://{here}/v1evil", ["http://{here}/v1"], NOT_LISTED),
    ("https://{here}/v1", ["http://{here}/v1"], NOT_LISTED),
    ("http://vllm:8000@{here}/v1", ["http://vllm:8000/"], "user-info"),
    ("http://user:pass@{here}/v1", ["http://127.0.0.1:*"], "user-info"),
    ("http://{here}/v1/../v2", ["http://{here}/v1"], "a '..' segment"),
    ("http://{here}/v1/%2e%2e/v2", ["http://{here}/v1"], "percent-encoding"),
    ("http://{here}/v1?x=1", ["http://127.0.0.1:*"], "a query"),
    ("http://2130706433:{port}/v1", ["http://127.0.0.1:*"], NUMBER),
    ("http://127.1:{port}/v1", ["http://127.0.0.1:*"], NUMBER),
    ("http://[::ffff:127.0.0.1]:{port}/v1", ["http://127.0.0.1:*"], NOT_LISTED),
    (" http://{here}/v1", ["http://127.0.0.1:*"], "whitespace"),
    ("http://{here}/v1", ["http://127.0.0.1:*/v1", "http://user@x"], "malformed"),  # a bad list: nothing
]


@pytest.mark.parametrize(("base_url", "allowed", "reason"), WORKER_HOSTILE)
def test_the_worker_refuses_a_url_off_the_list_before_sending_anything(server, world, base_url, allowed, reason):
    cards, frames = world
    port = server.httpd.server_port
    fill = {"here": f"127.0.0.1:{port}", "port": port}
    spec = _spec(base_url.format(**fill), [entry.format(**fill) for entry in allowed])
    with pytest.raises((URLRefused, AllowListError)) as refused:
        load_backend(spec).generate([detection_prompt(cards, frames[0])])
    assert reason in str(refused.value)
    assert server.requests == []


def test_each_request_is_checked_again_before_it_is_sent(world):
    """Were the client re-aimed after the check (a bug, a parsing difference), nothing is sent."""
    cards, frames = world
    allowed, elsewhere = ScriptedServer(), ScriptedServer()
    try:
        backend = OpenAIBackend(_spec(allowed.url, [allowed.url]))
        backend.client.base_url = elsewhere.url
        with pytest.raises(URLRefused, match="Refusing to send"):
            backend.generate([detection_prompt(cards, frames[0])])
        assert allowed.requests == [] and elsewhere.requests == []
    finally:
        allowed.close()
        elsewhere.close()


def test_a_redirect_from_the_allowed_server_is_not_followed(world):
    cards, frames = world
    elsewhere = ScriptedServer()

    class Redirect(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(307)
            self.send_header("Location", elsewhere.url + "/chat/completions")
            self.send_header("Content-Length", "0")
            self.end_headers()

    redirecting = ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    threading.Thread(target=redirecting.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{redirecting.server_port}/v1"
        out = load_backend(_spec(url, [url])).generate([detection_prompt(cards, frames[0])])
        assert out[0].error.startswith("HTTP 307") and elsewhere.requests == []
    finally:
        redirecting.shutdown()
        redirecting.server_close()
        elsewhere.close()
