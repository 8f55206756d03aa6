"""`Tool`, the `@tool` decorator (`FunctionTool`) and `FinalAnswerTool`."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import inspect
import types
from collections.abc import Callable, Mapping
from typing import Any, ClassVar, overload

from .._sync import run_sync
from ..errors import AgentError, AgentToolCallError, AgentToolExecutionError, ToolDefinitionError
from ._render import display_signature, render_stub
from ._spec import Source, Spec, build_spec
from ._validation import as_mapping, validate

__all__ = ["FinalAnswerTool", "FunctionTool", "Tool", "tool"]


def _declared(target: Any, attr: str) -> Any:
    """`attr` as the user set it on `target` (an instance or a class): None when unset, or when
    the value was filled in by codeloop from a class's `forward` (so subclasses re-derive it)."""
    if not isinstance(target, type) and attr in vars(target):
        return vars(target)[attr]
    for klass in (target if isinstance(target, type) else type(target)).__mro__:
        if attr in vars(klass):
            return None if attr in vars(klass).get("_codeloop_derived", ()) else vars(klass)[attr]
    return None


class Tool:
    """A capability the agent can call. Subclass it and declare:

    * `name`: a Python identifier; `description`: what the tool does, for the model;
    * `inputs`: `{param: {"type": <smolagents type name>, "description": ..., "nullable": bool}}`,
      one entry per `forward` parameter (optional when `forward` has type hints and a docstring
      describing its parameters); `output_type`: a smolagents type name (optional when
      `forward` has a return hint);
    * `forward(self, ...)`: the implementation, sync or `async def`;
    * `requires_approval` (optional, default False): each call waits for a human's answer
      (see `codeloop.agents.approval`); set it on the class or in `__init__`.

    The definition is checked when the class is created (or, for attributes set in `__init__`,
    when the instance is first used) and `ToolDefinitionError` says what to fix.
    """

    name: str
    description: str
    inputs: dict[str, dict[str, Any]]
    output_type: str
    output_schema: dict[str, Any] | None
    is_initialized: bool = False
    requires_approval: bool = False
    """Each call of the tool waits for a human's answer (`codeloop.agents.approval`)."""
    _codeloop_derived: ClassVar[frozenset[str]]
    _codeloop_class_spec: ClassVar[Spec]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        defines_forward = any("forward" in vars(k) for k in cls.__mro__ if k is not Tool)
        if not (
            defines_forward
            and isinstance(getattr(cls, "name", None), str)
            and isinstance(getattr(cls, "description", None), str)
        ):
            return  # completed in __init__ (or abstract): checked on first use
        spec = build_spec(_source_of(cls))
        derived = {a for a in ("inputs", "output_type", "output_schema") if _declared(cls, a) is None}
        for attr in derived:
            setattr(cls, attr, getattr(spec, attr))
        cls._codeloop_derived = frozenset(derived)
        cls._codeloop_class_spec = dataclasses.replace(spec, key=_source_of(cls).key())

    def __init__(self) -> None:
        if isinstance(getattr(self, "name", None), str) and isinstance(
            getattr(self, "description", None), str
        ):
            _ = self._tool_spec  # check definitions completed in a subclass's __init__ now

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The implementation. Override it (sync or `async def`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement forward().")

    def setup(self) -> None:
        """Expensive one-time initialisation (load a model...); runs before the first call."""

    @property
    def _tool_spec(self) -> Spec:
        source = self._source()
        key = source.key()
        cached: Spec | None = vars(self).get("_codeloop_spec") or vars(type(self)).get("_codeloop_class_spec")
        if cached is None or cached.key != key:
            cached = build_spec(source)
            self.__dict__["_codeloop_spec"] = cached
        return cached

    def _source(self) -> Source:
        return _source_of(self)

    # -- as data --

    @property
    def wire_name(self) -> str:
        """The name the tool has outside Python code: in `json_schema()`, in `to_dict()` and,
        for a tool built from a schema, the real name (`math.factorial` when `name` is
        `math_factorial`)."""
        return self.name

    @staticmethod
    def from_schema(
        name: str,
        description: str | None,
        input_schema: Mapping[str, Any],
        function: Callable[..., Any],
        output_schema: Mapping[str, Any] | None = None,
        *,
        code_name: str | None = None,
        requires_approval: bool = False,
    ) -> Tool:
        """A tool from a name, a description and a JSON schema of its arguments (what an MCP
        server or another framework gives), calling `function` (sync or async) with the
        validated arguments as keyword arguments by their real names. Names that are not Python
        identifiers get a Python name for code (`code_name` chooses it; `code_names()` picks
        distinct ones for several tools). `requires_approval`: see `Tool`. See `SchemaTool`."""
        from ._schema_tool import SchemaTool

        return SchemaTool(
            name,
            description,
            input_schema,
            function,
            output_schema,
            code_name=code_name,
            requires_approval=requires_approval,
        )

    def to_dict(self) -> dict[str, Any]:
        """`{"name", "description", "input_schema", "output_type", "output_schema"}` (the
        latter when known), plus `"code"`, the source of a `@tool` function or of a `Tool`
        subclass (rebuilt by calling it without arguments), `"code_name"` when the Python
        name is not the one derived from the name, and `"requires_approval": true` when set."""
        from ._serialize import tool_to_dict

        return tool_to_dict(self)

    @staticmethod
    def from_dict(
        data: Mapping[str, Any],
        function: Callable[..., Any] | None = None,
        *,
        trust_remote_code: bool = False,
    ) -> Tool:
        """A tool from `to_dict()`'s output: around `function` when given; otherwise from the
        dict's source code, which is executed, so only with `trust_remote_code=True`."""
        from ._serialize import tool_from_dict

        return tool_from_dict(data, function, trust_remote_code)

    # -- descriptions --

    def json_schema(self) -> dict[str, Any]:
        """`{"name", "description", "parameters"}` for native function calling (no `$ref`s
        unless a type is recursive)."""
        spec = self._tool_spec
        return {
            "name": spec.name,
            "description": spec.description,
            "parameters": copy.deepcopy(spec.parameters),
        }

    def to_code_prompt(self) -> str:
        """A Python stub (signature and short docstring) for a code agent's system prompt."""
        return render_stub(self._tool_spec)

    # -- calling --

    def validate_arguments(self, arguments: Mapping[str, Any] | str) -> dict[str, Any]:
        """Check a JSON tool call's arguments (a dict or a JSON object string) and convert them
        (dict -> pydantic model, str -> Enum...). Defaults are filled in. Raises
        `AgentToolCallError` with a short message for the model."""
        spec = self._tool_spec
        return validate(spec, as_mapping(spec, arguments), AgentToolCallError)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Call like the function: positional arguments map to the inputs in order. Invalid
        arguments raise `TypeError`. An async `forward` is run to completion (see module doc)."""
        spec = self._tool_spec
        args_, kwargs_ = spec.split(self._bind(spec, args, kwargs))
        self._ensure_setup()
        if spec.is_async:
            return run_sync(self.forward(*args_, **kwargs_))
        return self.forward(*args_, **kwargs_)

    async def acall(self, arguments: Mapping[str, Any] | str) -> Any:
        """Validate `arguments` (`AgentToolCallError`), then run `forward`: natively if async,
        in a worker thread if sync. Its exceptions become `AgentToolExecutionError`."""
        spec = self._tool_spec
        args, kwargs = spec.split(self.validate_arguments(arguments))
        try:
            if not self.is_initialized:
                await asyncio.to_thread(self._ensure_setup)
            if spec.is_async:
                return await self.forward(*args, **kwargs)
            return await asyncio.to_thread(self.forward, *args, **kwargs)
        except AgentError:
            raise
        except Exception as exc:
            raise AgentToolExecutionError(f"Tool {spec.name} failed: {type(exc).__name__}: {exc}") from exc

    def as_host_function(self) -> Callable[..., Any]:
        """A plain function for a sandbox: called with Python arguments, validated (`TypeError`
        on bad ones), exceptions from `forward` propagate unchanged. Async iff `forward` is."""
        spec = self._tool_spec

        async def call_async(*args: Any, **kwargs: Any) -> Any:
            args_, kwargs_ = spec.split(self._bind(spec, args, kwargs))
            self._ensure_setup()
            return await self.forward(*args_, **kwargs_)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self(*args, **kwargs)

        host: Callable[..., Any] = call_async if spec.is_async else call
        host.__name__ = host.__qualname__ = spec.name
        host.__doc__ = spec.description
        host.__signature__ = spec.signature  # type: ignore[attr-defined]
        return host

    def _bind(self, spec: Spec, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> dict[str, Any]:
        try:
            bound = spec.signature.bind_partial(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(
                f"{spec.name}(): {exc}. Expected: {spec.name}{display_signature(spec, with_return=False)}"
            ) from None
        return validate(spec, bound.arguments, TypeError)

    def _ensure_setup(self) -> None:
        if not self.is_initialized:
            self.setup()
            self.is_initialized = True

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={getattr(self, 'name', None)!r})"


def _source_of(target: Tool | type[Tool]) -> Source:
    cls = target if isinstance(target, type) else type(target)
    return Source(
        func=cls.forward,
        skip_first=True,
        name=getattr(target, "name", None),  # type: ignore[arg-type]  # checked by _check_name
        description=getattr(target, "description", None),
        inputs=_declared(target, "inputs"),
        output_type=_declared(target, "output_type"),
        output_schema=_declared(target, "output_schema"),
    )


# ---- @tool ---------------------------------------------------------------------------------------


class FunctionTool(Tool):
    """A tool made by `@tool` from a function. On a method, it is a descriptor: `obj.method`
    is a tool bound to `obj` whose schema leaves out `self`."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        requires_approval: bool = False,
    ) -> None:
        self.requires_approval = requires_approval
        if isinstance(fn, staticmethod):
            fn = fn.__func__
        if isinstance(fn, classmethod) or not callable(fn):
            raise ToolDefinitionError(
                f"@tool needs a function or a method, got {fn!r}; "
                "for a classmethod, decorate a plain function instead."
            )
        params = list(inspect.signature(fn).parameters)
        self._fn = fn
        self._is_method = bool(params) and params[0] == "self"
        self._attr_name: str | None = None
        self.name = name if name is not None else getattr(fn, "__name__", "")
        spec = build_spec(
            dataclasses.replace(self._source(), description=description, inputs=None, output_type=None)
        )
        self.description, self.inputs, self.output_type = spec.description, spec.inputs, spec.output_type
        self.output_schema = spec.output_schema
        self.__dict__["_codeloop_spec"] = dataclasses.replace(spec, key=self._source().key())
        self.__doc__ = getattr(fn, "__doc__", None)
        self.__signature__ = spec.signature

    @property
    def function(self) -> Callable[..., Any]:
        """The decorated function (bound to its instance for a bound method tool)."""
        return self._fn

    def _source(self) -> Source:
        return Source(
            func=self._fn,
            skip_first=self._is_method,
            name=self.name,
            description=getattr(self, "description", None),
            inputs=getattr(self, "inputs", None),
            output_type=getattr(self, "output_type", None),
            output_schema=getattr(self, "output_schema", None),
        )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        if self._is_method:
            raise TypeError(
                f"{self.name} is a method tool: call it through an instance, e.g. obj.{self.name}(...)."
            )
        return self._fn(*args, **kwargs)

    def __set_name__(self, owner: type, name: str) -> None:
        self._attr_name = name

    def __get__(self, instance: Any, owner: type | None = None) -> FunctionTool:
        if instance is None or not self._is_method:
            return self
        bound = copy.copy(self)
        bound._fn = types.MethodType(self._fn, instance)
        bound._is_method = False
        bound.__dict__["_codeloop_spec"] = dataclasses.replace(self._tool_spec, key=bound._source().key())
        if self._attr_name is not None and isinstance(getattr(instance, "__dict__", None), dict):
            instance.__dict__[self._attr_name] = bound  # later lookups find the bound tool directly
        return bound


@overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None, requires_approval: bool = False
) -> Callable[[Callable[..., Any]], FunctionTool]: ...
def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    requires_approval: bool = False,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Make a tool from a function with type hints and a Google-style docstring.

    Works bare (`@tool`) or with options (`@tool(name="search", description="...")`). The
    docstring summary is the description; its `Args:` section must describe every parameter
    (or use `Annotated[T, Field(description=...)]`). Parameters with defaults are optional.
    Problems raise `ToolDefinitionError` here, at definition time. `requires_approval=True`:
    each call waits for a human's answer (see `codeloop.agents.approval`).
    """
    if fn is not None:
        return FunctionTool(fn, name=name, description=description, requires_approval=requires_approval)

    def decorate(func: Callable[..., Any]) -> FunctionTool:
        return FunctionTool(func, name=name, description=description, requires_approval=requires_approval)

    return decorate


class FinalAnswerTool(Tool):
    """Ends the run with an answer; the JSON tool-calling agent offers it to the model."""

    name = "final_answer"
    description = "Give the final answer to the task."
    inputs = {"answer": {"type": "any", "description": "The final answer to the task."}}  # noqa: RUF012
    output_type = "any"

    def forward(self, answer: Any) -> Any:
        return answer
