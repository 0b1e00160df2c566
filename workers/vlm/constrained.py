"""Schema-guided decoding for the local `transformers` backend (ModelSpec.constrained).

Each prompt says what its answer may be: an EBNF grammar (`Prompt.answer_grammar`, detection:
each roster name at most once, alphabetically) or else a JSON schema (`Prompt.json_schema`:
captions, judgements). Before every greedy step the tokens that would leave the grammar are set
to -inf, so the argmax is the model's favourite among the tokens that keep the answer parseable;
the answer ends only where the grammar allows, with one of the model's stop tokens.

The library is xgrammar 0.2.9 (MLC; the default structured-output engine of vLLM and SGLang):
it reads a transformers tokenizer as it is, installs beside torch 2.14 / transformers 5 adding
only apache-tvm-ffi, masks on CPU (C++) and GPU (Triton), and takes EBNF for what JSON Schema
cannot say. llguidance (guidance-ai; an optional engine of vLLM and llama.cpp) is as well kept
and, by its authors' figures (not measured here), as fast per token, but has less glue for
transformers; outlines-core indexes the whole vocabulary per
grammar when it compiles (a cost per new roster), handles regular languages only, and its
vocabulary loader reads from the hub. None of the three enforces JSON Schema's `uniqueItems`:
the detection answer is an EBNF grammar (workers/vlm/prompts.py `detection_grammar`).

A grammar is compiled once per backend and cached by its text (compiling costs milliseconds to
a second), then every batch row gets its own matcher: the state of its answer so far. The
plain path (`model.generate`, a logits processor) and the shared-prefix path (its own greedy
loop) use the same `RowConstraints`, so both mask identically and their greedy outputs agree.
xgrammar is imported only here, and only when a constrained backend first needs it.
"""

import json
from collections.abc import Iterable, Sequence

from workers.vlm.prompts import Prompt


def _xgrammar():
    try:
        import xgrammar
    except ImportError as exc:  # the openai backend's constrained decoding needs no local library
        raise ImportError(
            "Constrained decoding on the transformers backend needs xgrammar (requirements-ml.txt)."
        ) from exc
    return xgrammar


def grammar_key(prompt: Prompt) -> str | None:
    """What the answer is constrained to, as text: the cache key of its compiled grammar."""
    if prompt.answer_grammar:
        return "ebnf:" + prompt.answer_grammar
    if prompt.json_schema:
        return "json_schema:" + json.dumps(prompt.json_schema, sort_keys=True)
    return None


# A JSON string value between two lengths, with no character JSON forbids unescaped (U+0000–U+001F).
_PRINTABLE_STRING = "^[^\\x00-\\x1f]{%d,%s}$"


def _without_length_bounded_strings(schema):
    """The schema with each `minLength`/`maxLength` string rewritten as the same bounds over a
    `pattern` that excludes control characters. xgrammar 0.2.9 compiles a length-bounded
    string to a rule that admits raw control characters (a newline, a tab: json.loads refuses
    them), while its `pattern` strings and unbounded strings exclude them. Patterns also admit
    no escapes, so such a field cannot hold a double quote or a backslash: a narrower answer,
    still one the schema allows."""
    if isinstance(schema, list):
        return [_without_length_bounded_strings(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: _without_length_bounded_strings(value) for key, value in schema.items()}
    bounded = "minLength" in schema or "maxLength" in schema
    if schema.get("type") == "string" and bounded and not {"pattern", "enum", "const", "format"} & schema.keys():
        low, high = schema.pop("minLength", 0), schema.pop("maxLength", "")
        schema["pattern"] = _PRINTABLE_STRING % (low, high)
    return schema


class AnswerGrammars:
    """The prompts' answer grammars, compiled for one model's tokenizer, each once."""

    def __init__(self, tokenizer, vocab_size: int, stop_token_ids: Iterable[int]):
        xgr = _xgrammar()
        # vocab_size is the logits' width (the model's, often padded past len(tokenizer)): the
        # masks must cover every id the model can score, or padded ids could slip through.
        self.vocab_size = vocab_size
        self.stop_token_ids = sorted(set(stop_token_ids))
        self.info = xgr.TokenizerInfo.from_huggingface(
            tokenizer, vocab_size=vocab_size, stop_token_ids=self.stop_token_ids
        )
        self.compiler = xgr.GrammarCompiler(self.info, max_threads=1)  # workers share their cores
        self.compiled: dict[str, object] = {}

    def compile(self, prompt: Prompt):
        """The prompt's compiled grammar (an xgrammar CompiledGrammar), or None: decode freely."""
        key = grammar_key(prompt)
        if key is None:
            return None
        if key not in self.compiled:
            if prompt.answer_grammar:
                self.compiled[key] = self.compiler.compile_grammar(prompt.answer_grammar)
            else:
                # Compact JSON (`{"a": 1, "b": 2}`), as the prompts' examples are written: a
                # model cannot spend its token budget on whitespace. Strings admit no raw
                # control characters (xgrammar's JSON string rule), so json.loads reads them.
                schema = json.dumps(_without_length_bounded_strings(prompt.json_schema))
                self.compiled[key] = self.compiler.compile_json_schema(schema, any_whitespace=False)
        return self.compiled[key]

    def rows(self, prompts: Sequence[Prompt]) -> "RowConstraints":
        return RowConstraints([self.compile(prompt) for prompt in prompts], self.vocab_size)

    def logits_processor(self, prompts: Sequence[Prompt]) -> "GrammarLogitsProcessor":
        """For one `model.generate` call over these prompts, in their order (it keeps state)."""
        return GrammarLogitsProcessor(self.rows(prompts))


class RowConstraints:
    """One grammar matcher per batch row (None: that row decodes freely): masks the next token's
    logits and follows the tokens each row chose."""

    def __init__(self, compiled: Sequence[object | None], vocab_size: int):
        xgr = _xgrammar()
        self._apply = xgr.apply_token_bitmask_inplace
        self.matchers = [None if grammar is None else xgr.GrammarMatcher(grammar) for grammar in compiled]
        self.bitmask = xgr.allocate_token_bitmask(len(compiled), vocab_size)

    def mask(self, logits):
        """`logits` (rows × vocab) with the tokens no row's grammar allows at -inf; float32 (the
        kernels' type: exact for bf16/fp16 logits, so the argmax does not change)."""
        logits = logits.float().contiguous()
        active = [row for row, matcher in enumerate(self.matchers) if matcher and not matcher.is_terminated()]
        for row in active:
            self.matchers[row].fill_next_token_bitmask(self.bitmask, row)
        if active:
            self._apply(logits, self.bitmask.to(logits.device, non_blocking=True), indices=active)
        return logits

    def accept(self, row: int, token: int) -> None:
        """Row `row` chose `token` (one its mask allowed); a finished row's matcher is left alone."""
        matcher = self.matchers[row]
        if matcher is None or matcher.is_terminated():
            return
        if not matcher.accept_token(token):
            raise RuntimeError(f"Token {token} chosen for row {row} is outside its answer grammar.")


class GrammarLogitsProcessor:
    """A transformers logits processor (`generate` calls it once per step with the sequences so
    far and the next token's scores) over RowConstraints. xgrammar ships one too
    (`xgrammar.contrib.hf`), but it needs a grammar for every row; this one lets a row without
    a grammar decode freely and shares its masking with the shared-prefix loop."""

    def __init__(self, rows: RowConstraints):
        self.rows = rows
        self.started = False

    def __call__(self, input_ids, scores):
        if self.started:  # from the second step on, the last column is what each row chose
            for row, token in enumerate(input_ids[:, -1].tolist()):
                self.rows.accept(row, token)
        self.started = True
        return self.rows.mask(scores)
