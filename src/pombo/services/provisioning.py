"""Provisioning files (SPEC §9): one YAML/JSON schema, validated whole into frozen specs.

Nothing here touches the database. Ids and names that the file uses but does not define
(a parent, a tariff's customer, a cost's connection) may already be stored, so they are
handed to the caller as `Provisioning.references()` to check and to report by entry.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import (
    BaseModel,
    TypeAdapter,
    ValidationError,
)

from pombo.domain.provisioning import (  # noqa: F401 - re-exported
    _KIND_OF,
    CONNECTION_KINDS,
    KINDS,
    PLACEHOLDERS,
    SECTIONS,
    CallbackSpec,
    ConnectionSpec,
    CostSpec,
    CustomerSpec,
    DlrMapping,
    HttpSpec,
    KannelSpec,
    NonBlank,
    Provisioning,
    ProvisioningError,
    Reference,
    SimulatorSpec,
    TariffSpec,
    TwwSpec,
    UserSpec,
    WavySpec,
    _fields,
    entry_label,
)

# --- reading ------------------------------------------------------------------------------


def parse_file(path: str | Path) -> Provisioning:
    """Read and validate a provisioning file (.json as JSON, anything else as YAML)."""
    path = Path(path)
    source = str(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ProvisioningError(
            [f"cannot read the file: {exc.strerror or exc}"], source=source
        ) from None
    except UnicodeDecodeError as exc:
        raise ProvisioningError([f"not UTF-8 text (byte {exc.start})"], source=source) from None
    # YAML also reads JSON, but JSON's own parser names JSON's errors
    data = _load_json(text, source) if path.suffix.lower() == ".json" else _load_yaml(text, source)
    return parse_document(data, source=source)


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, list | dict):
                continue  # unhashable: the base constructor reports it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while reading a mapping",
                    node.start_mark,
                    f"found the key {key!r} twice",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str, source: str) -> Any:
    try:
        return yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ProvisioningError(
            [f"{where}invalid YAML: {exc.problem or exc.context}"], source=source
        ) from None
    except yaml.YAMLError as exc:
        raise ProvisioningError([f"invalid YAML: {exc}"], source=source) from None


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise ValueError(f"found the key {key!r} twice")
        result[key] = value
    return result


def _load_json(text: str, source: str) -> Any:
    try:
        return json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ProvisioningError([f"{where}: invalid JSON: {exc.msg}"], source=source) from None
    except ValueError as exc:
        raise ProvisioningError([f"invalid JSON: {exc}"], source=source) from None


# --- validating ---------------------------------------------------------------------------


def parse_document(data: Any, *, source: str = "<document>") -> Provisioning:
    """Validate an already-parsed document; every problem of every entry is reported at once."""
    if not isinstance(data, Mapping):
        kind = "empty" if data is None else _a(data)
        raise ProvisioningError(
            [f"the document is {kind}; expected a mapping with keys {', '.join(SECTIONS)}"],
            source=source,
        )
    errors: list[str] = []
    for key in data:
        if key not in SECTIONS:
            errors.append(f"{key!r}: unknown top-level key{_did_you_mean(key, SECTIONS)}")
    connections = _entries(data, "connections", _validate_connection, errors)
    costs = _entries(data, "costs", _validator(CostSpec), errors)
    customers = _entries(data, "customers", _validator(CustomerSpec), errors)
    tariffs = _entries(data, "tariffs", _validator(TariffSpec), errors)
    text_filter = _text_filter(data.get("text_filter", None), "text_filter" in data, errors)
    errors += _cross_checks(connections, costs, customers, tariffs)
    if errors:
        raise ProvisioningError(errors, source=source)
    result = Provisioning(
        connections=tuple(spec for _, spec in connections),
        costs=tuple(spec for _, spec in costs),
        text_filter=text_filter,
        customers=tuple(spec for _, spec in customers),
        tariffs=tuple(spec for _, spec in tariffs),
    )
    return result.model_copy(update={"warnings": tuple(_warnings(result))})


Validate = Callable[[Mapping[Any, Any], str], tuple[BaseModel | None, list[str]]]


def _entries(
    data: Mapping[Any, Any], section: str, validate: Validate, errors: list[str]
) -> list[tuple[int, Any]]:
    raw = data.get(section)
    if raw is None:
        return []
    if not isinstance(raw, list):
        errors.append(f"{section}: expected a list of entries, not {_a(raw)}")
        return []
    good: list[tuple[int, Any]] = []
    for index, entry in enumerate(raw):
        if not isinstance(entry, Mapping):
            errors.append(f"{section}[{index}]: expected a mapping (key: value), not {_a(entry)}")
            continue
        label = entry_label(section, index, entry)
        spec, problems = validate(entry, label)
        errors += problems
        if spec is not None:
            good.append((index, spec))
    return good


def _validator(model: type[BaseModel]) -> Validate:
    def validate(entry: Mapping[Any, Any], label: str) -> tuple[BaseModel | None, list[str]]:
        try:
            return model.model_validate(entry), []
        except ValidationError as exc:
            return None, [f"{label}: {line}" for line in _describe(exc, model)]

    return validate


def _validate_connection(
    entry: Mapping[Any, Any], label: str
) -> tuple[BaseModel | None, list[str]]:
    kind = entry.get("kind")
    model = CONNECTION_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        problem = "required" if kind is None else f"{kind!r} is not one of {', '.join(KINDS)}"
        return None, [f"{label}: kind: {problem}"]
    return _validator(model)(entry, label)


def _describe(exc: ValidationError, model: type[BaseModel]) -> Iterator[str]:
    """pydantic's errors as 'field.path: problem', in words an operator reads."""
    for err in exc.errors(include_url=False):
        loc = err["loc"]
        path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
        kind = err["type"]
        if kind in ("value_error", "assertion_error"):
            msg = str(err.get("ctx", {}).get("error", err["msg"]))
        elif kind == "missing":
            msg = "required"
        elif kind == "extra_forbidden":
            owner = UserSpec if len(loc) == 3 and loc[0] == "users" else model
            allowed = [f.alias or name for name, f in owner.model_fields.items()]
            kind_of = _KIND_OF.get(owner)  # type: ignore[arg-type]
            msg = "unknown key" + (f" for kind {kind_of!r}" if kind_of else "")
            msg += _did_you_mean(str(loc[-1]), allowed)
        elif kind == "string_too_short" and err.get("ctx", {}).get("min_length") == 1:
            msg = "must not be empty"
        elif kind == "string_type":
            msg = "expected a string (put the value in quotes)"
        elif kind in ("bool_type", "bool_parsing"):
            msg = "expected true or false"
        elif kind in ("int_type", "int_parsing", "int_from_float"):
            msg = "expected a whole number"
        elif kind in ("tuple_type", "list_type"):
            msg = "expected a list"
        elif kind in ("dict_type", "model_type", "model_attributes_type"):
            msg = "expected a mapping (key: value)"
        else:
            msg = err["msg"]
        yield f"{path}: {msg}" if path else msg


def _a(value: object) -> str:
    if isinstance(value, bool):
        return "true/false"
    names = {int: "a number", float: "a number", str: "a string", list: "a list", dict: "a mapping"}
    return names.get(type(value), f"a {type(value).__name__}")


def _did_you_mean(key: object, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(key), list(candidates), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


_FILTER = TypeAdapter(tuple[NonBlank, ...])


def _text_filter(raw: Any, present: bool, errors: list[str]) -> tuple[str, ...] | None:
    if not present or raw is None:
        return None
    if not isinstance(raw, list):
        errors.append(f"text_filter: expected a list of patterns, not {_a(raw)}")
        return None
    try:
        return _FILTER.validate_python(raw)
    except ValidationError as exc:
        errors += [f"text_filter{line}" for line in _describe(exc, CustomerSpec)]
        return None


def _cross_checks(
    connections: list[tuple[int, Any]],
    costs: list[tuple[int, Any]],
    customers: list[tuple[int, Any]],
    tariffs: list[tuple[int, Any]],
) -> list[str]:
    errors: list[str] = []
    errors += _duplicates("connections", connections, lambda s: s.name, "name")
    errors += _duplicates("customers", customers, lambda s: s.id, "id")
    errors += _duplicates(
        "costs", costs, lambda s: (s.connection, s.prefix), "same connection and prefix"
    )
    errors += _duplicates(
        "tariffs",
        tariffs,
        lambda s: (s.customer, s.prefix, s.connection),
        "same customer, prefix and connection",
    )
    errors += _shared_credentials(customers)
    errors += _cycles(customers)
    return errors


def _duplicates(
    section: str, entries: list[tuple[int, Any]], key: Callable[[Any], Any], what: str
) -> list[str]:
    first: dict[Any, int] = {}
    errors = []
    for index, spec in entries:
        value = key(spec)
        if value in first:
            label = entry_label(section, index, _fields(spec))
            if isinstance(value, tuple):
                errors.append(f"{label}: duplicate of {section}[{first[value]}] ({what})")
            else:
                errors.append(
                    f"{label}: {what}: {value!r} is already defined by {section}[{first[value]}]"
                )
        else:
            first[value] = index
    return errors


def _shared_credentials(customers: list[tuple[int, CustomerSpec]]) -> list[str]:
    """A token or a username identifies one account: it cannot appear twice in the file."""
    errors = []
    tokens: dict[str, str] = {}
    usernames: dict[str, str] = {}
    for index, spec in customers:
        label = entry_label("customers", index, _fields(spec))
        for i, token in enumerate(spec.tokens):
            where = f"{label} tokens[{i}]"
            if token in tokens:  # only the first 10 characters may be shown (SPEC §2)
                errors.append(
                    f"{label}: tokens[{i}]: token {token[:10]!r}... is already given to {tokens[token]}"
                )
            tokens.setdefault(token, where)
        for i, user in enumerate(spec.users):
            where = f"{label} users[{i}]"
            if user.username in usernames:
                errors.append(
                    f"{label}: users[{i}].username: {user.username!r} is already used by {usernames[user.username]}"
                )
            usernames.setdefault(user.username, where)
    return errors


def _cycles(customers: list[tuple[int, CustomerSpec]]) -> list[str]:
    parents: dict[int, int | None] = {}
    for _, spec in customers:
        parents.setdefault(spec.id, spec.parent)
    errors = []
    for index, spec in customers:
        chain = [spec.id]
        current = spec.parent
        while current is not None and current in parents and current not in chain:
            chain.append(current)
            current = parents[current]
        if current == spec.id:
            path = " -> ".join(str(c) for c in [*chain, spec.id])
            label = entry_label("customers", index, _fields(spec))
            errors.append(f"{label}: parent: customer {spec.id} is its own ancestor ({path})")
    return errors


def _warnings(result: Provisioning) -> Iterator[str]:
    enabled = {c.name: c.enabled for c in result.connections}
    for index, spec in enumerate(result.customers):
        label = entry_label("customers", index, _fields(spec))
        if spec.sms and spec.sms_provider not in enabled:
            yield f"{label}: routes to connection {spec.sms_provider!r}, which is not defined in this file"
        elif spec.sms and not enabled[spec.sms_provider]:
            yield f"{label}: routes to connection {spec.sms_provider!r}, which is disabled"
    if result.text_filter == ():
        yield "text_filter: the list is empty, so no text is blocked as bank impersonation"


# --- one entry, as the console edits it ---------------------------------------------------


def check_entry(section: str, entry: Mapping[str, Any]) -> Provisioning:
    """One entry of `section`, validated exactly as `pombo load` validates it in a file (the
    console's edits of tariffs, block lists and models: one set of rules). ProvisioningError
    carries its problems as `pombo load` reports them, without the entry's label."""
    try:
        return parse_document({section: [dict(entry)]}, source="console")
    except ProvisioningError as exc:
        label = entry_label(section, 0, entry) + ": "
        raise ProvisioningError([e.removeprefix(label) for e in exc.errors], source=exc.source) from None
