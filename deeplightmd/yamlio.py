"""YAML reading that refuses duplicate mapping keys (a second ``ratio: 4`` is an error, not a
silent override); every YAML file the toolkit reads goes through :func:`safe_load`."""

from __future__ import annotations

from typing import Any

import yaml


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` whose mappings raise on a repeated key."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:  # unhashable key: the base class reports it
                continue
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} at line {key_node.start_mark.line + 1} "
                    f"(first given at line {first}); each key may appear once",
                    key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                UniqueKeyLoader.construct_mapping)


def safe_load(text: str) -> Any:
    """``yaml.safe_load`` that raises :class:`yaml.YAMLError` on duplicate keys."""
    return yaml.load(text, Loader=UniqueKeyLoader)


__all__ = ["UniqueKeyLoader", "safe_load"]
