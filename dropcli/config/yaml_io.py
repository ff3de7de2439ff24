"""Config YAML: text to data and node tree (safe, size-checked, no duplicate keys), and back.

``parse_yaml`` reads one document with the safe loader (no Python objects; ``1e-3`` is a
float) and keeps its node tree, so ``line_at`` can give the line of any key or list item.
What YAML 1.1 reads differently from what people mean is refused with its line: keys that
are not strings (``yes:``, ``null:``, ``[1, 2]:``), octal ``010`` (8) and base-60 ``1:30`` (90).
``key_line`` finds the line a dotted setting was written on in a config file (for errors
raised once the config is read). ``yaml_line`` writes one ``key: value  # comment`` line,
lists in flow style: ``[256, 256]``.
"""

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from dropcli.config.messages import QUOTE_IT, cut, dotted, path_text, show
from dropcli.errors import ConfigError


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
        raise ConfigError(f"{name}: invalid YAML: {_one_line(getattr(error, 'reason', None) or error)}") from None
    try:
        root = loader.get_single_node()
        if root is None:
            return None, None
        _check_size(root, name)
        _check_nodes(root, name, lines, loader.construct_object)
        return loader.construct_document(root), root
    except RecursionError:
        raise ConfigError(f"{name}: invalid YAML: nested too deeply") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f"{name}:{mark.line + 1}" if mark and lines else name
        problem = str(error.problem or error)
        if "could not determine a constructor" in problem:
            tag = problem.rsplit(" ", 1)[-1].strip("'").replace("tag:yaml.org,2002:", "!!")
            raise ConfigError(f"{where}: the tag {show(tag)} is not allowed; dropcli reads plain YAML "
                              "only (safe loading: no Python objects)") from None
        raise ConfigError(f"{where}: invalid YAML: {_one_line(problem)}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{name}: invalid YAML: {_one_line(error)}") from None
    finally:
        loader.dispose()


def _one_line(problem: Any) -> str:
    """PyYAML's problem on one line, what it quotes (an alias, a tag) cut like a value."""
    return re.sub(r"'[^']*'|\"[^\"]*\"", lambda m: cut(m[0]), " ".join(str(problem).split()))


MAX_NODES, MAX_DEPTH = 10_000, 50  # a config is a few dozen values; aliases must not multiply them


def _check_size(root: yaml.Node, name: str) -> None:
    """Refuse a document of more than MAX_NODES values, written out or made so by aliases
    ("billion laughs"), that nests deeper than MAX_DEPTH, or that contains itself:
    validating it would not end."""
    sizes: dict[int, int] = {}

    def size(node: yaml.Node, depth: int, path: set[int]) -> int:
        if id(node) in sizes:
            return sizes[id(node)]
        if depth > MAX_DEPTH:
            raise ConfigError(f"{name}:{node.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
        if id(node) in path:
            raise ConfigError(f"{name}:{node.start_mark.line + 1}: a YAML alias refers to a value that contains it")
        path.add(id(node))
        total = 1 + sum(size(child, depth + 1, path) for child in _children(node))
        path.discard(id(node))
        if total > MAX_NODES:
            where = f"{name}:{node.start_mark.line + 1}"
            if _written_values(node) > MAX_NODES:  # no aliases needed: the text itself is too large
                what = "this document holds" if node is root else "this value holds"
                raise ConfigError(f"{where}: {what} more than {MAX_NODES} values (keys and list items); dropcli "
                                  f"reads configs of at most {MAX_NODES} (a config has a few dozen)")
            raise ConfigError(f"{where}: YAML aliases expand this document past {MAX_NODES} values; "
                              "write the values out instead")
        sizes[id(node)] = total
        return total

    size(root, 0, set())


def _children(node: yaml.Node) -> list[yaml.Node]:
    """A mapping's keys and values, a list's items; a scalar has none."""
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return node.value if isinstance(node, yaml.SequenceNode) else []


def _written_values(node: yaml.Node) -> int:
    """The values written under ``node`` (each aliased one once), counted up to MAX_NODES + 1."""
    seen, todo = set(), [node]
    while todo and len(seen) <= MAX_NODES:
        if id(n := todo.pop()) not in seen:
            seen.add(id(n))
            todo += _children(n)
    return len(seen)


_TAG = "tag:yaml.org,2002:"
_KEY_TAGS = {f"{_TAG}str", f"{_TAG}merge", f"{_TAG}value"}  # `<<: *base` merges a mapping in
_NUMBER_TAGS = {f"{_TAG}int", f"{_TAG}float"}
_OCTAL = re.compile(r"[-+]?0[0-7_]+")  # YAML 1.1: 010 is 8 (YAML 1.2 and people: 10)


def _check_nodes(root: yaml.Node, name: str, lines: bool, construct: Callable[[yaml.Node], Any]) -> None:
    """Refuse duplicate keys, keys that are not strings, and octal or base-60 numbers."""
    seen: set[int] = set()

    def where(node: yaml.Node, loc: tuple) -> str:  # `x.yaml:3: model.hidden_dims[1]`, `--set seed`
        if lines:
            return f"{name}:{node.start_mark.line + 1}: {dotted(loc)}"
        return name + path_text(loc)

    def value_of(node: yaml.ScalarNode, loc: tuple) -> Any:
        limit = sys.get_int_max_str_digits()  # CPython reads and writes no longer int (0: no limit)
        digits = node.value.replace("_", "").lstrip("+-")
        if limit and node.tag == f"{_TAG}int" and digits.isdigit() and len(digits) > limit:
            raise too_large(node, loc, limit)  # the constructor's own error would call it no !!int
        try:
            value = construct(node)
        except (ValueError, KeyError, AttributeError):  # `!!int abc`: the constructor's own error
            tag = node.tag.replace(_TAG, "!!")
            raise ConfigError(f"{where(node, loc)}: {show(node.value)} is not a valid {tag}") from None
        try:
            if isinstance(value, int):
                str(value)  # `0x` and 4000 digits reads, but no message, JSON file or hash could write it
        except ValueError:
            raise too_large(node, loc, limit) from None
        return value

    def too_large(node: yaml.ScalarNode, loc: tuple, limit: int) -> ConfigError:
        return ConfigError(f"{where(node, loc)}: {show(node.value)} is too large a number: Python reads "
                           f"and writes integers of at most {limit} digits")

    def key_found(key: yaml.Node, loc: tuple) -> str:  # `true; to mean the text, quote it: 'yes'`
        if not isinstance(key, yaml.ScalarNode):
            return "a list" if isinstance(key, yaml.SequenceNode) else "a mapping"
        return show(value_of(key, loc)) + (f"{QUOTE_IT}: {show(key.value)}" if key.style is None else "")

    def check(node: yaml.Node, loc: tuple) -> None:
        if id(node) in seen:  # a shared (aliased) node: checked already
            return
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key, value in node.value:
                if key.tag not in _KEY_TAGS:  # `yes:`, `null:`, `1:`, `? [1, 2]`
                    place = (*loc, _as_written(key))
                    raise ConfigError(f"{where(key, place)}: keys should be strings, "
                                      f"found {key_found(key, place)}")
                if key.value in first:
                    raise ConfigError(f"{where(key, (*loc, key.value))}: duplicate key "
                                      f"(first given on line {first[key.value]})")
                first[key.value] = key.start_mark.line + 1
                check(value, (*loc, key.value))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                check(item, (*loc, i))
        elif node.tag.startswith(_TAG):  # a scalar: `!!int abc` is refused here, with its line
            value = value_of(node, loc)
            if node.style is None and node.tag in _NUMBER_TAGS and (problem := _yaml11_number(node.value, value)):
                raise ConfigError(f"{where(node, loc)}: {problem}")

    check(root, ())


def _yaml11_number(text: str, value: int | float) -> str | None:
    """Why 010 (octal: 8) or 1:30 (base 60: 90) is refused; None for other numbers."""
    if ":" in text:
        problem = f"{cut(text)} is a base-60 number in YAML 1.1 (= {show(value)}); write {show(value)}"
    elif _OCTAL.fullmatch(text) and value != (meant := int(text.replace("_", ""))):
        problem = (f"{cut(text)} is an octal number in YAML 1.1 (= {show(value)}); write {show(meant)} "
                   f"(or {show(value)}) without the leading zero")
    else:
        return None
    return f"{problem}, or quote it for text: {show(text)}"


def _as_written(node: yaml.Node) -> str:
    """A node's text as it stands in the file, on one line: ``[1, 2]``."""
    mark, end = node.start_mark, node.end_mark
    text = mark.buffer[mark.pointer:end.pointer] if mark.buffer is not None else str(node.value)
    return " ".join(text.split())


def _walk(root: yaml.Node | None, loc: tuple) -> list[tuple[int, yaml.Node]]:
    """(line, node) of each part of ``loc`` found in the tree (a key's line and its value,
    or a list item), stopping at the first part not found."""
    found, node = [], root
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
            if match is None:
                break
            found.append((match[0].start_mark.line + 1, match[1]))
        elif isinstance(node, yaml.SequenceNode) and part in range(len(node.value)):
            found.append((node.value[part].start_mark.line + 1, node.value[part]))
        else:
            break
        node = found[-1][1]
    return found


def line_at(root: yaml.Node | None, loc: tuple) -> int | None:
    """The line of the key (or list item) at ``loc``, or of its deepest ancestor found."""
    found = _walk(root, loc)
    return found[-1][0] if found else None


def plain_text_at(root: yaml.Node | None, loc: tuple) -> str | None:
    """The unquoted scalar at ``loc`` as written (``no``, ``123``), or None."""
    found = _walk(root, loc)
    node = found[-1][1] if found and len(found) == len(loc) else None
    return node.value if isinstance(node, yaml.ScalarNode) and node.style is None else None


def key_line(path: str | os.PathLike, key: str) -> int | None:
    """The line of the setting ``key`` (``"data.num_train"``) in the config file at ``path``:
    as a sweep axis first, else as a setting; None if the file does not set it (a default)
    or cannot be read (it changed since it was loaded)."""
    try:
        data, root = parse_yaml(Path(path).read_text(encoding="utf-8"), str(path))
    except Exception:  # it was read a moment ago; if it changed since, name no line
        return None
    for loc in (("sweep", key), tuple(key.split("."))):
        node = data
        for part in loc:
            node = node.get(part) if isinstance(node, dict) else None
        if node is not None:
            return line_at(root, loc)
    return None


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
