"""Config YAML: text to data and node tree (safe, size-checked, no duplicate keys), and back.

``parse_yaml`` reads one document with the safe loader (no Python objects; ``1e-3`` is a
float) and keeps its node tree, so ``line_at`` can give the line of any key or list item.
``yaml_line`` writes one ``key: value  # comment`` line, lists in flow style: ``[256, 256]``.
"""

import re
from typing import Any

import yaml

from .config_errors import dotted
from .errors import ConfigError


class _Loader(yaml.SafeLoader):
    """Safe YAML (no Python objects), plus ``1e-3`` read as a float (YAML 1.1 wants ``1.0e-3``)."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def parse_yaml(text: str, name: str, *, lines: bool = True) -> tuple[Any, yaml.Node | None]:
    """Safe-load one YAML document; return the data and its node tree (for line numbers)."""
    try:
        loader = _Loader(text)
    except yaml.YAMLError as error:  # a control character: the reader refuses the text at once
        problem = " ".join(str(getattr(error, "reason", None) or error).split())
        raise ConfigError(f"{name}: invalid YAML: {problem}") from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_size(root, name)
        _check_duplicates(root, name, (), set())
        return loader.construct_document(root), root
    except RecursionError:
        raise ConfigError(f"{name}: invalid YAML: nested too deeply") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{name}:{mark.line + 1}" if mark and lines else name
        problem = " ".join(str(error.problem or error).split())
        if "could not determine a constructor" in problem:
            tag = problem.rsplit(" ", 1)[-1].strip("'").replace("tag:yaml.org,2002:", "!!")
            raise ConfigError(f"{where}: the tag {tag!r} is not allowed; dropcli reads plain YAML "
                              "only (safe loading: no Python objects)") from None
        raise ConfigError(f"{where}: invalid YAML: {problem}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{name}: invalid YAML: {' '.join(str(error).split())}") from None
    finally:
        loader.dispose()


MAX_NODES, MAX_DEPTH = 10_000, 50  # a config is a few dozen values; aliases must not multiply them


def _check_size(root: yaml.Node, name: str) -> None:
    """Refuse a document that aliases expand past MAX_NODES values ("billion laughs"),
    that nests deeper than MAX_DEPTH, or that contains itself: validating it would not end."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int, path: set[int]) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > MAX_DEPTH:
            raise ConfigError(f"{name}:{node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
        if id(node) in path:
            raise ConfigError(f"{name}:{node.start_mark.line + 1}: a YAML alias refers to a value that contains it")
        children = ([n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        path.add(id(node))
        total = 1 + sum(size(child, depth + 1, path) for child in children)
        path.discard(id(node))
        if total > MAX_NODES:
            raise ConfigError(f"{name}:{node.start_mark.line + 1}: YAML aliases expand this document past "
                              f"{MAX_NODES} values; write the values out instead")
        sizes[id(node)] = total
        return total

    size(root, 0, set())


def _check_duplicates(node: yaml.Node, name: str, loc: tuple, seen: set[int]) -> None:
    if id(node) in seen:  # a shared (aliased) node: checked already
        return
    seen.add(id(node))
    if isinstance(node, yaml.MappingNode):
        first: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in first:
                raise ConfigError(f"{name}:{line}: {dotted((*loc, key.value))}: duplicate key "
                                  f"(first given on line {first[key.value]})")
            first[key.value] = line
            _check_duplicates(value, name, (*loc, key.value), seen)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _check_duplicates(item, name, (*loc, i), seen)


def line_at(root: yaml.Node | None, loc: tuple) -> int | None:
    """The line of the key (or list item) at ``loc``, or of its deepest ancestor found."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and part in range(len(node.value)):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


class _Dumper(yaml.SafeDumper):
    """Lists in flow style ([256, 256]), mappings in block style."""


def _flow_list(dumper: yaml.SafeDumper, value: list | tuple) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", value, flow_style=True)


_Dumper.add_representer(list, _flow_list)
_Dumper.add_representer(tuple, _flow_list)


def yaml_line(key: str, value: Any, comment: str | None = None, indent: str = "") -> str:
    """``key: value`` as one YAML line, with the comment aligned after it."""
    text = indent + yaml.dump({key: value}, Dumper=_Dumper, width=10**6, sort_keys=False).strip()
    return f"{text:<34} # {comment}" if comment else text
