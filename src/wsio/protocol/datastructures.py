"""HTTP header containers: :class:`Headers`, a case-insensitive multimap that
keeps the order and case of what it was given.

They are the core's (the handshake's requests and responses carry them) and
are public as ``wsio.Headers`` and ``wsio.datastructures.Headers``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import TypeVar, Union, overload

__all__ = ["MultipleValuesError", "Headers", "HeadersLike"]

_T = TypeVar("_T")

# RFC 7230 3.2.6: token = 1*tchar.
_TOKEN_STR_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: RFC 7230 3.2: a field value may hold HTAB, SP, VCHAR and obs-text, never other
#: CTLs (NUL, CR and LF are what header injection and smuggling attacks use).
#: The start line of a request or response is checked against it too.
BAD_VALUE_STR_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class MultipleValuesError(KeyError):
    """``headers[name]`` was used for a header that has several values.

    Use :meth:`Headers.get_all` to read every value.
    """

    def __str__(self) -> str:
        # KeyError.__str__ adds quotes around the single argument; keep the text plain.
        if len(self.args) == 1:
            return str(self.args[0])
        return super().__str__()


class Headers(MutableMapping[str, str]):
    """HTTP headers: a case-insensitive multi-dict that keeps order and case.

    Reading ``headers[name]`` returns the single value of ``name``; it raises
    :class:`KeyError` if there is none and :class:`MultipleValuesError` if
    there are several.  **Writing ``headers[name] = value`` appends a value**;
    it never replaces (delete first to replace).  ``del headers[name]`` removes
    every value of ``name``.

    Iterating yields each distinct name once, lower-cased, in order of first
    appearance, and ``len()`` counts distinct names.  :meth:`items` and
    :meth:`raw_items` yield every ``(name, value)`` pair with the name as it was
    written, which is what serialization needs.  ``str(headers)`` is the header
    block as sent on the wire, ending with an empty line.

    Names must be tokens and values must not contain CR, LF, NUL or other
    control characters (except HTAB): this stops header injection through
    values that come from users.  Values must be encodable in ISO-8859-1, the
    charset of HTTP/1.1 header values.
    """

    # The headers are _list, names and values alternating ([name, value, name,
    # value...]: no tuple per header, 48 bytes each, when a server keeps every
    # request's headers); the case-insensitive index is derived from them on
    # the first lookup and can be dropped (forget_index) to save about 1 KiB
    # per idle connection.
    __slots__ = ("_list", "_index")

    def __init__(self, *args: HeadersLike, **kwargs: str) -> None:
        self._list: list[str] = []
        self._index: dict[str, list[str]] | None = None
        if args or kwargs:
            self.update(*args, **kwargs)

    @classmethod
    def _made(cls, items: list[str], index: dict[str, list[str]] | None = None) -> Headers:
        """Headers over ``items`` (names and values alternating, already checked) and their index, if known."""
        headers = cls.__new__(cls)
        headers._list = items
        headers._index = index
        return headers

    @property
    def _dict(self) -> dict[str, list[str]]:
        index = self._index
        if index is None:
            index = {}
            items = iter(self._list)
            for key, value in zip(items, items):
                index.setdefault(key.lower(), []).append(value)
            self._index = index
        return index

    def _pairs(self) -> list[tuple[str, str]]:
        items = iter(self._list)
        return list(zip(items, items))

    def forget_index(self) -> None:
        """Drop the lookup index; the next lookup rebuilds it."""
        self._index = None

    # -- Mapping -------------------------------------------------------------

    def __getitem__(self, key: str) -> str:
        values = self._dict[key.lower()]
        if len(values) == 1:
            return values[0]
        raise MultipleValuesError(f"{key} has {len(values)} values; use get_all()")

    def __setitem__(self, key: str, value: str) -> None:
        if not isinstance(key, str) or _TOKEN_STR_RE.fullmatch(key) is None:
            raise ValueError(f"invalid header name: {key!r}")
        if not isinstance(value, str):
            raise TypeError(f"header value must be str, got {type(value).__name__}")
        # The messages name the header and the position, never the value:
        # values are often credentials (Authorization, Cookie, API keys).
        bad = BAD_VALUE_STR_RE.search(value)
        if bad is not None:
            raise ValueError(
                f"invalid character in {key} header value: {bad.group()!r} at position "
                f"{bad.start()}; header values can't contain CR, LF, NUL or other control "
                f"characters (except tab)"
            )
        try:
            value.encode("iso-8859-1")
        except UnicodeEncodeError as exc:
            raise ValueError(
                f"{key} header value isn't encodable in ISO-8859-1: character at position "
                f"{exc.start}; percent-encode or base64-encode it"
            ) from None
        self._append(key, value)

    def _append(self, key: str, value: str) -> None:
        if self._index is not None:
            self._index.setdefault(key.lower(), []).append(value)
        items = self._list
        items.append(key)
        items.append(value)

    def __delitem__(self, key: str) -> None:
        lower = key.lower()
        del self._dict[lower]  # KeyError if absent, as MutableMapping expects
        self._list = [item for k, v in self._pairs() if k.lower() != lower for item in (k, v)]

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key.lower() in self._dict

    def __iter__(self) -> Iterator[str]:
        return iter(self._dict)

    def __len__(self) -> int:
        return len(self._dict)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return self._dict == other._dict

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({self._pairs()!r})"

    def __str__(self) -> str:
        # One join over the pieces: no tuple or formatted string per header (one response per connection).
        items = self._list
        pieces: list[str] = []
        append = pieces.append
        for index in range(0, len(items), 2):
            append(items[index])
            append(": ")
            append(items[index + 1])
            append("\r\n")
        append("\r\n")
        return "".join(pieces)

    # -- multi-dict API ------------------------------------------------------

    @overload
    def get(self, key: str) -> str | None: ...
    @overload
    def get(self, key: str, default: str) -> str: ...
    @overload
    def get(self, key: str, default: _T) -> str | _T: ...
    def get(self, key: str, default: object = None) -> object:
        """Return the single value of ``key``, or ``default`` if absent.

        Raises :class:`MultipleValuesError` if ``key`` has several values.
        """
        try:
            return self[key]
        except MultipleValuesError:
            raise
        except KeyError:
            return default

    def get_all(self, key: str) -> list[str]:
        """Return every value of ``key`` in order; ``[]`` if absent."""
        return list(self._dict.get(key.lower(), ()))

    def raw_items(self) -> Iterator[tuple[str, str]]:
        """Yield every ``(name, value)`` pair in order, names as written."""
        return iter(self._pairs())

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        """Return every ``(name, value)`` pair in order, like :meth:`raw_items`.

        Unlike a plain mapping, a name with several values appears several
        times, so that ``for name, value in headers.items()`` serializes all.
        """
        return self._pairs()

    def values(self) -> list[str]:  # type: ignore[override]
        """Return every value in order, one per header line."""
        return self._list[1::2]

    def setdefault(self, key: str, default: str = "") -> str:
        """Return the single value of ``key``; append ``default`` if absent."""
        # Overridden: the inherited version would treat MultipleValuesError
        # (a KeyError) as "absent" and append.
        if key in self:
            return self[key]
        self[key] = default
        return default

    _MISSING = object()

    @overload
    def pop(self, key: str) -> str: ...
    @overload
    def pop(self, key: str, default: str) -> str: ...
    @overload
    def pop(self, key: str, default: _T) -> str | _T: ...
    def pop(self, key: str, default: object = _MISSING) -> object:
        """Remove ``key`` and return its single value (``default`` if absent)."""
        if key not in self:
            if default is Headers._MISSING:
                raise KeyError(key)
            return default
        value = self[key]  # MultipleValuesError if several: use get_all + del
        del self[key]
        return value

    def copy(self) -> Headers:
        """Return a shallow copy."""
        new = self.__class__()
        new._list = list(self._list)
        return new

    def update(self, *args: HeadersLike, **kwargs: str) -> None:  # type: ignore[override]
        """Append headers from Headers, mappings, pairs and keyword arguments.

        Existing values are kept: ``update`` never replaces.
        """
        if len(args) > 1:
            raise TypeError(f"update expected at most 1 positional argument, got {len(args)}")
        for arg in args:
            pairs: Iterable[tuple[str, str]]
            if isinstance(arg, Headers):
                pairs = arg.raw_items()
            elif isinstance(arg, Mapping):
                pairs = arg.items()
            else:
                pairs = arg
            for key, value in pairs:
                self[key] = value
        for key, value in kwargs.items():
            self[key] = value

    def clear(self) -> None:
        """Remove every header."""
        self._index = None
        self._list = []

    def serialize(self) -> bytes:
        """Return the header block as bytes, ending with an empty line."""
        return str(self).encode("iso-8859-1")


#: What functions accept wherever headers are expected.
HeadersLike = Union[Headers, Mapping[str, str], Iterable[tuple[str, str]]]
