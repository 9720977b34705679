"""The published schemas: every profile, claims and waivers file the project ships, keeps or documents validates,
and each schema is one a user's editor can load, with words for every error it can give."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Iterator

import jsonschema
import pytest
import yaml

from pytest_k8ssec.profile import PSA_LEVELS, default_profile_path
from pytest_k8ssec.schema import load_yaml, schema, violation

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("claims", "profile", "waivers")
# the keywords a value can fail on its own: a node with one says in its title what it accepts
CONSTRAINTS = {"pattern", "format", "minLength", "maxLength", "minItems", "minProperties", "minimum", "maximum", "anyOf"}


def kind(data: Any) -> str | None:
    """The schema a YAML file is written for, by its top-level keys; None for other YAML (manifests, workflows)."""
    if not isinstance(data, dict):
        return None
    if "waivers" in data:
        return "waivers"
    if "claims" in data or "behaviours" in data:
        return "claims"
    return "profile" if "developer_role" in data else None


def files() -> Iterator[tuple[Path, str, Any]]:
    """The shipped profiles, and the examples' and tests' YAML files that are one of the three kinds."""
    for path in sorted({*default_profile_path().parent.glob("*.yaml"), *ROOT.glob("examples/**/*.y*ml"),
                        *ROOT.glob("tests/**/*.y*ml")}):
        documents = list(yaml.safe_load_all(path.read_text()))
        if len(documents) == 1 and kind(documents[0]):
            yield path, kind(documents[0]), load_yaml(path.read_text())


def readme_examples() -> Iterator[tuple[str, str, Any]]:
    """The README's indented YAML blocks that are a claims or waivers file."""
    lines = (ROOT / "README.md").read_text().splitlines()
    for number, line in enumerate(lines):
        if line in ("    claims:", "    waivers:"):
            block = itertools.takewhile(lambda text: text.startswith("    ") or not text, lines[number:])
            data = load_yaml("\n".join(text[4:] for text in block))
            yield f"README.md line {number + 1}", kind(data), data


def test_every_shipped_example_and_test_file_validates():
    found = [*files(), *readme_examples()]
    assert {name for _, name, _ in found} == set(NAMES), found
    for where, name, data in found:
        assert violation(name, data) is None, f"{where}: {violation(name, data).line()}"


def nodes(node: Any) -> Iterator[dict[str, Any]]:
    """Every schema node a reported error can be about (an anyOf's options are reported as the anyOf)."""
    if isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key not in ("anyOf", "enum", "const", "default"):
                yield from nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from nodes(value)


@pytest.mark.parametrize("name", NAMES)
def test_each_schema_is_draft_2020_12_and_says_what_each_constraint_accepts(name):
    published = schema(name)
    jsonschema.Draft202012Validator.check_schema(published)
    assert published["$id"].endswith(f"/{name}.schema.json")
    assert [n for n in nodes(published) if CONSTRAINTS & set(n) and "title" not in n] == []


def test_the_profile_schema_knows_the_levels_the_code_orders():
    assert tuple(schema("profile")["$defs"]["level"]["enum"]) == PSA_LEVELS
