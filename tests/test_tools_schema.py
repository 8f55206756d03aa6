"""Tools built from data: `Tool.from_schema`, `to_dict` / `from_dict`, on real-world schemas
(tests/data/schemas, see its README) and one test per schema feature."""

from __future__ import annotations

import ast
import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest

from codeloop.errors import AgentToolCallError, ToolDefinitionError
from codeloop.tools import SchemaTool, Tool, code_names, tool

SCHEMAS = sorted((Path(__file__).parent / "data" / "schemas").glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _echo(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def _from(data: dict[str, Any]) -> Tool:
    return Tool.from_schema(
        data["name"], data.get("description"), data["input_schema"], _echo, data.get("output_schema")
    )


def test_there_are_at_least_20_real_world_schemas() -> None:
    assert len(SCHEMAS) >= 20


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.stem)
def test_real_world_schema(path: Path) -> None:
    data = _load(path)
    built = _from(data)
    stub = built.to_code_prompt()
    ast.parse(stub)
    assert stub.startswith(f"def {built.name}(")
    schema = built.json_schema()
    assert schema["name"] == data["name"]
    assert set(schema["parameters"]["properties"]) == set(data["input_schema"]["properties"])
    json.dumps(schema)
    assert built.validate_arguments(data["good_call"]) is not None
    assert asyncio.run(built.acall(data["good_call"])).keys() >= data["good_call"].keys()
    with pytest.raises(AgentToolCallError, match=f"Invalid arguments for tool '{built.name}'"):
        built.validate_arguments(data["bad_call"])


@pytest.mark.parametrize("path", SCHEMAS, ids=lambda p: p.stem)
def test_round_trip_through_a_dict(path: Path) -> None:
    built = _from(_load(path))
    again = Tool.from_dict(json.loads(json.dumps(built.to_dict())), function=_echo)
    assert again.json_schema() == built.json_schema()
    assert again.to_code_prompt() == built.to_code_prompt()
    assert again.to_dict() == built.to_dict()


def test_defs_and_nested_refs_are_inlined_and_validated() -> None:
    schema = {
        "type": "object",
        "properties": {"order": {"$ref": "#/$defs/Order"}},
        "required": ["order"],
        "$defs": {
            "Order": {
                "type": "object",
                "properties": {"items": {"type": "array", "items": {"$ref": "#/$defs/Item"}}},
            },
            "Item": {"type": "object", "properties": {"sku": {"type": "string"}, "qty": {"type": "integer"}}},
        },
    }
    built = Tool.from_schema("place_order", "Place an order.", schema, _echo)
    props = built.json_schema()["parameters"]["properties"]
    assert props["order"]["properties"]["items"]["items"]["properties"]["qty"] == {"type": "integer"}
    assert "$ref" not in json.dumps(built.json_schema())
    built.validate_arguments({"order": {"items": [{"sku": "a", "qty": 2}]}})
    with pytest.raises(
        AgentToolCallError,
        match=r"argument 'order\.items\[0\]\.qty': Input should be a valid integer, got 'two'",
    ):
        built.validate_arguments({"order": {"items": [{"sku": "a", "qty": "two"}]}})


def test_legacy_definitions_are_read_as_defs() -> None:
    schema = {
        "type": "object",
        "properties": {"p": {"$ref": "#/definitions/P"}},
        "definitions": {"P": {"type": "string", "enum": ["x", "y"]}},
    }
    built = Tool.from_schema("pick", "Pick.", schema, _echo)
    assert "p: Literal['x', 'y'] = ..." in built.to_code_prompt()
    with pytest.raises(AgentToolCallError, match="Input should be 'x' or 'y', got 'z'"):
        built.validate_arguments({"p": "z"})


def test_an_undefined_ref_is_a_definition_error() -> None:
    with pytest.raises(ToolDefinitionError, match="does not define"):
        Tool.from_schema("t", "T.", {"type": "object", "properties": {"a": {"$ref": "#/$defs/Nope"}}}, _echo)


def _shape(key: str) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {"type": "number"}}, "required": [key]}


def test_any_of_and_one_of() -> None:
    schema = {
        "type": "object",
        "properties": {
            "id": {"anyOf": [{"type": "integer"}, {"type": "string"}]},
            "shape": {"oneOf": [_shape("r"), _shape("side")]},
        },
        "required": ["id", "shape"],
    }
    built = Tool.from_schema("lookup", "Look up.", schema, _echo)
    assert "id: int | str" in built.to_code_prompt()
    built.validate_arguments({"id": "x1", "shape": {"r": 1}})
    with pytest.raises(AgentToolCallError, match=r"argument 'id': expected int \| str, got \[1\]"):
        built.validate_arguments({"id": [1], "shape": {"r": 1}})
    with pytest.raises(AgentToolCallError, match="argument 'shape'"):
        built.validate_arguments({"id": 1, "shape": {"r": 1, "side": 2}})  # matches both: not oneOf


@pytest.mark.parametrize(
    "prop",
    [
        {"type": "string", "nullable": True},
        {"type": ["string", "null"]},
        {"anyOf": [{"type": "string"}, {"type": "null"}]},
    ],
    ids=["nullable", "type-list", "anyOf"],
)
def test_null_able_forms(prop: dict[str, Any]) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {**prop, "description": "A city."}},
        "required": ["city"],
    }
    built = Tool.from_schema("where", "Where.", schema, _echo)
    assert "def where(city: str | None) -> Any:" in built.to_code_prompt()
    assert built(None) == {"city": None}
    assert built.inputs["city"]["nullable"] is True
    with pytest.raises(TypeError, match="argument 'city'"):
        built(3)


def test_enums() -> None:
    schema = {
        "type": "object",
        "properties": {"unit": {"type": "string", "enum": ["c", "f"], "description": "Unit."}},
    }
    built = Tool.from_schema("temp", "Temperature.", schema, _echo)
    assert "unit: Literal['c', 'f'] = ..." in built.to_code_prompt()
    assert built.inputs["unit"]["enum"] == ["c", "f"]
    with pytest.raises(AgentToolCallError, match="argument 'unit': Input should be 'c' or 'f', got 'k'"):
        built.validate_arguments({"unit": "k"})


def test_nested_objects_and_arrays_of_objects() -> None:
    schema = {
        "type": "object",
        "properties": {
            "user": {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                     "required": ["name"]},
            "tags": {"type": "array", "items": {"type": "object", "properties": {"k": {"type": "string"}},
                                                "required": ["k"]}},
        },
        "required": ["user"],
    }  # fmt: skip
    built = Tool.from_schema("save", "Save.", schema, _echo)
    assert "Keys: name: str, age: int = ..." in built.to_code_prompt()
    assert built(user={"name": "a"}, tags=[{"k": "x"}]) == {"user": {"name": "a"}, "tags": [{"k": "x"}]}
    with pytest.raises(TypeError, match=r"'user\.name' is required"):
        built(user={"age": 3})
    with pytest.raises(TypeError, match=r"'tags\[1\]\.k' is required"):
        built(user={"name": "a"}, tags=[{"k": "x"}, {}])


@pytest.mark.parametrize(
    ("extra", "good", "bad"),
    [(True, {"a": [1]}, None), (False, {}, {"a": 1}), ({"type": "integer"}, {"a": 1}, {"a": "1"})],
    ids=["true", "false", "schema"],
)
def test_additional_properties(extra: Any, good: dict[str, Any], bad: dict[str, Any] | None) -> None:
    prop = {"type": "object", "properties": {}, "additionalProperties": extra, "description": "Headers."}
    built = Tool.from_schema("send", "Send.", {"type": "object", "properties": {"headers": prop}}, _echo)
    assert built(headers=good) == {"headers": good}
    if bad is not None:
        with pytest.raises(TypeError, match="argument 'headers"):
            built(headers=bad)
    if isinstance(extra, dict):
        assert "headers: dict[str, int] = ..." in built.to_code_prompt()


def test_top_level_extra_arguments_are_rejected() -> None:
    built = Tool.from_schema("t", "T.", {"type": "object", "properties": {"a": {"type": "string"}}}, _echo)
    assert built.json_schema()["parameters"]["additionalProperties"] is False
    with pytest.raises(AgentToolCallError, match="unexpected argument 'b'"):
        built.validate_arguments({"b": 1})


def test_defaults_are_applied_and_unset_optionals_left_out() -> None:
    schema = {
        "type": "object",
        "properties": {"q": {"type": "string"}, "limit": {"type": "integer", "default": 10},
                       "filters": {"type": "array", "items": {"type": "string"}, "default": []},
                       "lang": {"type": "string"}},
        "required": ["q"],
    }  # fmt: skip
    built = Tool.from_schema("search", "Search.", schema, _echo)
    first = built("x")
    assert first == {"q": "x", "limit": 10, "filters": []}
    first["filters"].append("mutated")
    assert built("x")["filters"] == []  # each call gets its own copy of the default
    assert (
        "def search(q: str, limit: int = 10, filters: list[str] = [], lang: str = ...) -> Any:"
        in built.to_code_prompt()
    )


def test_required_arguments_come_first_and_missing_ones_are_reported() -> None:
    schema = {
        "type": "object",
        "properties": {"opt": {"type": "integer"}, "req": {"type": "string"}},
        "required": ["req"],
    }
    built = Tool.from_schema("t", "T.", schema, _echo)
    assert "def t(req: str, opt: int = ...)" in built.to_code_prompt()
    with pytest.raises(AgentToolCallError, match="missing required argument 'req'"):
        built.validate_arguments({"opt": 1})


def test_descriptions_only_on_properties_and_none_at_the_top() -> None:
    schema = {"properties": {"x": {"type": "number", "description": "The x."}}, "required": ["x"]}
    built = Tool.from_schema("f", None, schema, _echo)
    assert built.description == "Calls the tool f."
    assert "x: The x." in built.to_code_prompt()
    ast.parse(built.to_code_prompt())
    described = Tool.from_schema("g", "", {**schema, "description": "Computes g."}, _echo)
    assert described.description == "Computes g."
    assert "description" not in described.json_schema()["parameters"]


def test_bfcl_type_names() -> None:
    properties = {
        "m": {"type": "float", "description": "Mass."},
        "t": {"type": "tuple", "items": {"type": "integer"}},
    }
    schema = {"type": "dict", "properties": properties}
    built = Tool.from_schema("f", "F.", schema, _echo)
    params = built.json_schema()["parameters"]
    assert params["type"] == "object"
    assert params["properties"]["m"]["type"] == "number"
    assert "t: list[int] = ..." in built.to_code_prompt()


def test_tool_names_that_are_not_identifiers() -> None:
    names = ["math.factorial", "get-weather", "get_weather", "2fa", "class"]
    assert code_names(names) == {
        "math.factorial": "math_factorial", "get-weather": "get_weather_2", "get_weather": "get_weather",
        "2fa": "_2fa", "class": "class_",
    }  # fmt: skip
    seen: list[str] = []
    for name in names:
        built = Tool.from_schema(
            name, "N.", {"type": "object", "properties": {}}, _echo, code_name=code_names(names)[name]
        )
        assert built.json_schema()["name"] == built.wire_name == name
        assert built.to_dict()["name"] == name
        ast.parse(built.to_code_prompt())
        seen.append(built.name)
    assert len(set(seen)) == len(names)
    assert Tool.from_schema("math.factorial", "F.", {"properties": {}}, _echo).name == "math_factorial"


def test_argument_names_that_are_not_identifiers() -> None:
    received: list[dict[str, Any]] = []
    schema = {
        "type": "object",
        "properties": {
            "from": {"type": "string"},
            "type-id": {"type": "integer"},
            "type_id": {"type": "integer"},
        },
        "required": ["from", "type-id"],
    }
    built = Tool.from_schema("convert", "Convert.", schema, lambda **kw: received.append(kw))
    stub = built.to_code_prompt()
    ast.parse(stub)
    assert "def convert(from_: str, type_id_2: int, type_id: int = ...)" in stub
    built(from_="a", type_id_2=1)
    asyncio.run(built.acall({"from": "b", "type-id": 2, "type_id": 3}))
    assert received == [{"from": "a", "type-id": 1}, {"from": "b", "type-id": 2, "type_id": 3}]
    assert set(built.json_schema()["parameters"]["properties"]) == {"from", "type-id", "type_id"}
    with pytest.raises(AgentToolCallError, match="argument 'type_id_2': Input should be a valid integer"):
        built.validate_arguments({"from": "b", "type-id": "x"})


def test_async_functions() -> None:
    async def lookup(**kwargs: Any) -> str:
        await asyncio.sleep(0)
        return f"found {kwargs['q']}"

    built = Tool.from_schema(
        "lookup", "L.", {"type": "object", "properties": {"q": {"type": "string"}}}, lookup
    )
    assert asyncio.run(built.acall({"q": "x"})) == "found x"
    assert built(q="y") == "found y"
    assert asyncio.run(built.as_host_function()(q="z")) == "found z"


def test_output_schema() -> None:
    out = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    built = Tool.from_schema("count", "Count.", {"properties": {}}, lambda: {"n": 1}, out)
    assert built.output_type == "object"
    assert built.output_schema == out
    assert built.to_code_prompt().startswith("def count() -> dict:")


def test_invalid_schemas_are_definition_errors() -> None:
    with pytest.raises(ToolDefinitionError, match="not a valid JSON schema"):
        Tool.from_schema("t", "T.", {"type": "object", "properties": {"a": {"type": "strin"}}}, _echo)
    with pytest.raises(ToolDefinitionError, match="must describe an object"):
        Tool.from_schema("t", "T.", {"type": "string"}, _echo)
    with pytest.raises(ToolDefinitionError, match="requires 'b'"):
        Tool.from_schema("t", "T.", {"properties": {"a": {}}, "required": ["b"]}, _echo)


@tool
def scale(value: float, factor: float = 2.0) -> float:
    """Multiply a value.

    Args:
        value: The value.
        factor: By how much.
    """
    return value * factor


def test_a_tool_function_round_trips_with_its_source() -> None:
    data = scale.to_dict()
    assert data["name"] == "scale" and "def scale" in data["code"]
    assert data["input_schema"] == scale.json_schema()["parameters"]
    with pytest.raises(ToolDefinitionError, match="trust_remote_code=True"):
        Tool.from_dict(data)
    rebuilt = Tool.from_dict(data, trust_remote_code=True)
    assert rebuilt(3) == 6.0
    assert rebuilt.to_code_prompt() == scale.to_code_prompt()
    wrapped = Tool.from_dict(data, function=lambda **kw: kw["value"] * 10)
    assert isinstance(wrapped, SchemaTool)
    assert wrapped(value=1.5) == 15.0
    assert wrapped.json_schema() == scale.json_schema()


def test_a_dict_without_code_needs_a_function() -> None:
    data = Tool.from_schema("t", "T.", {"properties": {}}, _echo).to_dict()
    with pytest.raises(ToolDefinitionError, match="function="):
        Tool.from_dict(data)
    with pytest.raises(ToolDefinitionError, match="Not a tool's dict"):
        Tool.from_dict({"name": "t"}, function=_echo)


def test_a_tool_calling_agent_finds_a_schema_tool_by_its_wire_name() -> None:
    from codeloop import ScriptedModel, ToolCallingAgent

    call = ScriptedModel.call
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    factorial = Tool.from_schema("math.factorial", "Factorial of n.", schema, lambda n: math.factorial(n))
    model = ScriptedModel([[call("math.factorial", n=5)], [call("final_answer", answer="done")]])
    agent = ToolCallingAgent([factorial], model)
    assert agent.run("factorial of 5") == "done"
    first = agent.memory.action_steps()[0].tool_results[0]
    assert first.content == "120" and not first.is_error


def test_a_wire_name_providers_refuse_is_sent_under_its_python_name() -> None:
    from codeloop import ScriptedModel, ToolCallingAgent

    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    dotted = Tool.from_schema("math.factorial", "Factorial of n.", schema, lambda n: math.factorial(n))
    dashed = Tool.from_schema("get-weather", "Weather.", schema, lambda n: "sunny")
    agent = ToolCallingAgent([dotted, dashed], ScriptedModel([]))
    names = {t["name"] for t in agent._tool_schemas()}  # what the provider is sent
    assert names == {"math_factorial", "get-weather", "final_answer"}
