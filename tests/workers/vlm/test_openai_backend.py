"""The openai backend against a real HTTP server on 127.0.0.1 that speaks chat completions."""

import hashlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from workers.vlm.backends import ModelSpec, OpenAIBackend, load_backend
from workers.vlm.prompts import detection_prompt


class ScriptedServer:
    """Answers each request with the next scripted step: ("ok", text) | ("status", code) |
    ("sleep", seconds) | ("garbage", body) | ("digest", None): the answer names the request's
    last image (a digest of its data URL). `delay` holds every request that long; `max_in_flight`
    is the most requests it held at once."""

    def __init__(self):
        self.script: list[tuple[str, object]] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.delay, self.in_flight, self.max_in_flight = 0.0, 0, 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.requests.append(
                        {
                            "path": self.path,
                            "body": body,
                            "auth": self.headers.get("Authorization"),
                            "routing": self.headers.get("X-Session-Id"),
                        }
                    )
                    kind, value = server.script.pop(0) if server.script else ("ok", '["Ellie"]')
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                time.sleep(server.delay)
                with server.lock:
                    server.in_flight -= 1
                if kind == "digest":
                    kind, value = "ok", last_image_digest(body)
                if kind == "sleep":
                    time.sleep(value)
                    kind, value = "ok", "late"
                if kind == "status":
                    self.send_response(value)
                    self.end_headers()
                    self.wfile.write(b'{"error": "busy"}')
                    return
                payload = (
                    value.encode()
                    if kind == "garbage"
                    else json.dumps({"choices": [{"message": {"role": "assistant", "content": value}}]}).encode()
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        class QuietServer(ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # the timeout test hangs up on a sleeping handler on purpose

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/v1"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def last_image_digest(body: dict) -> str:
    urls = [p["image_url"]["url"] for p in body["messages"][0]["content"] if p["type"] == "image_url"]
    return hashlib.sha256(urls[-1].encode()).hexdigest()[:12]


@pytest.fixture
def server():
    scripted = ScriptedServer()
    yield scripted
    scripted.close()


def backend(server, **overrides) -> OpenAIBackend:
    settings = {"max_new_tokens": 32, "timeout_seconds": 2.0, "max_retries": 2, "concurrency": 2}
    spec = ModelSpec(
        name="served",
        backend="openai",
        model="Qwen/Qwen2.5-VL-7B-Instruct",
        base_url=server.url,
        allowed_base_urls=("http://127.0.0.1:*",),  # the allow-list a worker gets (tests/workers/vlm/test_allowlist.py)
        api_key="secret-token",
        **{**settings, **overrides},
    )
    sleeps: list[float] = []
    instance = OpenAIBackend(spec, sleep=sleeps.append)
    instance.sleeps = sleeps
    return instance


def test_sends_the_interleaved_prompt_with_inline_images(server, world):
    cards, frames = world
    out = backend(server).generate([detection_prompt(cards, frames[0])])
    assert out[0].text == '["Ellie"]' and out[0].error == ""
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["auth"] == "Bearer secret-token"
    body = request["body"]
    assert body["model"] == "Qwen/Qwen2.5-VL-7B-Instruct" and body["max_tokens"] == 32 and body["temperature"] == 0
    parts = body["messages"][0]["content"]
    images = [p for p in parts if p["type"] == "image_url"]
    assert len(images) == 4 and all(p["image_url"]["url"].startswith("data:image/jpeg;base64,") for p in images)
    assert parts[1] == {"type": "text", "text": f"Ellie: {cards[0].description}\n"}


def test_5xx_and_429_are_retried_with_backoff(server, world):
    cards, frames = world
    server.script = [("status", 503), ("status", 429), ("ok", '["Victor"]')]
    client = backend(server)
    out = client.generate([detection_prompt(cards, frames[0])])
    assert out[0].text == '["Victor"]' and len(server.requests) == 3
    assert client.sleeps == [0.5, 1.0]


def test_gives_up_after_the_retries_and_reports_the_error(server, world):
    cards, frames = world
    server.script = [("status", 500)] * 3
    out = backend(server).generate([detection_prompt(cards, frames[0])])
    assert out[0].text == "" and out[0].error.startswith("HTTP 500") and len(server.requests) == 3


def test_client_errors_are_not_retried(server, world):
    cards, frames = world
    server.script = [("status", 400)]
    out = backend(server).generate([detection_prompt(cards, frames[0])])
    assert out[0].error.startswith("HTTP 400") and len(server.requests) == 1


def test_a_slow_server_times_out_and_is_retried(server, world):
    cards, frames = world
    server.script = [("sleep", 3.0), ("ok", "[]")]
    out = backend(server, timeout_seconds=0.5).generate([detection_prompt(cards, frames[0])])
    assert out[0].text == "[]" and len(server.requests) == 2


def test_malformed_responses_are_reported(server, world):
    cards, frames = world
    server.script = [("garbage", "<html>oops</html>")]
    out = backend(server).generate([detection_prompt(cards, frames[0])])
    assert out[0].text == "" and "Malformed response" in out[0].error


def test_many_prompts_run_concurrently_and_keep_their_order(server, world):
    cards, frames = world
    server.script, server.delay = [("digest", None)] * 6, 0.2
    client = backend(server)  # concurrency 2
    prompts = [detection_prompt(cards, frame) for frame in frames]
    out = client.generate(prompts)
    # each answer names its own prompt's frame: the order is the prompts', not the answers' arrival
    expected = [last_image_digest(client._payload(prompt)) for prompt in prompts]
    assert len(set(expected)) == 6
    assert [o.text for o in out] == expected
    assert server.max_in_flight == 2  # up to the concurrency limit at once, never more


def test_every_frame_is_sent_after_the_same_reference_prefix_with_the_routing_key(server, world):
    """What a fleet's prefix caches and a prefix-aware router need: every request starts with the
    references and descriptions, byte for byte the same, and carries the project's routing key."""
    cards, frames = world
    server.script = [("digest", None)] * 6
    client = backend(server, concurrency=6, routing_key="vive-7-abc123")
    client.generate([detection_prompt(cards, frame) for frame in frames])
    assert len(server.requests) == 6 and {r["routing"] for r in server.requests} == {"vive-7-abc123"}
    contents = [request["body"]["messages"][0]["content"] for request in server.requests]
    prefixes = [json.dumps(content[:-1]) for content in contents]  # everything before the frame
    assert len(set(prefixes)) == 1 and len(prefixes[0]) > 1000  # the references' images are in it
    frames_sent = {json.dumps(content[-1]) for content in contents}
    assert len(frames_sent) == 6  # the frame, last, differs
    assert all(content[-1]["type"] == "image_url" for content in contents)


def test_without_a_routing_key_no_routing_header_is_sent(server, world):
    cards, frames = world
    backend(server).generate([detection_prompt(cards, frames[0])])
    assert server.requests[0]["routing"] is None


def test_unreachable_server_is_an_error_not_a_crash(world):
    cards, frames = world
    spec = ModelSpec(
        name="x",
        backend="openai",
        model="m",
        base_url="http://127.0.0.1:9/v1",
        allowed_base_urls=("http://127.0.0.1:9/v1",),
        max_retries=1,
    )
    out = OpenAIBackend(spec, sleep=lambda s: None).generate([detection_prompt(cards, frames[0])])
    assert out[0].text == "" and "ConnectError" in out[0].error


def test_needs_a_base_url():
    with pytest.raises(ValueError, match="needs base_url"):
        load_backend(ModelSpec(name="x", backend="openai", model="m"))


def test_constrained_decoding_sends_the_prompts_json_schema(server, world):
    from workers.vlm.prompts import caption_prompt

    cards, frames = world
    client = backend(server, constrained=True)
    client.generate([detection_prompt(cards, frames[0]), caption_prompt(cards, frames[0], detected=True)])
    formats = sorted((r["body"]["response_format"] for r in server.requests), key=lambda f: f["json_schema"]["name"])
    assert [f["json_schema"]["name"] for f in formats] == ["caption_v1", "detect_v1"]
    assert formats[1]["json_schema"]["schema"]["items"]["enum"] == ["Ellie", "Sprite", "Victor"]
    assert formats[0]["json_schema"]["schema"]["required"] == ["scene", "background", "characters", "salient_objects"]
    server.requests.clear()
    backend(server).generate([detection_prompt(cards, frames[0])])
    assert "response_format" not in server.requests[0]["body"]
