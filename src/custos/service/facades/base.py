"""What the facades share: results (frozen dataclasses that turn into the plain dict of a JSON
body or a ``--json`` output), and one small kernel (:class:`Bound`) that binds a workflow
without spelling its signature again: :func:`workflow` makes a ``f(app, …)`` function a facade
method; :func:`delegate` makes a facade method a method of
:class:`~custos.service.app.Custos` (the compatibility surface)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import fields
from operator import attrgetter
from typing import TYPE_CHECKING, Any, Concatenate, Generic, ParamSpec, TypeVar, overload

if TYPE_CHECKING:
    from custos.service.app import Custos

P = ParamSpec("P")
R = TypeVar("R")
T = TypeVar("T")
F = TypeVar("F")


def plain(value: Any) -> Any:
    """``value`` as JSON-ready Python: a :class:`Result` as its dict, a tuple or list as a list,
    a mapping as a dict (recursively); anything else as it is."""
    if isinstance(value, Result):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: plain(v) for k, v in value.items()}
    return value


class Result:
    """Base of the facades' frozen dataclasses."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """The result as a plain dict, its fields in declaration order."""
        return {f.name: plain(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


def as_dict(result: Result) -> dict[str, Any]:
    """A result as its plain dict (see :meth:`Result.to_dict`)."""
    return result.to_dict()


def as_dicts(results: Iterable[Result]) -> list[dict[str, Any]]:
    """Results as a list of plain dicts."""
    return [result.to_dict() for result in results]


class Facade:
    """A group of related workflows of one :class:`~custos.service.app.Custos` instance."""

    __slots__ = ("_app",)

    def __init__(self, app: Custos) -> None:
        self._app = app


class Bound(Generic[P, R]):
    """A function ``f(first, …)`` as a method: ``obj.name(…)`` calls ``f(first(obj), …)``, with
    the function's signature (less its first parameter) for the type checker."""

    def __init__(
        self, function: Callable[Concatenate[Any, P], R], first: Callable[[Any], Any], doc: str
    ) -> None:
        self.function, self.first = function, first
        self.__doc__ = doc

    @overload
    def __get__(self, obj: None, owner: type) -> Bound[P, R]: ...
    @overload
    def __get__(self, obj: object, owner: type) -> Callable[P, R]: ...
    def __get__(self, obj: object | None, owner: type) -> Bound[P, R] | Callable[P, R]:
        if obj is None:
            return self
        function, first = self.function, self.first(obj)

        def bound(*args: P.args, **kwargs: P.kwargs) -> R:
            return function(first, *args, **kwargs)

        bound.__doc__ = self.__doc__
        return bound


def workflow(function: Callable[Concatenate[Custos, P], R]) -> Bound[P, R]:
    """A service function ``f(app, …)`` as a method of a facade: ``facade.f(…)`` calls it with
    the facade's instance, with the function's own signature and docstring."""
    return Bound(function, attrgetter("_app"), function.__doc__ or "")


@overload
def delegate(facade: str, method: Callable[Concatenate[F, P], R]) -> Bound[P, R]: ...
@overload
def delegate(
    facade: str, method: Callable[Concatenate[F, P], R], convert: Callable[[R], T]
) -> Bound[P, T]: ...
def delegate(
    facade: str,
    method: Callable[Concatenate[F, P], Any],
    convert: Callable[[Any], Any] | None = None,
) -> Bound[P, Any]:
    """The compatibility surface: ``Custos.<name> = delegate("consent", ConsentFacade.record)``
    makes ``custos.<name>(…)`` call ``custos.consent.record(…)`` (its result passed through
    ``convert``, e.g. :func:`as_dict`), with the method's signature for the type checker."""
    doc = f"Compatibility surface: ``{facade}.{method.__name__}``" + (
        f", its result through ``{convert.__name__}``." if convert else "."
    )
    if convert is None:
        return Bound(method, attrgetter(facade), doc)

    def converted(target: F, /, *args: P.args, **kwargs: P.kwargs) -> Any:
        return convert(method(target, *args, **kwargs))

    return Bound(converted, attrgetter(facade), doc)
