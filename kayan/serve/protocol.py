"""The HTTP protocol of ``kayan serve``: request bodies in, Hugging Face-shaped answers out.

The shape is the Hugging Face Inference API's for token classification, so its clients
(``huggingface_hub.InferenceClient``, plain ``requests`` code) work unchanged::

    POST /   {"inputs": "text" | ["text", ...],
              "parameters": {"aggregation_strategy": "simple", "ignore_labels": ["O"]}}
    200      [{"entity_group": "LOC", "score": 0.98, "word": "بغداد", "start": 11, "end": 16}, ...]

One string in gives one list of entities; a list of strings gives one such list per string.
``start``/``end`` are character offsets into the input, exactly as ``kayan.load(m).predict`` gives
them, and ``word == input[start:end]``. Kayan tags whole words, so every aggregated strategy
(``simple``, ``first``, ``average``, ``max``) returns the Predictor's entities (score: the mean of
its words' confidences); ``none`` returns one item per word with its tag as ``entity`` and its
word index as ``index``. ``stride`` is accepted and ignored (the model's own windows are used);
other keys (``options``, ...) are ignored.

Every error is ``{"error": "..."}``: a body that is not UTF-8 or not JSON is 400, a field of the
wrong type 422 (the message names the field), a text, body or batch over the server's limits 413,
a body that does not all come within the server's ``--body-timeout`` 408, and a request refused
because the server's queue is full 503 with ``Retry-After``.
Everything here is pure: no HTTP framework, no model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kayan.inference.predict import Document

STRATEGIES = ("none", "simple", "first", "average", "max")


class ApiError(Exception):
    """An error a client caused: its HTTP status and a one-line message naming the field; ``close``: the
    connection cannot carry another request (its body was not read to the end) and is closed."""

    def __init__(self, status: int, message: str, *, close: bool = False, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.close, self.headers = status, message, close, headers


@dataclass(frozen=True)
class Limits:
    """What one request may hold, and how long its body may take (the ``kayan serve`` options of the same names).

    Args:
        max_chars: characters in one text.
        max_body: bytes in one request body.
        max_inputs: texts in one request.
        body_timeout: seconds from the first read of a body to its last byte (else 408).
    """

    max_chars: int = 100_000
    max_body: int = 4 * 1024 * 1024
    max_inputs: int = 256
    body_timeout: float = 20.0


@dataclass(frozen=True)
class PredictRequest:
    """A validated request: its texts, whether ``inputs`` was one string, and the parameters."""

    texts: tuple[str, ...]
    single: bool
    aggregation_strategy: str = "simple"
    ignore_labels: tuple[str, ...] = ("O",)


def _kind(value: object) -> str:
    """The JSON name of a parsed value's type.

    >>> [_kind(v) for v in (None, True, 3, 2.5, "a", [], {})]
    ['null', 'boolean', 'number', 'number', 'string', 'array', 'object']
    """
    names = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string", list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def parse_body(raw: bytes) -> object:
    """The JSON value of a request body.

    Raises:
        ApiError: 400 when the body is not UTF-8 or not JSON.

    >>> parse_body('{"inputs": "في عمان"}'.encode())
    {'inputs': 'في عمان'}
    >>> parse_body(b'{"inputs": "\\xff"}')
    Traceback (most recent call last):
    kayan.serve.protocol.ApiError: body is not UTF-8 (invalid start byte at byte 12); send UTF-8 JSON
    """
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ApiError(400, f"body is not UTF-8 ({error.reason} at byte {error.start}); send UTF-8 JSON") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ApiError(400, f"body is not JSON ({error.msg} at line {error.lineno} column {error.colno}); "
                            'send {"inputs": "text"}') from None
    except RecursionError:
        raise ApiError(400, "body is not JSON this server reads (nested too deeply); send {\"inputs\": \"text\"}") from None


def _check_text(text: object, field: str, limits: Limits) -> str:
    """One input text: a string of valid Unicode within ``limits.max_chars``."""
    if not isinstance(text, str):
        raise ApiError(422, f"{field}: expected a string, got {_kind(text)}")
    if len(text) > limits.max_chars:
        raise ApiError(413, f"{field}: {len(text)} characters, more than the server's --max-chars {limits.max_chars}; "
                            "split the text into several requests")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ApiError(400, f"{field}: character {error.start} is a lone surrogate "
                            f"(\\u{ord(text[error.start]):04x}), not Unicode text; send valid UTF-8") from None
    return text


def _check_parameters(parameters: object) -> tuple[str, tuple[str, ...]]:
    """``aggregation_strategy`` and ``ignore_labels`` out of the ``parameters`` object."""
    if parameters is None:
        return "simple", ("O",)
    if not isinstance(parameters, dict):
        raise ApiError(422, f"parameters: expected an object, got {_kind(parameters)}")
    strategy = parameters.get("aggregation_strategy")
    strategy = "simple" if strategy is None else strategy
    if not isinstance(strategy, str) or strategy.lower() not in STRATEGIES:
        raise ApiError(422, f"parameters.aggregation_strategy: {json.dumps(strategy, ensure_ascii=False)} "
                            f"is not one of {', '.join(STRATEGIES)}")
    ignore = parameters.get("ignore_labels")
    ignore = ["O"] if ignore is None else ignore
    if not isinstance(ignore, list):
        raise ApiError(422, f"parameters.ignore_labels: expected an array of strings, got {_kind(ignore)}")
    for index, label in enumerate(ignore):
        if not isinstance(label, str):
            raise ApiError(422, f"parameters.ignore_labels[{index}]: expected a string, got {_kind(label)}")
    stride = parameters.get("stride")
    if stride is not None and (not isinstance(stride, int) or isinstance(stride, bool)):
        raise ApiError(422, f"parameters.stride: expected an integer, got {_kind(stride)}")
    return strategy.lower(), tuple(ignore)


def parse_request(payload: object, limits: Limits = Limits()) -> PredictRequest:
    """Validate a parsed body into a :class:`PredictRequest`.

    Raises:
        ApiError: 422 for a missing or mistyped field, 413 for too many or too long texts,
            400 for text that is not Unicode.

    >>> parse_request({"inputs": ["جاء زيد", "في عمان"], "parameters": {"aggregation_strategy": "first"}})
    PredictRequest(texts=('جاء زيد', 'في عمان'), single=False, aggregation_strategy='first', ignore_labels=('O',))
    >>> parse_request({"inputs": ["جاء", 7]})
    Traceback (most recent call last):
    kayan.serve.protocol.ApiError: inputs[1]: expected a string, got number
    """
    if not isinstance(payload, dict):
        raise ApiError(422, f'body: expected a JSON object such as {{"inputs": "text"}}, got {_kind(payload)}')
    if "inputs" not in payload:
        raise ApiError(422, 'inputs: missing; send {"inputs": "text"} or {"inputs": ["text", ...]}')
    inputs = payload["inputs"]
    strategy, ignore = _check_parameters(payload.get("parameters"))
    if isinstance(inputs, str):
        return PredictRequest((_check_text(inputs, "inputs", limits),), True, strategy, ignore)
    if not isinstance(inputs, list):
        raise ApiError(422, f"inputs: expected a string or an array of strings, got {_kind(inputs)}")
    if len(inputs) > limits.max_inputs:
        raise ApiError(413, f"inputs: {len(inputs)} texts, more than the server's --max-inputs {limits.max_inputs}; "
                            "send fewer texts per request")
    texts = tuple(_check_text(text, f"inputs[{i}]", limits) for i, text in enumerate(inputs))
    return PredictRequest(texts, False, strategy, ignore)


def _aggregated(document: Document, ignore: Sequence[str]) -> list[dict]:
    """The entities of a document as ``entity_group`` items, as ``Predictor.predict`` finds them."""
    return [
        {"entity_group": e.type, "score": e.score, "word": e.text, "start": e.start, "end": e.end}
        for e in document.entities if e.type not in ignore
    ]


def _words(document: Document, ignore: Sequence[str]) -> list[dict]:
    """One item per word (``aggregation_strategy: none``): its tag, confidence, index and offsets."""
    items, index = [], 0
    for sentence in document.sentences:
        for token, tag, score in zip(sentence.tokens, sentence.tags, sentence.confidences):
            if tag not in ignore:
                items.append({"entity": tag, "score": score, "index": index, "word": token.text,
                              "start": token.start, "end": token.end})
            index += 1
    return items


def answer(request: PredictRequest, documents: Iterable[Document]) -> list:
    """The response body: one list of items per text, or one list for a single-string request.

    >>> from kayan.data.arabic import Token
    >>> from kayan.inference.predict import TaggedSentence
    >>> doc = Document("في عمان", (TaggedSentence((Token("في", 0, 2), Token("عمان", 3, 7)), ("O", "B-LOC"), (1.0, 0.75)),))
    >>> answer(PredictRequest(("في عمان",), True), [doc])
    [{'entity_group': 'LOC', 'score': 0.75, 'word': 'عمان', 'start': 3, 'end': 7}]
    >>> answer(PredictRequest(("في عمان",), False, "none", ()), [doc])[0][0]
    {'entity': 'O', 'score': 1.0, 'index': 0, 'word': 'في', 'start': 0, 'end': 2}
    """
    shape = _words if request.aggregation_strategy == "none" else _aggregated
    results = [shape(document, request.ignore_labels) for document in documents]
    return results[0] if request.single else results


ENTITY_SCHEMA = {
    "type": "object",
    "properties": {
        "entity_group": {"type": "string", "description": "entity type, e.g. LOC (aggregated strategies)"},
        "entity": {"type": "string", "description": "the word's tag, e.g. B-LOC (aggregation_strategy none)"},
        "index": {"type": "integer", "description": "the word's index in the text (aggregation_strategy none)"},
        "score": {"type": "number", "description": "mean confidence of the entity's words, 0 to 1"},
        "word": {"type": "string", "description": "the entity as written: input[start:end]"},
        "start": {"type": "integer", "description": "character offset of its first character in the input"},
        "end": {"type": "integer", "description": "character offset just past its last character"},
    },
}
REQUEST_SCHEMA = {
    "type": "object",
    "required": ["inputs"],
    "properties": {
        "inputs": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                   "description": "one text, or a list of texts (answered with one list per text)"},
        "parameters": {
            "type": "object",
            "properties": {
                "aggregation_strategy": {"type": "string", "enum": list(STRATEGIES), "default": "simple"},
                "ignore_labels": {"type": "array", "items": {"type": "string"}, "default": ["O"]},
                "stride": {"type": "integer", "description": "accepted and ignored: the model's own windows are used"},
            },
        },
    },
    "example": {"inputs": "وفي بيروت، استقبل رئيس الحكومة وفدا من منظمة الصحة العالمية."},
}
RESPONSE_SCHEMA = {
    "oneOf": [{"type": "array", "items": ENTITY_SCHEMA},
              {"type": "array", "items": {"type": "array", "items": ENTITY_SCHEMA}}],
}
ERROR_SCHEMA = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
