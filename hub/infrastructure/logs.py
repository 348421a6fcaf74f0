"""Structured logs: one JSON object per line, extra fields included, secrets never passed in.

Secrets are kept out of log calls at their source. What slips through anyway (a library that
logs a URL carrying an OAuth code, an exception quoting a marketplace's answer) is masked on
the way out: ``JsonFormatter`` redacts every text it writes, and ``configure_logging`` puts a
``RedactingFilter`` on every handler of the process, so handlers with other formatters
(uvicorn's own) write masked text too. Redaction knows two things:

- values: every credential the cipher encrypts or decrypts, the cipher's own keys, and whatever
  else is registered (``register_secret``; ``register_settings_secrets`` for the settings'
  ``SecretStr`` fields), masked wherever they appear;
- shapes: e-mail addresses (the local part); ``Bearer``/``Basic`` credentials; token prefixes
  (Shopify's ``shpat_``, WooCommerce's ``ck_``/``cs_``, our ``hub_`` API keys, Fernet tokens);
  the password in a URL; query parameters, form fields, JSON and ``repr`` fields and header
  tuples named like a secret, token, key, signature or verifier; OAuth ``code``/``state`` and
  other nonces (long values only: ``state=active`` stays); street, phone and e-mail fields.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

import orjson

from hub.infrastructure import log_context

STANDARD_ATTRIBUTES = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}

MASK = "***"
MIN_SECRET_CHARS = 8  # shorter registered values would mask ordinary words
MAX_KNOWN_SECRETS = 10_000  # the most recent are kept; the shapes still catch the rest
NONCE_MIN_CHARS = 16
MAX_QUOTED_CHARS = 8192

# Tokens are made of these (base64url, hex, Etsy's "<user id>.<token>", URL paths): a known
# secret is found as one maximal run of them, or as a dot/slash-separated part of one.
_RUN_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.~+/")
_RUN = re.compile(r"[A-Za-z0-9_\-.~+/]{" + str(MIN_SECRET_CHARS) + ",}")
_RUN_SEPARATORS = re.compile(r"[/+~]")

_SECRET_WORDS = re.compile(
    r"secret|token|passw(?:or)?d|pwd|signature|hmac|api[_-]?key|apikey|access[_-]?key"
    r"|consumer[_-]?key|private[_-]?key|credential|authorization|cookie|verifier",
    re.IGNORECASE,
)
_NONCE_NAMES = frozenset({"code", "state", "key", "sig", "nonce", "user_id"})
_PERSONAL_NAMES = re.compile(
    r"e-?mail|[\w-]*_email|email_address|address_?[12]|address_line_?[12]|line_?[12]"
    r"|street[\w-]*|phone|first_name|last_name|buyer_name|customer_name",
    re.IGNORECASE,
)

# Every regex starts at a boundary it checks with a look-behind and takes its name with a
# possessive quantifier: no quadratic backtracking through a long run of word characters.
_QUOTED_FIELD = re.compile(
    r"(?<![\w.-])([\"']?)([\w.-]++)\1(\s*[:=]\s*b?)([\"'])"
    r"(.{0," + str(MAX_QUOTED_CHARS) + r"}?)(?<!\\)\4",
    re.DOTALL,
)
_BARE_FIELD = re.compile(r"(?<![\w.-])([\w.-]++)(=)([^&\s\"'#;,)}\]]+)")
_HEADER_TUPLE = re.compile(
    r"\(b?([\"'])([\w-]++)\1,\s*b?([\"'])(.{0," + str(MAX_QUOTED_CHARS) + r"}?)\3\)"
)
_URL_PASSWORD = re.compile(
    r"(?<![a-zA-Z0-9+.-])([a-zA-Z][a-zA-Z0-9+.-]*+://[^\s:/@?#]*:)([^\s@/?#]+)(@)"
)
_AUTH_SCHEME = re.compile(r"(?i)\b(Bearer|Basic|Token|Digest)(\s+)([A-Za-z0-9._~+/=-]{6,})")
_TOKEN_SHAPES = re.compile(
    r"\b(?:shp(?:at|ca|pa|ss|ua)_[A-Za-z0-9]{16,}"  # Shopify access tokens and secrets
    r"|c[ks]_[A-Za-z0-9]{20,}"  # WooCommerce consumer keys and secrets
    r"|hub_[A-Za-z0-9_-]{20,}"  # our API keys
    r"|gAAAAA[A-Za-z0-9_=-]{40,})"  # Fernet tokens (encrypted credentials)
)
_EMAIL = re.compile(r"(?i)(?<![a-z0-9._%+-])[a-z0-9._%+-]++@((?:[a-z0-9-]+\.)+[a-z]{2,})\b")


@lru_cache(maxsize=4096)
def name_kind(name: str) -> str | None:
    """``secret``, ``nonce`` (secret when long), ``personal``, or None for an ordinary name."""
    bare = name.strip("\"'").lower()
    if _SECRET_WORDS.search(bare):
        return "secret"
    if bare in _NONCE_NAMES:
        return "nonce"
    if _PERSONAL_NAMES.fullmatch(bare):
        return "personal"
    return None


def _hidden(name: str, value: str) -> bool:
    kind = name_kind(name)
    if kind == "nonce":
        return len(value) >= NONCE_MIN_CHARS
    return kind is not None and value != ""


class Redactor:
    """Masks known secret values and secret-shaped text. Thread-safe; values are learned while
    the process runs (the cipher registers each credential it handles)."""

    def __init__(self, max_values: int = MAX_KNOWN_SECRETS) -> None:
        self._lock = threading.Lock()
        self._max = max_values
        self._tokens: OrderedDict[str, None] = OrderedDict()  # looked up run by run
        self._odd: OrderedDict[str, None] = OrderedDict()  # other characters: substring search

    def __repr__(self) -> str:
        return f"Redactor(<{len(self._tokens) + len(self._odd)} values hidden>)"

    def register(self, value: str) -> None:
        value = value.strip().rstrip("=")  # base64 padding is never part of a run
        if len(value) < MIN_SECRET_CHARS:
            return
        target = self._tokens if set(value) <= _RUN_CHARS else self._odd
        with self._lock:
            target[value] = None
            target.move_to_end(value)
            while len(target) > self._max:
                target.popitem(last=False)

    def register_document(self, document: Mapping[str, Any]) -> None:
        """Every string of a credentials document whose name says it is a secret."""
        for name, value in document.items():
            if isinstance(value, Mapping):
                self.register_document(value)
            elif isinstance(value, str) and name_kind(str(name)) in ("secret", "nonce"):
                self.register(value)

    def redact(self, text: str) -> str:
        if not text:
            return text
        text = self._redact_known(text)
        text = _URL_PASSWORD.sub(r"\1" + MASK + r"\3", text)
        text = _HEADER_TUPLE.sub(_header_tuple, text)
        text = _QUOTED_FIELD.sub(self._quoted_field, text)
        text = _BARE_FIELD.sub(_bare_field, text)
        text = _AUTH_SCHEME.sub(r"\1\2" + MASK, text)
        text = _TOKEN_SHAPES.sub(MASK, text)
        return _EMAIL.sub(MASK + r"@\1", text)

    def _quoted_field(self, match: re.Match[str]) -> str:
        quote, name, between, value_quote, value = match.group(1, 2, 3, 4, 5)
        if _hidden(name, value):
            value = MASK
        elif len(value) > 2 * MIN_SECRET_CHARS:
            value = _BARE_FIELD.sub(_bare_field, _QUOTED_FIELD.sub(self._quoted_field, value))
        return f"{quote}{name}{quote}{between}{value_quote}{value}{value_quote}"

    def _redact_known(self, text: str) -> str:
        tokens, odd = self._tokens, self._odd
        if tokens:

            def replace(match: re.Match[str]) -> str:
                run = match.group(0)
                if run in tokens:
                    return MASK
                stripped = run.rstrip(".")  # a token at the end of a sentence
                if stripped in tokens:
                    return MASK + run[len(stripped) :]
                if "." not in run and _RUN_SEPARATORS.search(run) is None:
                    return run
                for known in _known_parts(run, tokens):
                    run = run.replace(known, MASK)
                return run

            text = _RUN.sub(replace, text)
        if odd:
            with self._lock:
                values = list(odd)
            for value in values:
                if value in text:
                    text = text.replace(value, MASK)
        return text


def _known_parts(run: str, tokens: Mapping[str, None]) -> list[str]:
    """Known secrets that are a part of a longer run: a path segment, or a dotted span of one
    (Etsy's tokens are "<user id>.<token>")."""
    found: set[str] = set()
    for segment in _RUN_SEPARATORS.split(run):
        if segment in tokens:
            found.add(segment)
            continue
        pieces = segment.split(".")
        if 1 < len(pieces) <= 16:
            for start in range(len(pieces)):
                for end in range(start + 1, len(pieces) + 1):
                    span = ".".join(pieces[start:end])
                    if span in tokens:
                        found.add(span)
    return sorted(found, key=len, reverse=True)


def _bare_field(match: re.Match[str]) -> str:
    name, equals, value = match.group(1, 2, 3)
    return f"{name}{equals}{MASK}" if _hidden(name, value) else match.group(0)


def _header_tuple(match: re.Match[str]) -> str:
    name, value_quote = match.group(2, 3)
    if name_kind(name) != "secret":
        return match.group(0)
    head = match.group(0)[: match.start(4) - match.start(0)]
    return f"{head}{MASK}{value_quote})"


REDACTOR = Redactor()


def register_secret(value: str | None) -> None:
    """Mask ``value`` wherever it appears in a log line from now on."""
    if value:
        REDACTOR.register(value)


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        register_secret(value)


def register_credentials(document: Mapping[str, Any]) -> None:
    """The secret fields of a credentials document (tokens, keys, secrets, verifiers)."""
    REDACTOR.register_document(document)


def register_settings_secrets(settings: object) -> None:
    """Every ``SecretStr`` field of a settings object (the admin key, app secrets, keys)."""
    for name in getattr(type(settings), "model_fields", {}):
        reveal = getattr(getattr(settings, name, None), "get_secret_value", None)
        if callable(reveal):
            raw = reveal()
            if isinstance(raw, str):
                register_secrets(raw.split(",") if name == "secret_keys" else [raw])


def redact(text: str) -> str:
    return REDACTOR.redact(text)


def redact_field(name: str, value: Any) -> Any:
    """A structured field: masked whole when its name says secret, else its texts redacted."""
    if isinstance(value, str | bytes) and _hidden(name, str(value)):
        return MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, bytes):
        return redact(value.decode("utf-8", errors="replace"))
    if isinstance(value, Mapping):
        return {str(key): redact_field(str(key), item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact_field(name, item) for item in value]
    if isinstance(value, bool | int | float) or value is None:
        return value
    return redact(str(value))


class RedactingFilter(logging.Filter):
    """Masks a record's message, arguments, exception text and extra fields in place: on a
    handler, whatever formats the record afterwards sees masked text only."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: keep what there is, masked
            message = f"{record.msg} {record.args}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None  # formatted and masked once; never formatted raw again
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in STANDARD_ATTRIBUTES:
                setattr(record, key, redact_field(key, value))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line; every text in it redacted."""

    def format(self, record: logging.LogRecord) -> str:
        document: dict[str, Any] = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, value in vars(record).items():
            if key not in STANDARD_ATTRIBUTES:
                document[key] = redact_field(key, value)
        exception = self.formatException(record.exc_info) if record.exc_info else record.exc_text
        if exception:
            document["exception"] = redact(exception)
        if record.stack_info:
            document["stack"] = redact(record.stack_info)
        return orjson.dumps(document, default=str).decode()


# pika logs every failed connection attempt with a traceback at ERROR (the consumer's reconnects,
# each /readyz probe): during a RabbitMQ outage that is hundreds of lines a minute saying one
# thing, which Dramatiq's own "restarting consumer" warning and /readyz already say.
QUIET_LOGGERS = {"pika": logging.CRITICAL}


def quiet_noisy_loggers() -> None:
    for name, quiet_level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(quiet_level)


def install_redaction(handler: logging.Handler) -> None:
    if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
        handler.addFilter(RedactingFilter())


def _every_handler() -> list[logging.Handler]:
    handlers = list(logging.getLogger().handlers)
    for logger in list(logging.Logger.manager.loggerDict.values()):
        if isinstance(logger, logging.Logger):
            handlers.extend(logger.handlers)
    return handlers


def configure_logging(level: str) -> None:
    """JSON lines on stderr at ``level``; every handler of the process redacts (uvicorn's own
    included, when it configured them before)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    quiet_noisy_loggers()
    for existing in _every_handler():
        install_redaction(existing)
    log_context.install()  # the ids `log_context.bind` holds, on every line
