"""Agents as data and as folders: `agent.to_dict()` / `MultiStepAgent.from_dict(d)` and
`agent.save(folder)` / `CodeAgent.from_folder(folder)`. No pickle: JSON and Python source.

The dict (JSON-compatible) uses smolagents' agent.json keys where the concept is the same:

* `format_version` (this codeloop writes 1 and refuses newer ones), `class` (`CodeAgent`...);
* `name`, `description`, `instructions`, `max_steps`, `planning_interval`, `verbosity_level`,
  `stream_outputs`, `return_full_result`, `prompt_templates` (all of them, defaults included);
* `output_type`: the answer's JSON schema, or null. Loaded, the answer is checked against the
  schema and is plain JSON data (a pydantic `output_type` does not come back as the class);
* `model`: `{"class", "data"}`, the model's non-secret settings (see `saved_model`);
* `tools`: `Tool.to_dict()` of each tool (`final_answer` and managed agents left out); its `code`
  is a `@tool` function's or a `Tool` subclass's source;
* `managed_agents`: the managed agents' dicts, nested;
* `context_policy`: the built-in context policy and its settings (`{"class": "RecentWindow",
  "recent_steps": 3, ...}` or `{"class": "FullHistory"}`, see `codeloop.context`); left out, with
  a warning, for a policy of your own (pass it again when loading). Without it (a dict saved by
  an older codeloop) the agent gets the default policy;
* `requirements`: `codeloop` and the modules the tools' code imports (best effort: a module's
  name, which is not always its package's);
* a `CodeAgent`'s `authorized_imports`, `executor_type` (codeloop's executor name; null when
  an `Executor` instance or factory was given: the default executor is used unless you pass
  `executor=`), `max_repeats`, `plain_answer_at_last_step`, `check_invented_data`,
  `check_handed_back_code`, and `executor_kwargs` / `executor_limits` when the agent has them.

Not saved (they are code or objects: pass them again as keyword overrides when loading): step
callbacks, event handlers, guards, `final_answer_checks`, `retry_policy`, memory.

Loading: tools that carry code rebuild by running that code in this process, so it needs
`trust_remote_code=True` (else `UntrustedCodeError`, which says why and how), unless `tools=`
gives your own tool of that name. A tool saved without code (built from a schema: an MCP
server's tool) comes back with its schema and refuses to run, saying so; pass the real tool
with `tools=` (tools given by name replace saved ones, the others are added). `model=` is a
model for every agent of the tree, or a dict of models by agent name; the agents it does not
cover get their saved model rebuilt (`saved_model.model_from_dict`). Other keyword overrides go
to the top agent's constructor (`managed_agents=` replaces the saved ones).

A folder (`save`) holds:

    agent.json            the dict, with each tool's code replaced by "code_file" and
                          "managed_agents" as {name: class}, smolagents' form
    tools/<name>.py       the source of each tool that has some
    managed_agents/<name>/  each managed agent, in this same layout
    requirements.txt      `requirements`, one a line
"""

from __future__ import annotations

import ast
import dataclasses
import json
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..context import policy_from_dict, policy_to_dict
from ..errors import ConfigurationError
from ..models.base import Model
from ..tools import Tool, tool
from .saved_model import is_json, model_from_dict, model_to_dict

if TYPE_CHECKING:
    from .base import MultiStepAgent

__all__ = [
    "FORMAT_VERSION",
    "AgentLoadError",
    "UntrustedCodeError",
    "agent_from_dict",
    "agent_from_folder",
    "agent_to_dict",
    "save_agent",
]

FORMAT_VERSION = 1
ModelChoice = Model | Mapping[str, Model] | None


class AgentLoadError(ConfigurationError):
    """A saved agent that cannot be loaded: no such folder, bad JSON, a newer format..."""


class UntrustedCodeError(AgentLoadError):
    """Loading would run the saved tools' Python code, and `trust_remote_code` was not given."""


_COMMON = ("name", "description", "instructions", "max_steps", "planning_interval",
           "stream_outputs", "return_full_result")  # fmt: skip
_CODE_AGENT = {  # agent.json key -> (CodeAgent attribute, constructor argument)
    "authorized_imports": ("additional_authorized_imports", "additional_authorized_imports"),
    "executor_type": ("executor_type", "executor"),
    "executor_kwargs": ("executor_kwargs", "executor_kwargs"),
    "max_repeats": ("max_repeats", "max_repeats"),
    "plain_answer_at_last_step": ("plain_answer_at_last_step", "plain_answer_at_last_step"),
    "check_invented_data": ("check_invented_data", "check_invented_data"),
    "check_handed_back_code": ("check_handed_back_code", "check_handed_back_code"),
}


# ---- to a dict ------------------------------------------------------------------------------


def agent_to_dict(agent: MultiStepAgent) -> dict[str, Any]:
    tools = [t.to_dict() for n, t in agent.tools.items() if n not in agent.managed_agents]
    managed = [agent_to_dict(a) for a in agent.managed_agents.values()]
    spec = agent.output_spec
    data: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "class": type(agent).__name__,
        **{key: getattr(agent, key) for key in _COMMON},
        "verbosity_level": _verbosity(agent),
        "output_type": None if spec is None else spec.json_schema,
        "model": model_to_dict(agent.model),
        "tools": tools,
        "managed_agents": managed,
        "prompt_templates": json.loads(json.dumps(agent.prompt_templates)),
        "requirements": _requirements(tools, managed),
    }
    policy = policy_to_dict(agent.context_policy, where=f"Agent {agent.name!r}")
    if policy is not None:
        data["context_policy"] = policy
    data.update(_code_agent_settings(agent))
    return data


def _verbosity(agent: MultiStepAgent) -> int:
    levels = [getattr(h, "verbosity_level", None) for h in agent.event_handlers]
    return max([level for level in levels if isinstance(level, int)], default=0)


def _code_agent_settings(agent: MultiStepAgent) -> dict[str, Any]:
    from .code import CodeAgent

    if not isinstance(agent, CodeAgent):
        return {}
    found = {key: getattr(agent, attr) for key, (attr, _) in _CODE_AGENT.items() if hasattr(agent, attr)}
    limits = getattr(agent, "executor_limits", None)
    if dataclasses.is_dataclass(limits) and not isinstance(limits, type):
        found["executor_limits"] = dataclasses.asdict(limits)
    if found.get("executor_type") is None:  # an Executor instance or factory: its options are its own
        found.pop("executor_kwargs", None)
    for key in [k for k, v in found.items() if not is_json(v)]:
        warnings.warn(f"Agent {agent.name!r}: its {key} is not JSON data and is not saved.", stacklevel=3)
        del found[key]
    return found


def _requirements(tools: Sequence[Mapping[str, Any]], managed: Sequence[Mapping[str, Any]]) -> list[str]:
    """`codeloop` and the top-level modules the tools' code imports, standard library left out."""
    found: set[str] = set()
    for data in tools:
        found |= _imported_modules(data.get("code") or "")
    for sub in managed:
        found |= set(sub.get("requirements", ()))
    found -= {"codeloop"}
    return ["codeloop", *sorted(m for m in found if m not in sys.stdlib_module_names)]


def _imported_modules(code: str) -> set[str]:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


# ---- from a dict ----------------------------------------------------------------------------


def agent_from_dict(
    cls: type[MultiStepAgent],
    data: Mapping[str, Any],
    *,
    model: ModelChoice = None,
    trust_remote_code: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> MultiStepAgent:
    """The agent `data` describes, built by `cls` (or by the class it names, for
    `MultiStepAgent.from_dict`)."""
    _check_version(data, "the dict")
    given_tools = _given_tools((overrides or {}).get("tools", ()))
    if not trust_remote_code:
        _refuse_code(data, set(given_tools), replaces_managed="managed_agents" in (overrides or {}))
    return _build(cls, data, model, dict(overrides or {}), given_tools)


def _build(
    cls: type[MultiStepAgent],
    data: Mapping[str, Any],
    model: ModelChoice,
    overrides: dict[str, Any],
    given_tools: dict[str, Tool],
) -> MultiStepAgent:
    _check_version(data, f"agent {data.get('name')!r}")
    chosen = _agent_class(cls, data.get("class"))
    name = str(data.get("name") or chosen.__name__)
    if "managed_agents" not in overrides:
        subs = [_build(_base_class(), sub, model, {}, {}) for sub in _list(data, "managed_agents")]
        overrides["managed_agents"] = subs
    if "model" not in overrides:
        overrides["model"] = _model_for(name, data.get("model"), model)
    overrides["tools"] = _tools(_list(data, "tools"), given_tools)
    settings = {key: data[key] for key in (*_COMMON, "verbosity_level", "output_type", "prompt_templates")
                if key in data}  # fmt: skip
    if data.get("context_policy") is not None:
        settings["context_policy"] = _policy(name, data["context_policy"])
    if _is_code_agent(chosen):
        settings.update({kwarg: data[key] for key, (_, kwarg) in _CODE_AGENT.items() if key in data})
        settings.update(_limits(data))
        if settings.get("executor") is None:
            settings.pop("executor", None)
    try:
        return chosen(**{**settings, **overrides})
    except TypeError as exc:
        raise AgentLoadError(f"Agent {name!r}: its settings do not fit {chosen.__name__} ({exc}).") from exc


def _policy(name: str, saved: Any) -> Any:
    try:
        return policy_from_dict(saved)
    except ConfigurationError as exc:
        raise AgentLoadError(f"Agent {name!r}: {exc}") from exc


def _check_version(data: Mapping[str, Any], where: str) -> None:
    if not isinstance(data, Mapping):
        raise AgentLoadError(f"{where} is not a saved agent: a dict (JSON object) was expected.")
    version = data.get("format_version")
    if not isinstance(version, int):
        raise AgentLoadError(
            f"{where} is not a saved codeloop agent: it has no integer 'format_version' "
            "(make one with agent.to_dict() or agent.save(folder))."
        )
    if version > FORMAT_VERSION:
        raise AgentLoadError(
            f"{where} was saved in format {version}, by a newer codeloop; this one reads formats up "
            f"to {FORMAT_VERSION}. Upgrade codeloop (pip install -U codeloop) to load it."
        )


def _base_class() -> type[MultiStepAgent]:
    from .base import MultiStepAgent

    return MultiStepAgent


def _known_classes() -> dict[str, type[MultiStepAgent]]:
    from .code import CodeAgent
    from .tool_calling import ToolCallingAgent

    return {"CodeAgent": CodeAgent, "ToolCallingAgent": ToolCallingAgent}


def _agent_class(cls: type[MultiStepAgent], saved: Any) -> type[MultiStepAgent]:
    """`cls` if it is the class the data names; the named class for `MultiStepAgent.from_dict`."""
    if saved == cls.__name__:
        return cls
    known = _known_classes()
    if cls is _base_class() and saved in known:
        return known[saved]
    loader = f"{saved}.from_dict / from_folder" if isinstance(saved, str) else "the class it was saved from"
    raise AgentLoadError(
        f"This agent was saved from a {saved!r}, not a {cls.__name__}: load it with {loader}, or with "
        f"MultiStepAgent.from_dict / from_folder, which picks the class ({', '.join(known)})."
    )


def _is_code_agent(cls: type[MultiStepAgent]) -> bool:
    from .code import CodeAgent

    return issubclass(cls, CodeAgent)


def _limits(data: Mapping[str, Any]) -> dict[str, Any]:
    saved = data.get("executor_limits")
    if not isinstance(saved, dict):
        return {}
    from ..executors.base import ExecutorLimits

    try:
        return {"executor_limits": ExecutorLimits(**saved)}
    except TypeError as exc:
        raise AgentLoadError(f"Agent {data.get('name')!r}: its executor_limits do not fit ({exc}).") from exc


def _list(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    items = data.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, Mapping) for i in items):
        raise AgentLoadError(f"Agent {data.get('name')!r}: its {key!r} must be a list of dicts.")
    return items


def _model_for(name: str, saved: Any, given: ModelChoice) -> Model:
    chosen = given.get(name) if isinstance(given, Mapping) else given
    if chosen is not None:
        return chosen
    if not isinstance(saved, Mapping):
        raise AgentLoadError(f"Agent {name!r} was saved without a model: pass model= when loading.")
    return model_from_dict(saved, name)


def _given_tools(tools: Sequence[Tool | Callable[..., Any]]) -> dict[str, Tool]:
    built = [t if isinstance(t, Tool) else tool(t) for t in tools]
    return {name: t for t in built for name in {t.name, t.wire_name}}


def _tools(saved: list[Mapping[str, Any]], given: dict[str, Tool]) -> list[Tool]:
    """The saved tools, those `given` by name replacing them, then the other given tools."""
    loaded = [_replacing(given[d["name"]], d) if d.get("name") in given else _tool(d) for d in saved]
    seen = {id(t) for t in loaded}
    return [*loaded, *{id(t): t for t in given.values() if id(t) not in seen}.values()]


def _replacing(given: Tool, saved: Mapping[str, Any]) -> Tool:
    """`given`, in place of the saved tool of its name; a warning if that one needed approval and
    `given` does not (the tool is used as given: pass `requires_approval=True` to keep asking)."""
    if saved.get("requires_approval") and not given.requires_approval:
        warnings.warn(
            f"Tool {given.name!r} was saved with requires_approval=True, but the tool passed in its "
            "place does not require approval: its calls will run without asking. Define it with "
            "requires_approval=True to keep asking.",
            stacklevel=5,
        )
    return given


def _tool(data: Mapping[str, Any]) -> Tool:
    if data.get("code") is not None:
        return Tool.from_dict(data, trust_remote_code=True)  # the caller checked the trust
    name = str(data.get("name"))
    warnings.warn(
        f"Tool {name!r} was saved without code (built from a schema, e.g. an MCP server's tool): it "
        "is loaded with its schema and refuses to run. Pass the real tool: tools=[...].",
        stacklevel=4,
    )
    return Tool.from_dict(data, function=_unavailable(name))


def _unavailable(name: str) -> Callable[..., Any]:
    def unavailable(**_: Any) -> Any:
        raise ConfigurationError(
            f"Tool {name!r} was loaded without its implementation (it was saved from a schema, "
            "e.g. an MCP server's tool): pass the real tool when loading, tools=[...]."
        )

    return unavailable


def _refuse_code(data: Mapping[str, Any], given: set[str], *, replaces_managed: bool) -> None:
    """`UntrustedCodeError` when building the agent would run code from `data`."""
    found = _code_carriers(data, given, replaces_managed=replaces_managed)
    if not found:
        return
    raise UntrustedCodeError(
        f"Loading this agent would run the Python source of its tools ({', '.join(found)}) in this "
        "process, with your permissions: that code can do anything you can. Read it first; if you "
        "trust it, pass trust_remote_code=True. Or pass your own implementations: tools=[...]."
    )


def _code_carriers(data: Mapping[str, Any], given: set[str], *, replaces_managed: bool) -> list[str]:
    """Where the tools that carry code are (their file when loaded from a folder), at any depth."""
    found = [
        str(d.get("code_file") or d.get("name"))
        for d in _list(data, "tools")
        if d.get("code") is not None and not {d.get("name"), d.get("code_name")} & given
    ]
    if not replaces_managed:
        for sub in _list(data, "managed_agents"):
            found += _code_carriers(sub, set(), replaces_managed=False)
    return found


# ---- folders --------------------------------------------------------------------------------


def save_agent(agent: MultiStepAgent, folder: str | Path) -> Path:
    """Write `agent` into `folder` (created if needed; files of the same names are replaced)."""
    return _write(agent_to_dict(agent), Path(folder))


def _write(data: dict[str, Any], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    tools = []
    for entry in data["tools"]:
        entry = dict(entry)
        code = entry.pop("code", None)
        if code is not None:
            relative = f"tools/{_file_name(entry)}.py"
            (folder / "tools").mkdir(exist_ok=True)
            (folder / relative).write_text(code, encoding="utf-8")
            entry["code_file"] = relative
        tools.append(entry)
    managed: dict[str, str] = {}
    for sub in data["managed_agents"]:
        _write(sub, folder / "managed_agents" / _checked_name(sub.get("name")))
        managed[str(sub["name"])] = str(sub["class"])
    shown = {**data, "tools": tools, "managed_agents": managed}
    text = json.dumps(shown, indent=2, ensure_ascii=False) + "\n"
    (folder / "agent.json").write_text(text, encoding="utf-8")
    (folder / "requirements.txt").write_text("\n".join(data["requirements"]) + "\n", encoding="utf-8")
    return folder


def _file_name(entry: Mapping[str, Any]) -> str:
    return _checked_name(entry.get("code_name") or entry.get("name"))


def _checked_name(name: Any) -> str:
    """A tool's or agent's name as a file or folder name: a Python identifier, so never a path."""
    if not isinstance(name, str) or not name.isidentifier():
        raise AgentLoadError(f"{name!r} is not a Python identifier, so it cannot name a saved file.")
    return name


def agent_from_folder(
    cls: type[MultiStepAgent],
    folder: str | Path,
    *,
    model: ModelChoice = None,
    trust_remote_code: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> MultiStepAgent:
    """The agent saved in `folder` by `save_agent`."""
    data = _read(Path(folder))
    return agent_from_dict(cls, data, model=model, trust_remote_code=trust_remote_code, overrides=overrides)


def _read(folder: Path) -> dict[str, Any]:
    """The agent's dict from its folder: tools' code read back in, managed agents nested."""
    if not folder.is_dir():
        raise AgentLoadError(f"No saved agent at {folder}: that folder does not exist.")
    path = folder / "agent.json"
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AgentLoadError(f"{folder} holds no agent.json: agent.save() did not write it.") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise AgentLoadError(f"{path} is not valid JSON ({where}: {exc.msg}).") from None
    _check_version(data, str(path))
    data = dict(data)
    data["tools"] = [_with_code(folder, entry) for entry in _list(data, "tools")]
    managed = data.get("managed_agents") or {}
    if not isinstance(managed, dict):
        raise AgentLoadError(f"{path}: 'managed_agents' must map each managed agent's name to its class.")
    data["managed_agents"] = [_read(folder / "managed_agents" / _checked_name(name)) for name in managed]
    return data


def _with_code(folder: Path, entry: Mapping[str, Any]) -> dict[str, Any]:
    entry = dict(entry)
    relative = entry.get("code_file")
    if relative is None:
        return entry
    path = (folder / str(relative)).resolve()
    if not path.is_relative_to(folder.resolve()):
        raise AgentLoadError(f"Tool {entry.get('name')!r}: its code_file {relative!r} is outside {folder}.")
    try:
        entry["code"] = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AgentLoadError(f"Tool {entry.get('name')!r}: its code file {path} is missing.") from None
    entry["code_file"] = str(path)
    return entry
