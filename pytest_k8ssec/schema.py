"""The published JSON Schemas of the user's files (claims, profile, waivers) and the one line an invalid file gets.

Each file is read as JSON sees YAML and validated against its schema (Draft 2020-12, shipped in
`schemas/`). Of all errors, the first entry's at its deepest key becomes what the user must fix:
the key, what the schema expects there (the node's `title`, else its enum, const or type) and
what was found. Only what a schema cannot say (an ID in the run's catalogue, one key against
another) is checked in code.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml

from .errors import must

TYPES = {"object": "a mapping", "array": "a list", "string": "a string", "boolean": "true or false",
         "integer": "an integer", "number": "a number"}


class _Loader(yaml.SafeLoader):
    """YAML as JSON sees it: a date stays the text it was written as (its schema checks the format)."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def load_yaml(text: str) -> Any:
    """A user's file as its schema sees it."""
    return yaml.load(text, Loader=_Loader)  # a SafeLoader


@cache
def schema(name: str) -> dict[str, Any]:
    """A published schema, shipped in the package: `claims`, `profile` or `waivers`."""
    return json.loads(resources.files("pytest_k8ssec").joinpath(f"schemas/{name}.schema.json").read_text())


@dataclass(frozen=True)
class Violation:
    """What the user must fix: where (keys and list indices from the top), what is expected there, what was found
    (None: nothing)."""

    path: tuple[Any, ...]
    expected: str
    got: Any = None

    def key(self, start: int = 0) -> str:
        """The dotted key from `path[start]` on, list indices in brackets: `developer_role.rules[0].verbs`."""
        text = ""
        for part in self.path[start:]:
            text += f"[{part}]" if isinstance(part, int) else f".{part}" if text else str(part)
        return text

    def line(self, start: int = 0) -> str:
        return must(self.key(start), self.expected, self.got)

    def entry(self, data: dict[str, Any], collection: str) -> tuple[int, Any] | None:
        """The item of the top-level list `collection` the error is in: its number from 1 and its `id`, or None."""
        if len(self.path) < 2 or self.path[0] != collection or not isinstance(self.path[1], int):
            return None
        item = data[collection][self.path[1]]
        return self.path[1] + 1, item.get("id") if isinstance(item, dict) else None


def violation(name: str, data: Any) -> Violation | None:
    """The error of `data` against schema `name` to fix first, or None when it is valid."""
    root = schema(name)
    validator = jsonschema.Draft202012Validator(root, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    found = [_explain(root, jsonschema.exceptions.best_match([error])) for error in validator.iter_errors(data)]
    # the first entry's error at its deepest key: an ID's pattern before its entry's shape
    return min(found, key=lambda v: (_order(v.path[:2]), -len(v.path), v.expected), default=None)


def _order(path: tuple[Any, ...]) -> tuple[tuple[bool, Any], ...]:
    """Comparable paths: list indices with indices, keys with keys."""
    return tuple((isinstance(part, str), part if isinstance(part, int) else str(part)) for part in path)


def _explain(root: dict[str, Any], error: jsonschema.ValidationError) -> Violation:
    path = tuple(error.absolute_path)
    if error.validator == "required":  # each missing key is an error: all name the first, in the schema's order
        missing = next(p for p in error.validator_value if p not in error.instance)
        node = error.schema.get("properties", {}).get(missing)
        return Violation(path + (missing,), _describe(root, node) if node else "given")
    if error.validator == "additionalProperties":
        known = error.schema.get("properties", {})
        extra = next(k for k in error.instance if k not in known)
        return Violation(path + (str(extra),), f"one of the known keys ({', '.join(sorted(known))})", extra)
    if "propertyNames" in error.absolute_schema_path:  # the key itself is wrong
        return Violation(path + (str(error.instance),), _describe(root, error.schema), error.instance)
    return Violation(path, _describe(root, error.schema), error.instance)


def _describe(root: dict[str, Any], node: dict[str, Any]) -> str:
    """What a schema node accepts, in words: its title (every node with a pattern, a format or a bound has one),
    else its enum, const or type."""
    if "title" in node:
        return node["title"]
    if "$ref" in node:
        target = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return _describe(root, target)
    if "enum" in node:
        return "one of " + ", ".join(v if isinstance(v, str) else json.dumps(v) for v in node["enum"] if v is not None)
    if "const" in node:
        return repr(node["const"])
    types = [node["type"]] if isinstance(node.get("type"), str) else node.get("type", [])
    words = " or ".join(TYPES[t] for t in types if t != "null")
    if "oneOf" in node:
        words += " with exactly one of " + ", ".join(" + ".join(option["required"]) for option in node["oneOf"])
    return words
