"""Tool schemas compared with smolagents' on smolagents' own test functions.

The functions below are smolagents' test inputs: their signatures and docstrings are reproduced
from huggingface/smolagents (Apache-2.0 licence), tests/test_function_type_hints_utils.py,
tests/test_tools.py and tests/fixtures/tools.py (renamed where several share a name). The
expected values are what smolagents 1.26 gives for them: `tool.inputs`, `tool.output_type`,
the `required` list of the schema it sends to models, and the `Returns:` description. Where
codeloop deliberately differs, the test says so and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Optional

import pytest
from pydantic import BaseModel

from codeloop.errors import AgentToolCallError, ToolDefinitionError
from codeloop.tools import Tool, tool

# ---- smolagents' test functions ----------------------------------------------------------------


def multiply(x: int, y: float) -> float:
    """
    Multiplies two numbers.

    Args:
        x: The first number.
        y: The second number.
    Returns:
        Product of x and y.
    """
    return x * y


def do_nothing(x: str | None = None) -> None:
    """
    Does nothing.

    Args:
        x: Some optional string.
    """


def process_data(items: list[str], config: dict[str, float], point: tuple[int, int]) -> dict:  # type: ignore[type-arg]
    """
    Process some data.

    Args:
        items: List of items to process.
        config: Configuration parameters.
        point: A position as (x,y).

    Returns:
        Processed data result.
    """
    return {"result": True}


def process_with_optional(required_arg: str, optional_arg: int | None = None) -> str:
    """
    Process with optional argument.

    Args:
        required_arg: A required string argument.
        optional_arg: An optional integer argument.

    Returns:
        Processing result.
    """
    return "processed"


def select_color(color: str) -> str:
    """
    Select a color.

    Args:
        color: The color to select (choices: ["red", "green", "blue"])

    Returns:
        Selected color.
    """
    return color


def process_union(value: int | str) -> bool | str:
    """
    Process a value that can be either int or string.

    Args:
        value: An integer or string value.

    Returns:
        Processing result.
    """
    return True if isinstance(value, int) else "string result"


def process_nested_data(data: list[dict[str, Any]]) -> list[str]:
    """
    Process nested data structure.

    Args:
        data: List of dictionaries to process.

    Returns:
        List of processed results.
    """
    return ["result"]


def calculate(x: int, y: float) -> float:
    """
    Calculate something.

    Args:
        x (int): An integer parameter with type in docstring.
        y (float): A float parameter with type in docstring.

    Returns:
        float: The calculated result.
    """
    return x * y


def convert(value: int) -> str:
    """
    Convert a value.

    Args:
        value (str): A string value (type mismatch with hint).

    Returns:
        int: Converted value (type mismatch with hint).
    """
    return str(value)


def process_complex(data: dict[str, list[int]]) -> list[dict[str, Any]]:
    """
    Process complex data.

    Args:
        data (Dict[str, List[int]]): Nested structure with types.

    Returns:
        List[Dict[str, Any]]: Processed results with types.
    """
    return [{"result": sum(sum(v) for v in data.values())}]


def process_keywords(value: str) -> str:
    """
    Function with Args: or Returns: keywords in its description.

    Args:
        value: A string value.

    Returns:
        str: Processed value.
    """
    return value.upper()


def fn(x: int, y: tuple[str, str, float] | None = None) -> None:
    """
    Test function
    Args:
        x: The first input
        y: The second input
    """


def coolfunc(a: str, b: int) -> float:
    """Cool function

    Args:
        a: The first argument
        b: The second one
    """
    return float(b)


def get_weather_optional(location: str, celsius: bool | None = False) -> str:
    """
    Get weather in the next days at given location.
    Secretly this tool does not care about the location, it hates the weather everywhere.

    Args:
        location: the location
        celsius: the temperature type
    """
    return "The weather is UNGODLY with torrential rains and temperatures below -10°C"


def get_weather_default(location: str, celsius: bool = False) -> str:
    """
    Get weather in the next days at given location.

    Args:
        location: The location to get the weather for.
        celsius: is the temperature given in celsius?
    """
    return "The weather is UNGODLY with torrential rains and temperatures below -10°C"


def get_weather_any(location: Any) -> None:
    """
    Get weather in the next days at given location.

    Args:
        location: The location to get the weather for.
    """


def get_weather_array(locations: list[str], months: tuple[str, str] | None = None) -> dict[str, float]:
    """
    Get weather in the next days at given locations.

    Args:
        locations: The locations to get the weather for.
        months: The months to get the weather for
    """
    return {}


def get_weather_literal(unit: Literal["celsius", "fahrenheit"] = "celsius") -> None:
    """
    Get weather in the next days at given location.

    Args:
        unit: The unit of temperature
    """


def get_choice(choice: Literal[1, 2, 3]) -> None:
    """
    Get choice based on the provided numeric literal.

    Args:
        choice: The numeric choice to be made.
    """


def get_choice_nullable(choice: Literal[1, 2, 3, None]) -> None:
    """
    Get choice based on the provided value.

    Args:
        choice: The numeric choice to be made.
    """


def boolean_default_tool(text: str, flag: bool = False) -> str:
    """
    A tool with a boolean default parameter.

    Args:
        text: Input text
        flag: Boolean flag with default value
    """
    return f"Text: {text}, Flag: {flag}"


def optional_input_tool(required_text: str, optional_text: str | None = None) -> str:
    """
    A tool with an optional input parameter.

    Args:
        required_text: Required input text
        optional_text: Optional input text
    """
    return f"{required_text} + {optional_text}" if optional_text else required_text


def valid_tool_function(input: str) -> str:
    """A valid tool function.

    Args:
        input (str): Input string.
    """
    return input.upper()


def join_items(items: list[str]) -> str:
    """Join a list of strings.
    Args:
        items: A list of strings to join
    Returns:
        The joined string
    """
    return ", ".join(items)


def union_type_return_tool_function(param: int) -> str | bool:
    """
    Tool with output union type.

    Args:
        param: Input parameter.
    """
    return str(param) if param > 0 else False


def get_current_time() -> str:
    """
    Gets the current time.
    """
    return "noon"


# ---- what smolagents 1.26 gives for them ---------------------------------------------------------


def _in(type_: str | list[str], description: str, **extra: Any) -> dict[str, Any]:
    return {"type": type_, **extra, "description": description}


@dataclass(frozen=True)
class Expected:
    fn: Callable[..., Any]
    description: str
    inputs: dict[str, dict[str, Any]]
    output_type: str
    required: list[str]
    returns: str | None = None
    # parameter -> codeloop's entry, where it deliberately differs from smolagents'
    differs: dict[str, dict[str, Any]] = field(default_factory=dict)
    required_differs: list[str] | None = None  # codeloop's `required`, where it differs


ARRAY_OF_STR = {"items": {"type": "string"}}
EXPECTED = [
    Expected(
        multiply, "Multiplies two numbers.",
        {"x": _in("integer", "The first number."), "y": _in("number", "The second number.")},
        "number", ["x", "y"], "Product of x and y.",
    ),
    Expected(
        do_nothing, "Does nothing.", {"x": _in("string", "Some optional string.", nullable=True)}, "null", [],
    ),
    Expected(
        process_data, "Process some data.",
        {
            "items": _in("array", "List of items to process.", **ARRAY_OF_STR),
            "config": _in("object", "Configuration parameters.", additionalProperties={"type": "number"}),
            "point": _in("array", "A position as (x,y).", prefixItems=[{"type": "integer"}] * 2),
        },
        "object", ["items", "config", "point"], "Processed data result.",
    ),
    Expected(
        process_with_optional, "Process with optional argument.",
        {
            "required_arg": _in("string", "A required string argument."),
            "optional_arg": _in("integer", "An optional integer argument.", nullable=True),
        },
        "string", ["required_arg"], "Processing result.",
    ),
    Expected(
        select_color, "Select a color.",
        {"color": _in("string", "The color to select", enum=["red", "green", "blue"])},
        "string", ["color"], "Selected color.",
    ),
    Expected(
        process_union, "Process a value that can be either int or string.",
        {"value": _in(["integer", "string"], "An integer or string value.")},
        "any", ["value"], "Processing result.",
    ),
    Expected(
        process_nested_data, "Process nested data structure.",
        {
            "data": _in(
                "array", "List of dictionaries to process.",
                items={"type": "object", "additionalProperties": {"type": "any"}},
            )
        },
        "array", ["data"], "List of processed results.",
        # `dict[str, Any]` and a bare `dict` have the same JSON schema (any values), so codeloop
        # cannot write smolagents' {"type": "any"} for one and nothing for the other: it writes nothing.
        differs={"data": _in("array", "List of dictionaries to process.", items={"type": "object"})},
    ),
    Expected(
        calculate, "Calculate something.",
        {
            "x": _in("integer", "An integer parameter with type in docstring."),
            "y": _in("number", "A float parameter with type in docstring."),
        },
        "number", ["x", "y"], "The calculated result.",
    ),
    Expected(
        convert, "Convert a value.", {"value": _in("integer", "A string value (type mismatch with hint).")},
        "string", ["value"], "Converted value (type mismatch with hint).",
    ),
    Expected(
        process_complex, "Process complex data.",
        {
            "data": _in(
                "object", "Nested structure with types.",
                additionalProperties={"type": "array", "items": {"type": "integer"}},
            )
        },
        "array", ["data"], "Processed results with types.",
    ),
    Expected(
        process_keywords, "Function with Args: or Returns: keywords in its description.",
        {"value": _in("string", "A string value.")}, "string", ["value"], "Processed value.",
    ),
    Expected(
        fn, "Test function",
        {
            "x": _in("integer", "The first input"),
            "y": _in(
                "array", "The second input", nullable=True,
                prefixItems=[{"type": "string"}, {"type": "string"}, {"type": "number"}],
            ),
        },
        "null", ["x"],
    ),
    Expected(
        coolfunc, "Cool function",
        {"a": _in("string", "The first argument"), "b": _in("integer", "The second one")},
        "number", ["a", "b"],
    ),
    Expected(
        get_weather_optional,
        "Get weather in the next days at given location.\n"
        "Secretly this tool does not care about the location, it hates the weather everywhere.",
        {
            "location": _in("string", "the location"),
            "celsius": _in("boolean", "the temperature type", nullable=True),
        },
        "string", ["location"],
    ),
    Expected(
        get_weather_default, "Get weather in the next days at given location.",
        {
            "location": _in("string", "The location to get the weather for."),
            "celsius": _in("boolean", "is the temperature given in celsius?", nullable=True),
        },
        "string", ["location"],
    ),
    Expected(
        get_weather_any, "Get weather in the next days at given location.",
        {"location": _in("any", "The location to get the weather for.")}, "null", ["location"],
    ),
    Expected(
        get_weather_array, "Get weather in the next days at given locations.",
        {
            "locations": _in("array", "The locations to get the weather for.", **ARRAY_OF_STR),
            "months": _in(
                "array", "The months to get the weather for", nullable=True,
                prefixItems=[{"type": "string"}, {"type": "string"}],
            ),
        },
        "object", ["locations"],
    ),
    Expected(
        get_weather_literal, "Get weather in the next days at given location.",
        {"unit": _in("string", "The unit of temperature", enum=["celsius", "fahrenheit"], nullable=True)},
        "null", [],
    ),
    Expected(
        get_choice, "Get choice based on the provided numeric literal.",
        {"choice": _in("integer", "The numeric choice to be made.", enum=[1, 2, 3])}, "null", ["choice"],
    ),
    Expected(
        get_choice_nullable, "Get choice based on the provided value.",
        {"choice": _in("integer", "The numeric choice to be made.", nullable=True, enum=[1, 2, 3])},
        "null", [],
        # smolagents leaves a nullable parameter out of `required` even without a default; in
        # codeloop's schema it is required (the model must pass it, None allowed), as in Python.
        required_differs=["choice"],
    ),
    Expected(
        boolean_default_tool, "A tool with a boolean default parameter.",
        {
            "text": _in("string", "Input text"),
            "flag": _in("boolean", "Boolean flag with default value", nullable=True),
        },
        "string", ["text"],
    ),
    Expected(
        optional_input_tool, "A tool with an optional input parameter.",
        {
            "required_text": _in("string", "Required input text"),
            "optional_text": _in("string", "Optional input text", nullable=True),
        },
        "string", ["required_text"],
    ),
    Expected(
        valid_tool_function, "A valid tool function.", {"input": _in("string", "Input string.")},
        "string", ["input"],
    ),
    Expected(
        join_items, "Join a list of strings.",
        {"items": _in("array", "A list of strings to join", **ARRAY_OF_STR)},
        "string", ["items"], "The joined string",
    ),
    Expected(
        union_type_return_tool_function, "Tool with output union type.",
        {"param": _in("integer", "Input parameter.")}, "any", ["param"],
    ),
    Expected(get_current_time, "Gets the current time.", {}, "string", []),
]  # fmt: skip


def _enum_of(schema: dict[str, Any]) -> list[Any] | None:
    """The enum of a property schema, at its top or in its one non-null member."""
    members = [m for m in schema.get("anyOf", []) if m.get("type") != "null"]
    return (members[0] if len(members) == 1 else schema).get("enum")


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda e: e.fn.__name__)
def test_inputs_and_output_type_match_smolagents(expected: Expected) -> None:
    made = tool(expected.fn)
    assert made.description == expected.description
    assert made.inputs == {**expected.inputs, **expected.differs}
    assert made.output_type == expected.output_type
    assert made.output_schema is None  # smolagents' @tool never sets it for these return types


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda e: e.fn.__name__)
def test_json_schema_requires_and_restricts_like_smolagents(expected: Expected) -> None:
    parameters = tool(expected.fn).json_schema()["parameters"]
    assert parameters["required"] == (
        expected.required if expected.required_differs is None else expected.required_differs
    )
    for name, entry in expected.inputs.items():
        assert _enum_of(parameters["properties"][name]) == entry.get("enum")


@pytest.mark.parametrize("expected", EXPECTED, ids=lambda e: e.fn.__name__)
def test_returns_description_matches_smolagents(expected: Expected) -> None:
    prompt = tool(expected.fn).to_code_prompt()
    if expected.returns is None:
        assert "Returns:" not in prompt
    else:
        assert prompt.endswith(f'    Returns:\n        {expected.returns}\n    """')


# ---- the items of issue 8, one by one ---------------------------------------------------------------


def test_docstring_choices_become_an_enum_that_validation_enforces() -> None:
    color = tool(select_color)
    assert color.json_schema()["parameters"]["properties"]["color"] == {
        "type": "string", "enum": ["red", "green", "blue"], "description": "The color to select",
    }  # fmt: skip
    assert color.validate_arguments({"color": "green"}) == {"color": "green"}
    with pytest.raises(
        AgentToolCallError, match=r"argument 'color': Input should be 'red', 'green' or 'blue'"
    ):
        color.validate_arguments({"color": "pink"})
    assert color.to_code_prompt().splitlines()[0] == (
        "def select_color(color: Literal['red', 'green', 'blue']) -> str:"
    )


def test_choices_keep_the_annotation_type_and_its_none() -> None:
    def pick(size: float | None = None, unit: str = "m") -> str:
        """Pick.

        Args:
            size: The size (choices: [1, 2.5])
            unit: The unit (Choices: ['m', 'km'])
        """
        return f"{size}{unit}"

    picked = tool(pick)
    assert picked.inputs["size"] == _in("number", "The size", nullable=True, enum=[1, 2.5])
    assert picked.inputs["unit"] == _in("string", "The unit", nullable=True, enum=["m", "km"])
    props = picked.json_schema()["parameters"]["properties"]
    assert props["size"]["anyOf"] == [{"type": "number", "enum": [1, 2.5]}, {"type": "null"}]
    assert picked(None, "km") == "Nonekm" and picked(2.5) == "2.5m"
    with pytest.raises(TypeError, match=r"argument 'size': Input should be 1 or 2.5, got 3"):
        picked(3)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("size: S (choices: small, large)", r"is not a list of values; write them as a JSON list"),
        ("size: S (choices: [])", r"is not a list of values"),
        ('size: S (choices: ["s", 1])', r"lists 1 in its docstring's `\(choices: ...\)`, which is not a str"),
    ],
)
def test_bad_choices_are_definition_errors(line: str, message: str) -> None:
    def sized(size: str) -> str:
        return size

    sized.__doc__ = f"Sized.\n\nArgs:\n    {line}\n"
    with pytest.raises(ToolDefinitionError, match=message):
        tool(sized)


@pytest.mark.parametrize(
    ("returns", "description"),
    [
        ("float: The calculated result.", "The calculated result."),
        ("List[Dict[str, Any]]: Processed results with types.", "Processed results with types."),
        ("str | None: The name, if known.", "The name, if known."),
        ("`str`: Package name.", "Package name."),
        ("The product.", "The product."),
        # smolagents drops anything up to the first colon ("from keys to values"); codeloop only
        # drops a leading type, so prose with a colon is kept whole.
        ("A mapping: from keys to values.", "A mapping: from keys to values."),
    ],
)
def test_returns_drops_a_leading_type(returns: str, description: str) -> None:
    def compute() -> str:
        return ""

    compute.__doc__ = f"Compute.\n\nReturns:\n    {returns}\n"
    assert tool(compute).to_code_prompt().endswith(f'    Returns:\n        {description}\n    """')


def test_parameters_with_defaults_are_nullable_in_inputs_only() -> None:
    weather = tool(get_weather_default)
    assert weather.inputs["celsius"]["nullable"] is True
    # The schema sent to models stays JSON Schema: optional by leaving `required`, with its
    # default, but not null-able; smolagents' own validator is meant to refuse None here too
    # (its test for this is marked "TODO: Fix").
    assert weather.json_schema()["parameters"]["properties"]["celsius"] == {
        "type": "boolean", "default": False, "description": "is the temperature given in celsius?",
    }  # fmt: skip
    with pytest.raises(AgentToolCallError, match=r"argument 'celsius': Input should be a valid boolean"):
        weather.validate_arguments({"location": "Paris", "celsius": None})


def test_literal_with_none_is_an_enum_without_none_and_nullable() -> None:
    choice = tool(get_choice_nullable)
    assert choice.json_schema()["parameters"]["properties"]["choice"] == {
        "anyOf": [{"type": "integer", "enum": [1, 2, 3]}, {"type": "null"}],
        "description": "The numeric choice to be made.",
    }
    assert choice.validate_arguments({"choice": None}) == {"choice": None}
    assert choice.validate_arguments({"choice": 3}) == {"choice": 3}
    with pytest.raises(AgentToolCallError, match=r"argument 'choice': Input should be 1, 2 or 3, got True"):
        choice.validate_arguments({"choice": True})
    assert choice.to_code_prompt().splitlines()[0] == (
        "def get_choice_nullable(choice: Literal[1, 2, 3] | None) -> None:"
    )


def test_optional_literal_keeps_its_enum_and_optional_return_its_type() -> None:
    def label(kind: Optional[Literal["a", "b"]] = None) -> str | None:  # noqa: UP045
        """Label.

        Args:
            kind: The kind.
        """
        return kind

    labelled = tool(label)
    assert labelled.inputs["kind"] == _in("string", "The kind.", nullable=True, enum=["a", "b"])
    assert labelled.output_type == "string"  # smolagents: `T | None` returns T


# ---- validation: smolagents' tests/test_tools.py tables -------------------------------------------


def _one_parameter_tool(annotation: Any, default: Any = ...) -> Tool:
    def check(param):  # type: ignore[no-untyped-def]
        """Test tool.

        Args:
            param: Input param.
        """
        return str(param)

    check.__annotations__ = {"param": annotation, "return": str}
    if default is not ...:
        check.__defaults__ = (default,)
    return tool(check)


@pytest.mark.parametrize(
    ("annotation", "value", "expects_error"),
    [
        (bool, True, False),
        (str, "b", False),
        (int, 1, False),
        (float, 1, False),
        (list, ["a", "b"], False),
        (list[str], ["a", "b"], False),
        (dict[str, str], {"a": "b"}, False),
        (dict[str, str], "b", True),
        (bool, "b", True),
        (str | int, "a", False),
        (str | int, 1, False),
        (str | int, None, True),
        (str | int, True, True),
    ],
)
def test_validate_tool_arguments_table(annotation: Any, value: Any, expects_error: bool) -> None:
    checked = _one_parameter_tool(annotation)
    if expects_error:
        with pytest.raises(AgentToolCallError, match=r"argument 'param'"):
            checked.validate_arguments({"param": value})
    else:
        assert checked.validate_arguments({"param": value}) == {"param": value}


@pytest.mark.parametrize(
    ("annotation", "default", "arguments", "error"),
    [
        (str, ..., {"param": "text"}, None),
        (str, ..., {"param": None}, "argument 'param': Input should be a valid string, got None"),
        (str, ..., {}, "missing required argument 'param'"),
        (str | None, ..., {"param": "text"}, None),
        (str | None, ..., {"param": None}, None),
        (str | None, ..., {}, "missing required argument 'param'"),  # a smolagents "TODO: Fix" case
        (str, "default", {"param": "text"}, None),
        (str, "default", {"param": None}, "Input should be a valid string, got None"),  # "TODO: Fix" too
        (str, "default", {}, None),
        (str | None, "default", {"param": "text"}, None),
        (str | None, "default", {"param": None}, None),
        (str | None, "default", {}, None),
        (str | None, None, {"param": "text"}, None),
        (str | None, None, {"param": None}, None),
        (str | None, None, {}, None),
    ],
)
def test_validate_tool_arguments_nullable_table(
    annotation: Any, default: Any, arguments: dict[str, Any], error: str | None
) -> None:
    checked = _one_parameter_tool(annotation, default)
    if error is not None:
        with pytest.raises(AgentToolCallError, match=error):
            checked.validate_arguments(arguments)
    else:
        expected = arguments.get("param", default)
        assert checked.validate_arguments(arguments) == {"param": expected}


@pytest.mark.parametrize(
    ("annotation", "value", "message"),
    [
        (int, True, "argument 'param': Input should be a valid integer, got True"),
        (float, False, "argument 'param': Input should be a valid number, got False"),
        (bool, 1, "argument 'param': Input should be a valid boolean, got 1"),
        (int | None, True, "argument 'param': Input should be a valid integer, got True"),
        (list[int], [1, True], r"argument 'param\[1\]': Input should be a valid integer, got True"),
        (dict[str, float], {"a": True}, r"argument 'param.a': Input should be a valid number, got True"),
        (Literal[0, 1], False, "argument 'param': Input should be 0 or 1, got False"),
        (Literal[True], 1, "argument 'param': Input should be True, got 1"),
        (str | int, True, r"argument 'param': expected str \| int, got True"),
    ],
)
def test_booleans_and_numbers_are_never_mixed_up(annotation: Any, value: Any, message: str) -> None:
    checked = _one_parameter_tool(annotation)
    with pytest.raises(AgentToolCallError, match=message):
        checked.validate_arguments({"param": value})
    with pytest.raises(TypeError, match=message):
        checked(value)


def test_strings_are_still_read_as_numbers_and_booleans() -> None:
    """A deliberate difference: smolagents rejects "3" for an integer; codeloop (pydantic's lax
    mode) accepts what a small model often sends, a JSON string holding the value."""
    assert _one_parameter_tool(int).validate_arguments({"param": "3"}) == {"param": 3}
    assert _one_parameter_tool(bool).validate_arguments({"param": "false"}) == {"param": False}
    assert _one_parameter_tool(str | int).validate_arguments({"param": "3"}) == {"param": "3"}


# ---- Tool subclasses: smolagents' fixtures and definition checks -----------------------------------


class BooleanDefaultTool(Tool):
    name = "boolean_default_tool"
    description = "A tool with a boolean default parameter"
    inputs = {  # noqa: RUF012
        "text": {"type": "string", "description": "Input text"},
        "flag": {"type": "boolean", "description": "Boolean flag with default value", "nullable": True},
    }
    output_type = "string"

    def forward(self, text: str, flag: bool = False) -> str:
        return f"Text: {text}, Flag: {flag}"


class OptionalInputTool(Tool):
    name = "optional_input_tool"
    description = "A tool with an optional input parameter"
    inputs = {  # noqa: RUF012
        "required_text": {"type": "string", "description": "Required input text"},
        "optional_text": {"type": "string", "description": "Optional input text", "nullable": True},
    }
    output_type = "string"

    def forward(self, required_text: str, optional_text: str | None = None) -> str:
        return f"{required_text} + {optional_text}" if optional_text else required_text


@pytest.mark.parametrize(
    ("subclass", "function"),
    [(BooleanDefaultTool, boolean_default_tool), (OptionalInputTool, optional_input_tool)],
)
def test_subclass_and_decorated_function_have_the_same_inputs(
    subclass: type[Tool], function: Callable[..., Any]
) -> None:
    assert subclass().inputs == tool(function).inputs
    assert subclass().json_schema()["parameters"] == tool(function).json_schema()["parameters"]


@pytest.mark.parametrize(
    ("type_value", "message"),
    [
        ("string", None),
        (["string", "number"], None),
        ("invalid_type", "has type 'invalid_type'; use one of"),
        (["string", "invalid_type"], "has type 'invalid_type'; use one of"),
        ([123, "string"], "has type 123; use one of"),
        (123, "has type 123; use one of"),
    ],
)
def test_tool_input_type_validation(type_value: Any, message: str | None) -> None:
    def create_tool() -> Tool:
        class TypedTool(Tool):
            name = "test_tool"
            description = "A tool for testing type validation"
            inputs = {"text": {"type": type_value, "description": "Some input"}}  # noqa: RUF012
            output_type = "string"

            def forward(self, text):  # type: ignore[no-untyped-def]
                return text

        return TypedTool()

    if message is None:
        assert create_tool()("x") == "x"
    else:
        with pytest.raises(ToolDefinitionError, match=message):
            create_tool()


def test_mismatching_nullable_inputs_are_definition_errors() -> None:
    """smolagents' three GetWeatherTool classes. The first two declare type "string" for a
    boolean: codeloop names the type mismatch; the third declares a required `str` nullable."""
    location = {"type": "string", "description": "the location"}
    with pytest.raises(ToolDefinitionError, match=r"says type 'string' but forward\(\) annotates"):

        class GetWeatherTool(Tool):
            name = "get_weather"
            description = "Get weather in the next days at given location."
            inputs = {"location": location, "celsius": {"type": "string", "description": "t"}}  # noqa: RUF012
            output_type = "string"

            def forward(self, location: str, celsius: bool | None = False) -> str:
                return location

    with pytest.raises(ToolDefinitionError, match=r"inputs\['celsius'\] is nullable, but forward\(\)'s"):

        class GetWeatherTool3(Tool):
            name = "get_weather"
            description = "Get weather in the next days at given location."
            inputs = {  # noqa: RUF012
                "location": location,
                "celsius": {"type": "string", "description": "t", "nullable": True},
            }
            output_type = "string"

            def forward(self, location, celsius: str) -> str:  # type: ignore[no-untyped-def]
                return str(location)


def test_missing_return_hint_is_any_not_an_error() -> None:
    """A deliberate difference: smolagents refuses a tool without a return hint ("Tool return
    type not found"); codeloop describes its output as "any"."""

    def unhinted(a: str, b: int):  # type: ignore[no-untyped-def]
        """Cool function

        Args:
            a: The first argument
            b: The second one
        """
        return a * b

    assert tool(unhinted).output_type == "any"


class Forecast(BaseModel):
    city: str
    degrees: float


def test_structured_return_types_get_an_output_schema() -> None:
    """smolagents' `output_schema` describes structured output (set by hand or by MCP);
    codeloop fills it in from a return hint that has fields, and leaves it None otherwise."""

    def forecast(city: str) -> Forecast:
        """Forecast.

        Args:
            city: The city.
        """
        return Forecast(city=city, degrees=20.0)

    made = tool(forecast)
    assert made.output_type == "object"
    assert made.output_schema == {
        "type": "object",
        "properties": {"city": {"type": "string"}, "degrees": {"type": "number"}},
        "required": ["city", "degrees"],
    }
