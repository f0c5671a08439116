"""Reading a config's YAML safely: duplicate keys refused, size, alias count and alias expansion
bounded (a "billion laughs" document), nesting bounded; every problem one ConfigError line."""

from __future__ import annotations

import re
from typing import Any

import yaml

from tiercli.errors import ConfigError


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r}", key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)

MAX_CONFIG_BYTES = 1_000_000
MAX_ALIASES = 100
MAX_CONFIG_NODES = 1_000_000  # values after expanding aliases: 72 nested aliases can make 387 million


def _check_expanded_size(data: Any, source: str) -> None:
    """Refuse a document whose aliases expand past MAX_CONFIG_NODES values (a "billion laughs"):
    PyYAML shares aliased objects, but validating and hashing the config would expand them."""
    budget, stack = MAX_CONFIG_NODES, [data]
    while stack:
        node = stack.pop()
        budget -= 1
        if budget < 0:
            raise ConfigError(f"{source}: the YAML expands to more than {MAX_CONFIG_NODES:,} values (nested aliases?)",
                              "expand the aliases by hand")
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def parse_yaml(text: str, source: str) -> Any:
    if len(text) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{source}: config is larger than 1 MB", "is this the right file?")
    if text.count("*") and len(re.findall(r"(?<![\w*])\*[A-Za-z0-9_-]+", text)) > MAX_ALIASES:
        raise ConfigError(f"{source}: more than {MAX_ALIASES} YAML aliases", "expand them by hand")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - SafeLoader subclass
    except RecursionError:
        raise ConfigError(f"{source}: the YAML is nested too deeply", "is this the right file?") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        what = exc.problem or exc.context or "syntax error"
        raise ConfigError(f"{source}:{where}: YAML error: {what}", "fix the YAML and try again") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: YAML error: {exc}", "fix the YAML and try again") from None
    _check_expanded_size(data, source)
    return data
