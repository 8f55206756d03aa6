"""Tools: definition checks, schemas, prompt stubs, argument validation and calling."""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import json
import threading
from collections.abc import Callable
from typing import Annotated, Any, Literal, Optional, Union

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

from codeloop.errors import (
    AgentToolCallError,
    AgentToolExecutionError,
    ManagedAgentError,
    ToolDefinitionError,
)
from codeloop.tools import AUTHORIZED_TYPES, FinalAnswerTool, FunctionTool, Tool, tool

# ---- types used by the tools below (module level so their hints resolve) -----------------------


class Unit(enum.Enum):
    C = "c"
    F = "f"


class Address(BaseModel):
    """A postal address."""

    street: str
    zip_code: int = 0


class Person(BaseModel):
    name: str
    address: Address


class Node(BaseModel):
    value: int
    children: list[Node] = []


class Point(TypedDict):
    x: int
    y: int


@dataclasses.dataclass
class Box:
    width: float
    height: float = 1.0


class Opaque:
    """A plain class pydantic cannot describe."""


def _params(fn: Callable[..., Any]) -> dict[str, Any]:
    """Schema of a one-parameter tool `fn(value: T)`: (property schema, required list)."""
    parameters = tool(fn).json_schema()["parameters"]
    return {"prop": parameters["properties"]["value"], "required": parameters["required"]}


def _contains_key(node: Any, key: str) -> bool:
    if isinstance(node, dict):
        return key in node or any(_contains_key(v, key) for v in node.values())
    if isinstance(node, list):
        return any(_contains_key(v, key) for v in node)
    return False


# ---- @tool: schemas per supported type ------------------------------------------------------------


@tool
def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """Get the current weather.

    Args:
        city: The city name.
        unit: Temperature unit.

    Returns:
        A short description of the weather.
    """
    return f"sunny in {city} ({unit})"


def test_function_tool_json_schema() -> None:
    assert get_weather.json_schema() == {
        "name": "get_weather",
        "description": "Get the current weather.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city name."},
                "unit": {
                    "type": "string",
                    "enum": ["c", "f"],
                    "default": "c",
                    "description": "Temperature unit.",
                },
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    }
    assert get_weather.name == "get_weather"
    assert get_weather.description == "Get the current weather."
    assert get_weather.output_type == "string"
    assert get_weather.inputs == {  # as in smolagents, a parameter with a default is nullable
        "city": {"type": "string", "description": "The city name."},
        "unit": {"type": "string", "description": "Temperature unit.", "enum": ["c", "f"], "nullable": True},
    }


def test_json_schema_is_a_copy() -> None:
    get_weather.json_schema()["parameters"]["properties"].clear()
    assert "city" in get_weather.json_schema()["parameters"]["properties"]


def test_scalar_types() -> None:
    @tool
    def scalars(s: str, i: int, f: float, b: bool, n: None, a: Any) -> None:
        """Scalars.

        Args:
            s: A string.
            i: An int.
            f: A float.
            b: A bool.
            n: Nothing.
            a: Anything.
        """

    props = scalars.json_schema()["parameters"]["properties"]
    assert {k: v.get("type") for k, v in props.items()} == {
        "s": "string", "i": "integer", "f": "number", "b": "boolean", "n": "null", "a": None,
    }  # fmt: skip
    assert props["a"] == {"description": "Anything."}
    assert scalars.json_schema()["parameters"]["required"] == ["s", "i", "f", "b", "n", "a"]
    assert scalars.output_type == "null"


def test_optional_and_union_types() -> None:
    def optional(value: Optional[int] = None) -> None:  # noqa: UP045
        """T.

        Args:
            value: V.
        """

    def pipe_none(value: str | None) -> None:
        """T.

        Args:
            value: V.
        """

    def union(value: Union[int, str]) -> None:  # noqa: UP007
        """T.

        Args:
            value: V.
        """

    nullable_int = {"anyOf": [{"type": "integer"}, {"type": "null"}], "description": "V."}
    assert _params(optional) == {"prop": {**nullable_int, "default": None}, "required": []}
    nullable_str = {"anyOf": [{"type": "string"}, {"type": "null"}], "description": "V."}
    assert _params(pipe_none) == {"prop": nullable_str, "required": ["value"]}
    assert _params(union)["prop"] == {"anyOf": [{"type": "integer"}, {"type": "string"}], "description": "V."}
    assert tool(optional).inputs["value"] == {"type": "integer", "description": "V.", "nullable": True}
    assert tool(union).inputs["value"]["type"] == ["integer", "string"]


def test_literal_and_enum_types() -> None:
    def literal(value: Literal["a", "b"]) -> None:
        """T.

        Args:
            value: V.
        """

    def enum_param(value: Unit = Unit.F) -> None:
        """T.

        Args:
            value: V.
        """

    assert _params(literal)["prop"] == {"type": "string", "enum": ["a", "b"], "description": "V."}
    prop = _params(enum_param)["prop"]
    assert prop == {"type": "string", "enum": ["c", "f"], "default": "f", "description": "V."}
    assert tool(enum_param).validate_arguments({"value": "c"}) == {"value": Unit.C}


def test_container_types() -> None:
    def lists(value: list[int]) -> None:
        """T.

        Args:
            value: V.
        """

    def dicts(value: dict[str, float]) -> None:
        """T.

        Args:
            value: V.
        """

    def tuples(value: tuple[int, str]) -> None:
        """T.

        Args:
            value: V.
        """

    def sets(value: set[str]) -> None:
        """T.

        Args:
            value: V.
        """

    assert _params(lists)["prop"] == {"type": "array", "items": {"type": "integer"}, "description": "V."}
    assert _params(dicts)["prop"] == {
        "type": "object", "additionalProperties": {"type": "number"}, "description": "V.",
    }  # fmt: skip
    assert _params(tuples)["prop"]["prefixItems"] == [{"type": "integer"}, {"type": "string"}]
    assert _params(sets)["prop"]["uniqueItems"] is True
    assert tool(tuples).validate_arguments({"value": [1, "a"]}) == {"value": (1, "a")}


def test_pydantic_model_schema_is_inlined_and_arguments_become_instances() -> None:
    @tool
    def register(person: Person) -> str:
        """Register a person.

        Args:
            person: Who to register.
        """
        return person.address.street

    parameters = register.json_schema()["parameters"]
    assert not _contains_key(parameters, "$ref") and not _contains_key(parameters, "$defs")
    assert not _contains_key(parameters, "title")
    prop = parameters["properties"]["person"]
    assert prop["description"] == "Who to register."
    assert prop["required"] == ["name", "address"]
    assert prop["properties"]["address"] == {
        "type": "object",
        "description": "A postal address.",
        "properties": {"street": {"type": "string"}, "zip_code": {"type": "integer", "default": 0}},
        "required": ["street"],
    }
    values = register.validate_arguments({"person": {"name": "Ann", "address": {"street": "Main St"}}})
    assert values["person"] == Person(name="Ann", address=Address(street="Main St"))
    assert register(person={"name": "Ann", "address": {"street": "Main St"}}) == "Main St"


def test_recursive_model_keeps_only_its_own_definition() -> None:
    @tool
    def tree(root: Node) -> int:
        """Sum a tree.

        Args:
            root: The root node.
        """
        return root.value + sum(tree.function(c) for c in root.children)

    parameters = tree.json_schema()["parameters"]
    assert list(parameters["$defs"]) == ["Node"]
    assert parameters["properties"]["root"]["properties"]["children"]["items"] == {"$ref": "#/$defs/Node"}
    assert tree({"value": 1, "children": [{"value": 2}]}) == 3


def test_typeddict_dataclass_and_annotated_description() -> None:
    @tool
    def shapes(point: Point, box: Box, label: Annotated[str, Field(description="The label.")] = "") -> float:
        """Shapes.

        Args:
            point: A point.
            box: A box.
        """
        return point["x"] + box.width

    props = shapes.json_schema()["parameters"]["properties"]
    assert props["point"]["required"] == ["x", "y"]
    assert props["box"]["properties"]["height"] == {"type": "number", "default": 1.0}
    assert props["label"] == {"type": "string", "default": "", "description": "The label."}
    assert shapes({"x": 1, "y": 2}, {"width": 2.5}) == 3.5


def test_mutable_and_non_json_defaults() -> None:
    @tool
    def defaults(tags: list[str] = ["a"], unit: Unit = Unit.C, flag: bool = False) -> str:  # noqa: B006
        """D.

        Args:
            tags: T.
            unit: U.
            flag: F.
        """
        return ""

    props = defaults.json_schema()["parameters"]["properties"]
    assert [props[k]["default"] for k in ("tags", "unit", "flag")] == [["a"], "c", False]
    assert defaults.json_schema()["parameters"]["required"] == []
    assert defaults.validate_arguments({}) == {"tags": ["a"], "unit": Unit.C, "flag": False}


def test_tool_decorator_options_and_multiline_docstring() -> None:
    @tool(name="lookup", description="Look something up.")
    def _impl(query: str) -> list[str]:
        """Ignored summary.

        Args:
            query (str): What to look for,
                possibly long.
        """
        return [query]

    assert isinstance(_impl, FunctionTool)
    assert _impl.name == "lookup"
    assert _impl.description == "Look something up."
    assert _impl.inputs["query"]["description"] == "What to look for, possibly long."
    assert _impl.output_type == "array"
    assert _impl("x") == ["x"]


def test_renaming_a_tool_updates_its_schema() -> None:
    @tool
    def old_name(x: int) -> int:
        """Old.

        Args:
            x: X.
        """
        return x

    old_name.name = "new_name"
    old_name.description = "New description."
    assert old_name.json_schema()["name"] == "new_name"
    assert old_name.json_schema()["description"] == "New description."
    assert old_name.to_code_prompt().startswith("def new_name(x: int) -> int:")


# ---- definition errors -------------------------------------------------------------------------


def test_missing_docstring_is_a_definition_error() -> None:
    def undocumented(x: int) -> int:
        return x

    with pytest.raises(ToolDefinitionError, match=r"'undocumented' has no description.*docstring.*Args:"):
        tool(undocumented)


def test_missing_args_entry_names_the_parameter() -> None:
    def half(city: str, days: int) -> str:
        """Forecast.

        Args:
            city: The city.
        """
        return city

    with pytest.raises(ToolDefinitionError) as info:
        tool(half)
    message = str(info.value)
    assert (
        "'half'" in message
        and "'days'" in message
        and "Args:" in message
        and "days: What days means" in message
    )


def test_missing_type_hint_names_the_parameter() -> None:
    def unhinted(city) -> str:  # type: ignore[no-untyped-def]
        """Forecast.

        Args:
            city: The city.
        """
        return str(city)

    with pytest.raises(
        ToolDefinitionError, match=r"'unhinted': parameter 'city' has no type hint.*`city: str`"
    ):
        tool(unhinted)


@pytest.mark.parametrize("annotation", [Opaque, Callable[[int], int], list[Opaque]])
def test_unsupported_type_names_the_parameter(annotation: Any) -> None:
    def fn(ok: int, bad: Any) -> None:
        """F.

        Args:
            ok: Fine.
            bad: Not describable.
        """

    fn.__annotations__["bad"] = annotation
    with pytest.raises(ToolDefinitionError) as info:
        tool(fn)
    message = str(info.value)
    assert "'fn': parameter 'bad'" in message and "cannot be described" in message and "BaseModel" in message
    assert "errors.pydantic.dev" not in message


def test_other_definition_errors() -> None:
    def variadic(*items: str) -> None:
        """V.

        Args:
            items: Items.
        """

    def stale_doc(x: int) -> None:
        """S.

        Args:
            x: X.
            y: A parameter that was removed.
        """

    def fine(x: int) -> None:
        """F.

        Args:
            x: X.
        """

    with pytest.raises(ToolDefinitionError, match=r"'items' is \*args/\*\*kwargs"):
        tool(variadic)
    with pytest.raises(ToolDefinitionError, match=r"describes 'y', which is not a parameter"):
        tool(stale_doc)
    with pytest.raises(ToolDefinitionError, match=r"not a valid Python identifier"):
        tool(name="bad-name")(fine)
    with pytest.raises(ToolDefinitionError, match=r"classmethod"):
        tool(classmethod(fine))  # type: ignore[arg-type]


def test_definition_error_is_a_configuration_error() -> None:
    from codeloop.errors import ConfigurationError

    assert issubclass(ToolDefinitionError, ConfigurationError)


# ---- Tool subclasses ---------------------------------------------------------------------------------


class WeatherTool(Tool):
    name = "weather"
    description = "Get the weather for a city."
    inputs = {  # noqa: RUF012
        "city": {"type": "string", "description": "The city."},
        "days": {"type": "integer", "description": "How many days.", "nullable": True},
    }
    output_type = "string"

    def forward(self, city, days=None):  # type: ignore[no-untyped-def]
        return f"{city}:{days}"


def test_subclass_schema_from_inputs() -> None:
    weather = WeatherTool()
    assert weather.json_schema() == {
        "name": "weather",
        "description": "Get the weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string", "description": "The city."},
                "days": {
                    "anyOf": [{"type": "integer"}, {"type": "null"}],
                    "default": None,
                    "description": "How many days.",
                },
            },
            "required": ["city"],
            "additionalProperties": False,
        },
    }
    assert weather.inputs is WeatherTool.inputs or weather.inputs == WeatherTool.inputs
    assert weather("Oslo", 3) == "Oslo:3"
    assert weather.validate_arguments({"city": "Oslo", "days": "2"}) == {"city": "Oslo", "days": 2}
    assert (
        weather.to_code_prompt().splitlines()[0] == "def weather(city: str, days: int | None = None) -> str:"
    )


def test_subclass_smolagents_type_names() -> None:
    class Caption(Tool):
        name = "caption"
        description = "Caption an image."
        inputs = {  # noqa: RUF012
            "image": {"type": "image", "description": "The image."},
            "sizes": {"type": "array", "description": "Sizes.", "nullable": True},
            "mode": {"type": "string", "description": "Mode.", "enum": ["a", "b"]},
            "scale": {"type": ["number", "string"], "description": "Scale."},
        }
        output_type = "object"

        def forward(self, image, sizes=None, mode="a", scale=1.0):  # type: ignore[no-untyped-def]
            return {"image": image, "mode": mode, "scale": scale}

    props = Caption().json_schema()["parameters"]["properties"]
    assert props["image"] == {"type": "string", "description": "The image."}
    assert props["sizes"]["anyOf"] == [{"type": "array", "items": {}}, {"type": "null"}]
    assert props["mode"]["enum"] == ["a", "b"]
    assert props["scale"]["anyOf"] == [{"type": "number"}, {"type": "string"}]
    assert Caption().to_code_prompt().splitlines()[0] == (
        "def caption(image: Any, sizes: list | None = None, mode: Literal['a', 'b'] = 'a', "
        "scale: float | str = 1.0) -> dict:"
    )
    picture = object()
    assert Caption()(picture, mode="b") == {"image": picture, "mode": "b", "scale": 1.0}
    with pytest.raises(TypeError, match="argument 'mode': Input should be 'a' or 'b', got 'c'"):
        Caption()(picture, mode="c")


def test_subclass_with_annotated_forward_and_no_inputs() -> None:
    class Register(Tool):
        name = "register"
        description = "Register a person."

        async def forward(self, person: Person, unit: Unit = Unit.C) -> bool:
            """Args:
            person: The person.
            unit: The unit.
            """
            return isinstance(person, Person) and isinstance(unit, Unit)

    assert Register.inputs == {
        "person": {"type": "object", "description": "The person."},
        "unit": {"type": "string", "description": "The unit.", "enum": ["c", "f"], "nullable": True},
    }
    assert Register.output_type == "boolean"
    assert Register()({"name": "a", "address": {"street": "s"}}, "f") is True


def test_subclass_declared_types_with_annotations_use_the_annotation() -> None:
    class Schedule(Tool):
        name = "schedule"
        description = "Schedule."
        inputs = {"when": {"type": "object", "description": "When."}}  # noqa: RUF012
        output_type = "string"

        def forward(self, when: Box) -> str:
            return type(when).__name__

    assert Schedule()(when={"width": 1}) == "Box"


def test_subclass_definition_errors_at_class_creation() -> None:
    with pytest.raises(ToolDefinitionError, match=r"inputs\['city'\] has type 'str'; use one of: string"):

        class BadType(Tool):
            name = "bad_type"
            description = "D."
            inputs = {"city": {"type": "str", "description": "C."}}  # noqa: RUF012
            output_type = "string"

            def forward(self, city):  # type: ignore[no-untyped-def]
                return city

    with pytest.raises(ToolDefinitionError, match=r"forward\(\) takes 'days', missing from `inputs`"):

        class MissingInput(Tool):
            name = "missing_input"
            description = "D."
            inputs = {"city": {"type": "string", "description": "C."}}  # noqa: RUF012
            output_type = "string"

            def forward(self, city, days):  # type: ignore[no-untyped-def]
                return city

    with pytest.raises(ToolDefinitionError, match=r"`inputs` describes 'town', which is not a parameter"):

        class ExtraInput(Tool):
            name = "extra_input"
            description = "D."
            inputs = {"town": {"type": "string", "description": "C."}}  # noqa: RUF012
            output_type = "string"

            def forward(self) -> str:
                return ""


def test_subclass_declared_type_must_agree_with_annotation() -> None:
    with pytest.raises(
        ToolDefinitionError, match=r"says type 'string' but forward\(\) annotates 'n' as 'integer'"
    ):

        class Mismatch(Tool):
            name = "mismatch"
            description = "D."
            inputs = {"n": {"type": "string", "description": "N."}}  # noqa: RUF012
            output_type = "string"

            def forward(self, n: int) -> str:
                return str(n)


def test_subclass_missing_description_and_bad_output_type() -> None:
    with pytest.raises(ToolDefinitionError, match=r'needs a "description" string'):

        class NoDescription(Tool):
            name = "no_description"
            description = "D."
            inputs = {"x": {"type": "string"}}  # noqa: RUF012
            output_type = "string"

            def forward(self, x):  # type: ignore[no-untyped-def]
                return x

    with pytest.raises(ToolDefinitionError, match=r"output_type 'text' is unknown"):

        class BadOutput(Tool):
            name = "bad_output"
            description = "D."
            inputs = {"x": {"type": "string", "description": "X."}}  # noqa: RUF012
            output_type = "text"

            def forward(self, x):  # type: ignore[no-untyped-def]
                return x


def test_attributes_set_in_init_are_checked_at_construction() -> None:
    class Dynamic(Tool):
        output_type = "string"

        def __init__(self, name: str, inputs: dict[str, dict[str, Any]]) -> None:
            self.name = name
            self.description = f"Tool {name}."
            self.inputs = inputs
            super().__init__()

        def forward(self, text: str) -> str:
            return text.upper()

    good = Dynamic("shout", {"text": {"type": "string", "description": "Text."}})
    assert good("hi") == "HI"
    assert good.json_schema()["name"] == "shout"
    with pytest.raises(ToolDefinitionError, match="describes 'txt'"):
        Dynamic("shout", {"txt": {"type": "string", "description": "Text."}})


def test_subclass_of_a_derived_tool_rederives_its_inputs() -> None:
    class Base(Tool):
        name = "base"
        description = "Base."

        def forward(self, a: int) -> int:
            """Args:
            a: A.
            """
            return a

    class Child(Base):
        name = "child"

        def forward(self, b: str) -> int:  # type: ignore[override]
            """Args:
            b: B.
            """
            return len(b)

    assert list(Base.inputs) == ["a"]
    assert list(Child.inputs) == ["b"]
    assert Child()("abc") == 3


def test_setup_runs_once_before_the_first_call() -> None:
    class Loader(Tool):
        name = "loader"
        description = "Loads."
        inputs = {"x": {"type": "integer", "description": "X."}}  # noqa: RUF012
        output_type = "integer"
        setups = 0

        def setup(self) -> None:
            type(self).setups += 1

        def forward(self, x: int) -> int:
            return x

    loader = Loader()
    assert loader.is_initialized is False
    assert loader(1) == 1 and asyncio.run(loader.acall({"x": 2})) == 2
    assert Loader.setups == 1 and loader.is_initialized


def test_authorized_types_are_smolagents_names() -> None:
    assert {"string", "integer", "number", "boolean", "array", "object", "any", "image", "null"} <= set(
        AUTHORIZED_TYPES
    )


# ---- validate_arguments -------------------------------------------------------------------------------


def test_validate_arguments_accepts_dicts_and_json_strings() -> None:
    assert get_weather.validate_arguments({"city": "Paris"}) == {"city": "Paris", "unit": "c"}
    assert get_weather.validate_arguments('{"city": "Paris", "unit": "f"}') == {"city": "Paris", "unit": "f"}


def test_validate_arguments_coerces_lax_values() -> None:
    @tool
    def count(n: int, ratio: float, on: bool) -> None:
        """C.

        Args:
            n: N.
            ratio: R.
            on: O.
        """

    assert count.validate_arguments({"n": "3", "ratio": 1, "on": "true"}) == {
        "n": 3,
        "ratio": 1.0,
        "on": True,
    }


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({}, "missing required argument 'city'"),
        ({"city": "x", "country": "y"}, "unexpected argument 'country'"),
        ({"city": 3}, "argument 'city': Input should be a valid string, got 3"),
        ({"city": "x", "unit": "kelvin"}, "argument 'unit': Input should be 'c' or 'f', got 'kelvin'"),
        ("[1, 2]", "expected a JSON object with keys (city, unit), got '[1, 2]'"),
        ("{not json", "expected a JSON object"),
    ],
)
def test_validate_arguments_rejects_with_readable_message(arguments: Any, expected: str) -> None:
    with pytest.raises(AgentToolCallError) as info:
        get_weather.validate_arguments(arguments)
    message = str(info.value)
    assert message.startswith("Invalid arguments for tool 'get_weather': ")
    assert expected in message
    assert "pydantic" not in message and "https://" not in message


def test_validation_message_shows_expected_signature_and_nested_paths() -> None:
    @tool
    def register(person: Person, ids: list[int], key: int | str) -> None:
        """R.

        Args:
            person: P.
            ids: I.
            key: K.
        """

    with pytest.raises(AgentToolCallError) as info:
        register.validate_arguments({"person": {"name": "a", "address": {}}, "ids": [1, "x"], "key": [1]})
    message = str(info.value)
    assert "'person.address.street' is required" in message
    assert "argument 'ids[1]': Input should be a valid integer" in message
    assert "argument 'key': expected int | str, got [1]" in message
    assert message.endswith("Expected: register(person: dict, ids: list[int], key: int | str)")


def test_empty_arguments_string_means_no_arguments() -> None:
    assert FinalAnswerTool().validate_arguments('{"answer": 1}') == {"answer": 1}

    @tool
    def ping() -> str:
        """Ping."""
        return "pong"

    assert ping.validate_arguments("") == {}
    assert ping.json_schema()["parameters"] == {
        "type": "object", "properties": {}, "required": [], "additionalProperties": False,
    }  # fmt: skip


def test_parameter_names_that_clash_with_basemodel_attributes() -> None:
    @tool
    def clash(json: str, model_config: int, schema: bool = False) -> str:
        """C.

        Args:
            json: J.
            model_config: M.
            schema: S.
        """
        return f"{json}{model_config}{schema}"

    assert clash.validate_arguments({"json": "a", "model_config": 1}) == {
        "json": "a",
        "model_config": 1,
        "schema": False,
    }
    assert clash("a", 2, True) == "a2True"
    with pytest.raises(AgentToolCallError, match="unexpected argument 'p0'"):
        clash.validate_arguments({"json": "a", "model_config": 1, "p0": "x"})


# ---- calling ---------------------------------------------------------------------------------------


@tool
async def async_echo(text: str, times: int = 1) -> str:
    """Echo asynchronously.

    Args:
        text: The text.
        times: Repetitions.
    """
    await asyncio.sleep(0)
    return text * times


@tool
def fails(reason: str) -> str:
    """Always fails.

    Args:
        reason: Why.
    """
    raise ValueError(reason)


def test_call_maps_positional_arguments_in_order() -> None:
    assert get_weather("Paris", "f") == "sunny in Paris (f)"
    assert get_weather("Paris", unit="f") == "sunny in Paris (f)"


@pytest.mark.parametrize(
    ("args", "kwargs", "expected"),
    [
        (("Paris", "f", 3), {}, "get_weather(): too many positional arguments"),
        (("Paris",), {"city": "Rome"}, "multiple values for argument 'city'"),
        ((), {"town": "Rome"}, "unexpected keyword argument 'town'"),
        ((), {}, "missing required argument 'city'"),
        ((3,), {}, "argument 'city': Input should be a valid string, got 3"),
    ],
)
def test_call_rejects_bad_arguments_with_type_error(
    args: tuple[Any, ...], kwargs: dict[str, Any], expected: str
) -> None:
    with pytest.raises(TypeError) as info:
        get_weather(*args, **kwargs)
    assert expected in str(info.value)
    assert "Expected: get_weather(city: str, unit: Literal['c', 'f'] = 'c')" in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_call_runs_async_forward_without_a_loop() -> None:
    assert async_echo("ab", 2) == "abab"


async def test_call_runs_async_forward_inside_a_running_loop() -> None:
    assert async_echo("ab", times=3) == "ababab"


async def test_acall_sync_forward_runs_in_a_worker_thread() -> None:
    seen: list[str] = []

    @tool
    def where(tag: str) -> str:
        """Record the thread.

        Args:
            tag: A tag.
        """
        seen.append(threading.current_thread().name)
        return tag

    assert await where.acall({"tag": "x"}) == "x"
    assert seen and seen[0] != threading.current_thread().name


async def test_acall_async_forward_and_json_string_arguments() -> None:
    assert await async_echo.acall('{"text": "hi", "times": "2"}') == "hihi"


async def test_acall_wraps_forward_exceptions() -> None:
    with pytest.raises(AgentToolExecutionError) as info:
        await fails.acall({"reason": "no network"})
    assert str(info.value) == "Tool fails failed: ValueError: no network"
    assert isinstance(info.value.__cause__, ValueError)


async def test_acall_rejects_invalid_arguments_before_running() -> None:
    with pytest.raises(AgentToolCallError, match="missing required argument 'reason'"):
        await fails.acall({})


async def test_acall_lets_agent_errors_through() -> None:
    @tool
    async def delegate(task: str) -> str:
        """Delegate.

        Args:
            task: The task.
        """
        raise ManagedAgentError(f"Team member failed on {task}")

    with pytest.raises(ManagedAgentError, match="Team member failed on x"):
        await delegate.acall({"task": "x"})


def test_forward_exceptions_propagate_unchanged_from_direct_calls() -> None:
    with pytest.raises(ValueError, match="boom"):
        fails("boom")


async def test_host_functions() -> None:
    sync_host = get_weather.as_host_function()
    assert sync_host("Oslo", unit="f") == "sunny in Oslo (f)"
    assert sync_host.__name__ == "get_weather"
    async_host = async_echo.as_host_function()
    assert asyncio.iscoroutinefunction(async_host)
    assert await async_host("a", 2) == "aa"
    with pytest.raises(TypeError, match="Invalid arguments for tool 'async_echo'"):
        await async_host(text=1)
    with pytest.raises(ValueError, match="kaput"):
        fails.as_host_function()("kaput")


def test_positional_only_parameters() -> None:
    @tool
    def power(base: int, /, exponent: int = 2) -> int:
        """Power.

        Args:
            base: Base.
            exponent: Exponent.
        """
        return int(base**exponent)

    assert power(3) == 9
    assert power.validate_arguments({"base": 2}) == {"base": 2, "exponent": 2}
    assert asyncio.run(power.acall({"base": 2, "exponent": 3})) == 8
    assert power.to_code_prompt().splitlines()[0] == "def power(base: int, /, exponent: int = 2) -> int:"


# ---- method tools ---------------------------------------------------------------------------------------


class Counter:
    def __init__(self, start: int) -> None:
        self.total = start

    @tool
    def add(self, amount: int) -> int:
        """Add to the counter.

        Args:
            amount: How much to add.
        """
        self.total += amount
        return self.total

    @tool
    async def aadd(self, amount: int = 1) -> int:
        """Add asynchronously.

        Args:
            amount: How much.
        """
        self.total += amount
        return self.total


def test_method_tool_binds_to_its_instance() -> None:
    counter = Counter(10)
    bound = counter.add
    assert isinstance(bound, Tool)
    assert bound.json_schema()["parameters"]["properties"] == {
        "amount": {"type": "integer", "description": "How much to add."}
    }
    assert bound.json_schema()["parameters"]["required"] == ["amount"]
    assert bound(5) == 15 and counter.total == 15
    assert asyncio.run(bound.acall({"amount": 1})) == 16
    assert counter.add is bound  # cached on the instance
    other = Counter(0)
    assert other.add(1) == 1 and counter.total == 16


def test_method_tool_async_and_unbound_access() -> None:
    counter = Counter(0)
    assert asyncio.run(counter.aadd.acall({})) == 1
    assert counter.aadd() == 2
    unbound = Counter.add
    assert isinstance(unbound, FunctionTool)
    assert "self" not in unbound.json_schema()["parameters"]["properties"]
    assert unbound.to_code_prompt().startswith("def add(amount: int) -> int:")
    with pytest.raises(TypeError, match="method tool: call it through an instance"):
        unbound(1)


def test_function_tool_in_a_class_body_is_not_bound() -> None:
    class Holder:
        weather = get_weather

    assert Holder().weather is get_weather


# ---- prompts ---------------------------------------------------------------------------------------------


def test_to_code_prompt() -> None:
    assert get_weather.to_code_prompt() == (
        "def get_weather(city: str, unit: Literal['c', 'f'] = 'c') -> str:\n"
        '    """Get the current weather.\n'
        "\n"
        "    Args:\n"
        "        city: The city name.\n"
        "        unit: Temperature unit.\n"
        "\n"
        "    Returns:\n"
        "        A short description of the weather.\n"
        '    """'
    )


def test_to_code_prompt_renders_model_keys_enums_and_unknown_return_types() -> None:
    @tool
    def ship(to: Address, unit: Unit = Unit.C, items: dict[str, list[int]] | None = None) -> Opaque:
        """Ship a parcel.

        Second paragraph.

        Args:
            to: Where to.
            unit: Unit.
            items: Items.
        """
        return Opaque()

    assert ship.output_type == "any"
    assert ship.to_code_prompt() == (
        "def ship(to: dict, unit: Literal['c', 'f'] = 'c', "
        "items: dict[str, list[int]] | None = None) -> Opaque:\n"
        '    """Ship a parcel.\n'
        "\n"
        "    Second paragraph.\n"
        "\n"
        "    Args:\n"
        "        to: Where to. Keys: street: str, zip_code: int = 0.\n"
        "        unit: Unit.\n"
        "        items: Items.\n"
        '    """'
    )


def test_to_code_prompt_of_a_tool_without_parameters() -> None:
    @tool
    def now() -> str:
        """The current time."""
        return ""

    assert now.to_code_prompt() == 'def now() -> str:\n    """The current time.\n    """'


# ---- FinalAnswerTool ---------------------------------------------------------------------------------------


async def test_final_answer_tool() -> None:
    final = FinalAnswerTool()
    assert final.name == "final_answer"
    assert final.description == "Give the final answer to the task."
    assert final.inputs["answer"]["type"] == "any"
    assert final.json_schema()["parameters"] == {
        "type": "object",
        "properties": {"answer": {"description": "The final answer to the task."}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    assert await final.acall({"answer": {"a": [1, 2]}}) == {"a": [1, 2]}
    assert final(42) == 42
    assert json.loads(json.dumps(final.json_schema())) == final.json_schema()
