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

The bodies are pydantic models (:class:`PredictBody` in; :class:`EntityGroup`, :class:`WordTag`
and :class:`ErrorBody` out): the one declaration that validates a request, shapes an answer and
documents both at ``/docs``. :func:`parse_request` turns pydantic's first validation error into the
one-line :class:`ApiError` above; the server's limits come in through the validation context.
Everything here is pure: no HTTP framework, no model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal, Union

from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, StrictInt, StrictStr, Tag,
                      ValidationError, ValidationInfo)
from pydantic_core import PydanticCustomError

from kayan.inference.predict import Document

STRATEGIES = ("none", "simple", "first", "average", "max")
EXAMPLE = "وفي بيروت، استقبل رئيس الحكومة وفدا من منظمة الصحة العالمية."


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


def _limits(info: ValidationInfo) -> Limits:
    """The server's limits, as :func:`parse_request` passes them in the validation context."""
    return (info.context or {}).get("limits", Limits())


def _text(text: str, info: ValidationInfo) -> str:
    """One input text: within the server's ``--max-chars`` (else 413), and Unicode (a lone surrogate: 400)."""
    limit = _limits(info).max_chars
    if len(text) > limit:
        raise PydanticCustomError("too_long", "{chars} characters, more than the server's --max-chars {limit}; "
                                  "split the text into several requests", {"chars": len(text), "limit": limit})
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise PydanticCustomError("not_unicode", "character {at} is a lone surrogate ({code}), not Unicode text; send valid UTF-8",
                                  {"at": error.start, "code": f"\\u{ord(text[error.start]):04x}"}) from None
    return text


def _few_enough(texts: object, info: ValidationInfo) -> object:
    """A list of texts no longer than the server's ``--max-inputs`` (else 413), checked before its items."""
    limit = _limits(info).max_inputs
    if isinstance(texts, list) and len(texts) > limit:
        raise PydanticCustomError("too_many", "{count} texts, more than the server's --max-inputs {limit}; send fewer texts per request",
                                  {"count": len(texts), "limit": limit})
    return texts


def _one_or_many(inputs: object) -> str | None:
    """Which form ``inputs`` takes: one text or a list of texts (None: neither)."""
    return "one" if isinstance(inputs, str) else "many" if isinstance(inputs, list) else None


def _strategy(value: object) -> object:
    """``null`` as the default strategy, and any case of a known one (``SIMPLE``) as written in :data:`STRATEGIES`."""
    if value is None:
        return "simple"
    return value.lower() if isinstance(value, str) and value.lower() in STRATEGIES else value


Text = Annotated[StrictStr, AfterValidator(_text)]
Inputs = Annotated[
    Union[Annotated[Text, Tag("one")], Annotated[list[Text], BeforeValidator(_few_enough), Tag("many")]],
    Discriminator(_one_or_many, custom_error_type="inputs_type", custom_error_message="expected a string or an array of strings"),
    Field(description="one text, or a list of texts (answered with one list per text)"),
]
_UNION_TAGS = ("one", "many")  # pydantic names the chosen form in an error's location: not a field


class Parameters(BaseModel):
    """The ``parameters`` of a request; ``null`` for any of them means its default, and other keys are ignored."""

    aggregation_strategy: Annotated[Literal[STRATEGIES], BeforeValidator(_strategy)] = Field(
        "simple", description="none: one item per word; the others: the Predictor's entities (Kayan tags whole words)")
    ignore_labels: Annotated[list[StrictStr], BeforeValidator(lambda labels: ["O"] if labels is None else labels)] = Field(
        ["O"], description="tags (none) or entity types (the others) left out of the answer")
    stride: StrictInt | None = Field(None, description="accepted and ignored: the model's own windows are used")


class PredictBody(BaseModel):
    """A request: ``{"inputs": "text" | ["text", ...], "parameters": {...}}``; other keys are ignored."""

    model_config = ConfigDict(json_schema_extra={"example": {"inputs": EXAMPLE}})

    inputs: Inputs
    parameters: Annotated[Parameters, BeforeValidator(lambda given: {} if given is None else given)] = Field(default_factory=Parameters)

    @property
    def single(self) -> bool:
        """Whether ``inputs`` is one string (answered with one list, not a list of lists)."""
        return isinstance(self.inputs, str)

    @property
    def texts(self) -> tuple[str, ...]:
        """The texts to tag, in order."""
        return (self.inputs,) if self.single else tuple(self.inputs)


class EntityGroup(BaseModel):
    """One entity of a text (the aggregated strategies)."""

    entity_group: str = Field(description="entity type, e.g. LOC")
    score: float = Field(description="mean confidence of the entity's words, 0 to 1")
    word: str = Field(description="the entity as written: input[start:end]")
    start: int = Field(description="character offset of its first character in the input")
    end: int = Field(description="character offset just past its last character")


class WordTag(BaseModel):
    """One word of a text and its tag (``aggregation_strategy: none``)."""

    entity: str = Field(description="the word's tag, e.g. B-LOC")
    score: float = Field(description="the tag's confidence, 0 to 1")
    index: int = Field(description="the word's index in the text")
    word: str = Field(description="the word as written: input[start:end]")
    start: int = Field(description="character offset of its first character in the input")
    end: int = Field(description="character offset just past its last character")


Answer = Union[list[EntityGroup], list[WordTag], list[list[EntityGroup]], list[list[WordTag]]]
"""The response body: one list of items for a single-string request, else one list per text."""


class ErrorBody(BaseModel):
    """Every error's body."""

    error: str = Field(description="what is wrong, naming the field, and what to send instead")


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


_STATUS = {"too_long": 413, "too_many": 413, "not_unicode": 400}  # any other validation error: 422
_EXPECTED = {"string_type": "a string", "list_type": "an array of strings", "int_type": "an integer", "model_type": "an object",
             "inputs_type": "a string or an array of strings"}


def _field(location: Sequence[str | int]) -> str:
    """A pydantic error location as the request names it.

    >>> _field(("inputs", "many", 1)), _field(("parameters", "ignore_labels", 0)), _field(())
    ('inputs[1]', 'parameters.ignore_labels[0]', 'body')
    """
    name = ""
    for part in location:
        if isinstance(part, int):
            name += f"[{part}]"
        elif part not in _UNION_TAGS:
            name += f".{part}" if name else part
    return name or "body"


def _api_error(error: dict) -> ApiError:
    """The one-line :class:`ApiError` of one pydantic validation error, as the module docstring lists them."""
    field, kind, given = _field(error["loc"]), error["type"], error.get("input")
    if field == "body" and kind == "model_type":
        return ApiError(422, f'body: expected a JSON object such as {{"inputs": "text"}}, got {_kind(given)}')
    if kind == "missing":
        return ApiError(422, f'{field}: missing; send {{"inputs": "text"}} or {{"inputs": ["text", ...]}}')
    if kind == "literal_error":
        return ApiError(422, f"{field}: {json.dumps(given, ensure_ascii=False)} is not one of {', '.join(STRATEGIES)}")
    if kind in _EXPECTED:
        return ApiError(422, f"{field}: expected {_EXPECTED[kind]}, got {_kind(given)}")
    return ApiError(_STATUS.get(kind, 422), f"{field}: {error['msg']}")


def parse_request(payload: object, limits: Limits = Limits()) -> PredictBody:
    """Validate a parsed body into a :class:`PredictBody`.

    Raises:
        ApiError: 422 for a missing or mistyped field, 413 for too many or too long texts,
            400 for text that is not Unicode (the first such error pydantic finds).

    >>> request = parse_request({"inputs": ["جاء زيد", "في عمان"], "parameters": {"aggregation_strategy": "First"}})
    >>> request.texts, request.single, request.parameters.aggregation_strategy, request.parameters.ignore_labels
    (('جاء زيد', 'في عمان'), False, 'first', ['O'])
    >>> parse_request({"inputs": ["جاء", 7]})
    Traceback (most recent call last):
    kayan.serve.protocol.ApiError: inputs[1]: expected a string, got number
    """
    try:
        return PredictBody.model_validate(payload, context={"limits": limits})
    except ValidationError as invalid:
        raise _api_error(invalid.errors()[0]) from None


def _aggregated(document: Document, ignore: Sequence[str]) -> list[EntityGroup]:
    """The entities of a document as ``entity_group`` items, as ``Predictor.predict`` finds them."""
    return [EntityGroup(entity_group=e.type, score=e.score, word=e.text, start=e.start, end=e.end)
            for e in document.entities if e.type not in ignore]


def _words(document: Document, ignore: Sequence[str]) -> list[WordTag]:
    """One item per word (``aggregation_strategy: none``): its tag, confidence, index and offsets."""
    items, index = [], 0
    for sentence in document.sentences:
        for token, tag, score in zip(sentence.tokens, sentence.tags, sentence.confidences):
            if tag not in ignore:
                items.append(WordTag(entity=tag, score=score, index=index, word=token.text, start=token.start, end=token.end))
            index += 1
    return items


def answer(request: PredictBody, documents: Iterable[Document]) -> list:
    """The response body (:data:`Answer`): one list of items per text, or one list for a single-string request.

    >>> from kayan.data.arabic import Token
    >>> from kayan.inference.predict import TaggedSentence
    >>> doc = Document("في عمان", (TaggedSentence((Token("في", 0, 2), Token("عمان", 3, 7)), ("O", "B-LOC"), (1.0, 0.75)),))
    >>> answer(PredictBody(inputs="في عمان"), [doc])
    [EntityGroup(entity_group='LOC', score=0.75, word='عمان', start=3, end=7)]
    >>> answer(PredictBody(inputs=["في عمان"], parameters={"aggregation_strategy": "none", "ignore_labels": []}), [doc])[0][0]
    WordTag(entity='O', score=1.0, index=0, word='في', start=0, end=2)
    """
    shape = _words if request.parameters.aggregation_strategy == "none" else _aggregated
    results = [shape(document, request.parameters.ignore_labels) for document in documents]
    return results[0] if request.single else results


def request_schema() -> dict:
    """:class:`PredictBody`'s JSON schema with its parts written in place: an OpenAPI operation holds no ``$defs``.

    >>> request_schema()["required"], sorted(request_schema()["properties"]["parameters"]["properties"])
    (['inputs'], ['aggregation_strategy', 'ignore_labels', 'stride'])
    """
    schema = PredictBody.model_json_schema()
    parts = schema.pop("$defs", {})

    def inline(node):
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(parts[node["$ref"].rsplit("/", 1)[1]])
            return {key: inline(value) for key, value in node.items()}
        return [inline(value) for value in node] if isinstance(node, list) else node

    return inline(schema)
