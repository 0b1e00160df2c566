"""VLM backends behind one interface, chosen by name from a registry.

- `transformers`: the model in this process (GPU or CPU) through transformers' own classes —
  the same `from_pretrained` path for a hub checkpoint, a local folder or the `tiny` profile;
  an optional PEFT adapter (an SFT'd detector) is applied on top.
- `openai`: any server speaking OpenAI chat completions (vLLM, SGLang, Ollama, a hosted API),
  images sent inline as data URLs; timeouts, retries with backoff, a concurrency limit; only
  to a server on the spec's allow-list (workers/vlm/allowlist.py), checked again per request.

`constrained` keeps answers inside the prompt's grammar: the openai backend asks the server for
the JSON schema (vLLM, SGLang); the transformers backend masks each token itself with xgrammar
(workers/vlm/constrained.py), on the plain and the shared-prefix path alike.
"""

import base64
import io
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from PIL import Image

from workers.vlm.allowlist import check_base_url, confirm_request_target
from workers.vlm.prompts import Prompt


@dataclass(frozen=True)
class ModelSpec:
    name: str  # what outputs are labelled with, e.g. "qwen2.5-vl-7b" or "tiny-qwen2.5-vl"
    backend: str = "transformers"
    model: str = ""  # local folder or hub id (transformers), or the served model name (openai)
    adapter: str | None = None  # PEFT adapter folder: the SFT'd detector
    dtype: str = "auto"  # auto → bf16 on GPU, fp32 on CPU
    max_new_tokens: int = 64
    batch_size: int = 8
    reference_max_pixels: int = 448 * 448  # references are small: they repeat in every prompt
    target_max_pixels: int = 1344 * 756  # the frame being asked about keeps more detail
    base_url: str = ""  # openai: e.g. http://127.0.0.1:8000/v1
    # openai: the servers this worker may send to (VLM_ALLOWED_BASE_URLS, as data: no Django here);
    # empty: none. The backend checks base_url against it, and every request, before sending.
    allowed_base_urls: tuple[str, ...] = ()
    api_key: str = ""  # openai: sent as a bearer token (never stored with outputs)
    timeout_seconds: float = 120.0
    max_retries: int = 3
    concurrency: int = 4  # openai: requests in flight at once (a fleet behind a router takes many)
    # openai: sent as this header on every request, so a prefix-aware router (vLLM's production
    # stack router with --routing-logic session, an Envoy/llm-d gateway) keeps requests that share
    # the reference prefix on the replica whose prefix cache already holds it. Empty: not sent.
    routing_key: str = ""
    routing_header: str = "X-Session-Id"
    prefix_reuse: bool = True  # transformers + Qwen2.5-VL: compute the shared reference prefix once
    constrained: bool = False  # decode only answers the prompt's grammar / JSON schema admits

    @property
    def version(self) -> str:
        return f"{self.name}+{Path(self.adapter).name}" if self.adapter else self.name


@dataclass
class GenerationOutput:
    text: str
    seconds: float
    error: str = ""


class Backend(Protocol):
    spec: ModelSpec

    def generate(self, prompts: list[Prompt]) -> list[GenerationOutput]: ...


BACKENDS: dict[str, Callable[[ModelSpec], Backend]] = {}


def register_backend(name: str):
    def register(factory):
        BACKENDS[name] = factory
        return factory

    return register


def load_backend(spec: ModelSpec) -> Backend:
    try:
        factory = BACKENDS[spec.backend]
    except KeyError:
        raise ValueError(f"Unknown VLM backend {spec.backend!r}; known: {', '.join(sorted(BACKENDS))}.") from None
    return factory(spec)


def fit_pixels(image: Image.Image, max_pixels: int) -> Image.Image:
    """Scale down (never up) to at most max_pixels, keeping the aspect ratio."""
    pixels = image.width * image.height
    if pixels <= max_pixels:
        return image
    scale = (max_pixels / pixels) ** 0.5
    return image.resize((max(1, int(image.width * scale)), max(1, int(image.height * scale))), Image.Resampling.BICUBIC)


class PromptImages:
    """Loads each prompt's images once per budget: the same references recur in every prompt."""

    def __init__(self, reference_max_pixels: int, target_max_pixels: int):
        self.budgets = (reference_max_pixels, target_max_pixels)
        self.cache: dict[tuple[Path, int], Image.Image] = {}

    def load(self, prompt: Prompt) -> list[Image.Image]:
        """The prompt's images, fitted to their budgets. Safe to call from several request threads
        at once: only references are cached (targets are seen once), and a reference loaded twice
        by two threads is the same image."""
        images = []
        for index, path in enumerate(prompt.images):
            if index == prompt.target_index:
                images.append(self._fitted(path, self.budgets[1]))
                continue
            key = (Path(path), self.budgets[0])
            if key not in self.cache:
                self.cache[key] = self._fitted(path, self.budgets[0])
            images.append(self.cache[key])
        return images

    @staticmethod
    def _fitted(path, budget: int) -> Image.Image:
        with Image.open(path) as image:
            return fit_pixels(image.convert("RGB"), budget)


@register_backend("transformers")
class TransformersBackend:
    def __init__(self, spec: ModelSpec):
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        self.spec = spec
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        dtype = {"auto": torch.bfloat16 if self.device.type == "cuda" else torch.float32}.get(
            spec.dtype, getattr(torch, spec.dtype, torch.float32)
        )
        self.processor = AutoProcessor.from_pretrained(spec.model)
        self.processor.tokenizer.padding_side = "left"  # batched generation appends on the right
        model = AutoModelForImageTextToText.from_pretrained(spec.model, dtype=dtype)
        if spec.adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, spec.adapter)
        self.model = model.to(self.device).eval()
        self.images = PromptImages(spec.reference_max_pixels, spec.target_max_pixels)
        self._grammars = None

    @classmethod
    def from_loaded(cls, spec: ModelSpec, model, processor) -> "TransformersBackend":
        """Wrap a model already in memory (benchmarks build real-size random models this way)."""
        backend = cls.__new__(cls)
        backend.spec, backend.model, backend.processor = spec, model.eval(), processor
        backend.device = next(model.parameters()).device
        backend.processor.tokenizer.padding_side = "left"
        backend.images = PromptImages(spec.reference_max_pixels, spec.target_max_pixels)
        backend._grammars = None
        return backend

    def answer_grammars(self):
        """The compiled answer grammars (built on first use: only constrained backends pay)."""
        if self._grammars is None:
            from workers.vlm.constrained import AnswerGrammars
            from workers.vlm.prefix import logits_width, stop_token_ids

            tokenizer = self.processor.tokenizer
            self._grammars = AnswerGrammars(tokenizer, logits_width(self.model), stop_token_ids(self.model, tokenizer))
        return self._grammars

    def _inputs(self, prompts: list[Prompt]):
        texts = [
            self.processor.apply_chat_template(p.messages, add_generation_prompt=True, tokenize=False) for p in prompts
        ]
        images = [self.images.load(p) for p in prompts]
        return self.processor(text=texts, images=images, padding=True, return_tensors="pt").to(self.device)

    def generate(self, prompts: list[Prompt]) -> list[GenerationOutput]:
        from workers.vlm.prefix import PrefixUnsupported, SharedPrefixDecoder, supports_prefix_reuse

        if self.spec.prefix_reuse and len(prompts) > 1 and supports_prefix_reuse(self.model):
            try:
                decoder = SharedPrefixDecoder(
                    self.model,
                    self.processor,
                    self.images.load,
                    self.spec.max_new_tokens,
                    self.spec.batch_size,
                    grammars=self.answer_grammars() if self.spec.constrained else None,
                )
                started = time.perf_counter()
                texts = decoder.generate(prompts)
                seconds = (time.perf_counter() - started) / len(prompts)
                return [GenerationOutput(text=text, seconds=seconds) for text in texts]
            except PrefixUnsupported:
                pass  # e.g. prompts with different references: the plain path below
        return self.generate_plain(prompts)

    def generate_plain(self, prompts: list[Prompt]) -> list[GenerationOutput]:
        """One `generate` per batch of full prompts (the reference path)."""
        import torch

        outputs: list[GenerationOutput] = []
        for start in range(0, len(prompts), self.spec.batch_size):
            batch = prompts[start : start + self.spec.batch_size]
            started = time.perf_counter()
            inputs = self._inputs(batch)
            with torch.inference_mode():
                generated = self.model.generate(
                    **inputs, max_new_tokens=self.spec.max_new_tokens, do_sample=False, **self._constraint(batch)
                )
            new_tokens = generated[:, inputs["input_ids"].shape[1] :]
            texts = self.processor.batch_decode(new_tokens, skip_special_tokens=True)
            seconds = (time.perf_counter() - started) / len(batch)
            outputs.extend(GenerationOutput(text=text.strip(), seconds=seconds) for text in texts)
        return outputs

    def _constraint(self, batch: list[Prompt]) -> dict:
        """`generate` arguments that keep each row's answer inside its prompt's grammar."""
        if not self.spec.constrained:
            return {}
        from transformers import LogitsProcessorList

        grammars = self.answer_grammars()
        return {
            "logits_processor": LogitsProcessorList([grammars.logits_processor(batch)]),
            # Any stop token the grammar allows ends the row (the shared-prefix loop's rule too).
            "eos_token_id": grammars.stop_token_ids,
        }


def _data_url(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


RETRYABLE_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}


@register_backend("openai")
class OpenAIBackend:
    def __init__(self, spec: ModelSpec, sleep: Callable[[float], None] = time.sleep):
        import httpx

        if not spec.base_url:
            raise ValueError("The openai backend needs base_url (e.g. http://127.0.0.1:8000/v1).")
        # Frames and the API key go to this server: only one on the allow-list (raises URLRefused,
        # or AllowListError for a malformed list), in its normal form, and never a redirect elsewhere.
        self.target = check_base_url(spec.base_url, spec.allowed_base_urls)
        self.spec = spec
        self.sleep = sleep
        headers = {"Authorization": f"Bearer {spec.api_key}"} if spec.api_key else {}
        if spec.routing_key and spec.routing_header:
            headers[spec.routing_header] = spec.routing_key
        # One kept-alive connection per request in flight: none is closed and opened again per request.
        connections = max(1, spec.concurrency)
        self.client = httpx.Client(
            base_url=self.target.url,
            timeout=spec.timeout_seconds,
            headers=headers,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
            # A request's headers and body go out at once, not held back by Nagle's algorithm for
            # the server's delayed ACK (40 ms a request on Linux).
            transport=httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]),
        )
        self.images = PromptImages(spec.reference_max_pixels, spec.target_max_pixels)
        # The references' data URLs, encoded once: every prompt sends them first, byte for byte the
        # same, so a server's prefix cache (vLLM, SGLang) reuses their computation across frames.
        self.reference_urls: dict[Path, str] = {}

    def _image_urls(self, prompt: Prompt) -> list[str]:
        urls = []
        for index, (path, image) in enumerate(zip(prompt.images, self.images.load(prompt), strict=True)):
            if index == prompt.target_index:
                urls.append(_data_url(image))
                continue
            if Path(path) not in self.reference_urls:
                self.reference_urls[Path(path)] = _data_url(image)
            urls.append(self.reference_urls[Path(path)])
        return urls

    def _payload(self, prompt: Prompt) -> dict:
        images = iter(self._image_urls(prompt))
        messages = []
        for message in prompt.messages:
            content = []
            for part in message["content"]:
                if part["type"] == "image":
                    content.append({"type": "image_url", "image_url": {"url": next(images)}})
                else:
                    content.append({"type": "text", "text": part["text"]})
            messages.append({"role": message["role"], "content": content})
        payload = {
            "model": self.spec.model,
            "messages": messages,
            "max_tokens": self.spec.max_new_tokens,
            "temperature": 0,
        }
        if self.spec.constrained and prompt.json_schema:
            schema = {"name": prompt.version.replace("-", "_"), "schema": prompt.json_schema}
            payload["response_format"] = {"type": "json_schema", "json_schema": schema}
        return payload

    def _request(self, payload: dict):
        """The request, built; refused (URLRefused) unless the client aims it where the allow-list passed."""
        request = self.client.build_request("POST", "/chat/completions", json=payload)
        url = request.url
        confirm_request_target(
            self.target, scheme=url.scheme, host=url.host, port=url.port, path=url.raw_path.decode("ascii")
        )
        return request

    def _one(self, payload: dict) -> GenerationOutput:
        import httpx

        started = time.perf_counter()
        error = ""
        for attempt in range(self.spec.max_retries + 1):
            request = self._request(payload)
            try:
                response = self.client.send(request)
            except httpx.HTTPError as exc:  # timeouts, refused connections, resets
                error = f"{type(exc).__name__}: {exc}"
            else:
                if response.status_code == 200:
                    try:
                        text = response.json()["choices"][0]["message"]["content"] or ""
                    except (ValueError, KeyError, IndexError, TypeError) as exc:
                        return GenerationOutput("", time.perf_counter() - started, f"Malformed response: {exc}")
                    return GenerationOutput(text.strip(), time.perf_counter() - started)
                error = f"HTTP {response.status_code}: {response.text[:200]}"
                if response.status_code not in RETRYABLE_STATUS:
                    break
            if attempt < self.spec.max_retries:
                self.sleep(min(30.0, 0.5 * 2**attempt))  # exponential backoff
        return GenerationOutput("", time.perf_counter() - started, error)

    def generate(self, prompts: list[Prompt]) -> list[GenerationOutput]:
        # Each request thread encodes its own frame: `concurrency` requests stay in flight.
        with ThreadPoolExecutor(max_workers=max(1, self.spec.concurrency)) as pool:
            return list(pool.map(lambda prompt: self._one(self._payload(prompt)), prompts))
