"""The few places where the ``mcp`` SDK's majors differ, behind one interface.

memtrace declares ``mcp>=1.23,<3``. On 1.x the high-level server is
``mcp.server.fastmcp.FastMCP``; 2.0 renamed it ``mcp.server.mcpserver.MCPServer`` (same
decorators and ``add_tool``) and moved the streamable-HTTP settings from the constructor to
``streamable_http_app(...)``. Everything else memtrace uses (``mcp.types``, ``ToolError``,
``Context.request_context.request``, ``TransportSecuritySettings``) has the same name on both.

Why 1.23 is the floor: 1.19 is the first release where a tool may return a ``CallToolResult``
(our compact text beside ``structuredContent``); 1.19–1.21 fail to import with pydantic ≥ 2.14;
1.22 answers requests with a foreign ``Host`` header (no DNS-rebinding protection by default).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # type-checked against 2.x
    from mcp.server.mcpserver import Context
    from mcp.server.mcpserver import MCPServer as _Server
    from mcp.server.mcpserver.exceptions import ToolError

    MCP_V2 = True
else:
    try:  # mcp 2.x
        from mcp.server.mcpserver import Context
        from mcp.server.mcpserver import MCPServer as _Server
        from mcp.server.mcpserver.exceptions import ToolError

        MCP_V2 = True
    except ImportError:  # mcp 1.x (2.3 keeps mcp.server.fastmcp only to raise ImportError)
        import warnings

        with warnings.catch_warnings():
            # pydantic-settings warns about FastMCP's settings model on every start (stderr,
            # so into the MCP client's log): nothing a user can act on
            warnings.filterwarnings("ignore", message=r"Field .* has an incomplete definition")
            from mcp.server.fastmcp import Context
            from mcp.server.fastmcp import FastMCP as _Server
            from mcp.server.fastmcp.exceptions import ToolError

        MCP_V2 = False

from mcp.server.transport_security import TransportSecuritySettings
from mcp.types import CallToolResult, TextContent

__all__ = [
    "MCP_V2",
    "CallToolResult",
    "Context",
    "ToolError",
    "http_app",
    "make_server",
    "mcp_version",
    "request_error",
    "request_state",
    "set_required",
    "text_result",
]


def mcp_version() -> str:
    """The installed ``mcp`` distribution's version."""
    try:
        return version("mcp")
    except PackageNotFoundError:  # pragma: no cover - mcp imported but not installed as a dist
        return "unknown"


def make_server(name: str, *, instructions: str, server_version: str) -> Any:
    """The high-level server object (``FastMCP`` / ``MCPServer``), logging at WARNING (the
    SDK's INFO lines would go to stderr on every request)."""
    if MCP_V2:
        return _Server(name, instructions=instructions, version=server_version, log_level="WARNING")
    import warnings

    with warnings.catch_warnings():  # see the import above
        warnings.filterwarnings("ignore", message=r"Field .* has an incomplete definition")
        server: Any = cast(Any, _Server)(name, instructions=instructions, log_level="WARNING")
    server._mcp_server.version = server_version  # 1.x: initialize reports the low-level one's
    return server


def http_app(server: Any, *, allowed_hosts: list[str]) -> Any:
    """The Starlette app for streamable HTTP at ``/mcp``: stateless (every POST stands alone,
    no ``Mcp-Session-Id`` to hijack), JSON responses, and DNS-rebinding protection for
    ``allowed_hosts`` (``host:port`` patterns, ``*`` for any port)."""
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=allowed_hosts,
        allowed_origins=[f"http://{h}" for h in allowed_hosts]
        + [f"https://{h}" for h in allowed_hosts],
    )
    if MCP_V2:
        return server.streamable_http_app(
            stateless_http=True, json_response=True, transport_security=security
        )
    server.settings.stateless_http = True
    server.settings.json_response = True
    server.settings.transport_security = security
    return server.streamable_http_app()


def request_state(ctx: Any, key: str) -> Any:
    """What the ASGI middleware put in ``scope["state"][key]`` for the HTTP request that
    carried this message; None on stdio (there is no request)."""
    request = getattr(ctx.request_context, "request", None)
    scope = getattr(request, "scope", None) or {}
    return (scope.get("state") or {}).get(key)


def set_required(server: Any, tool: str, required: list[str]) -> None:
    """Advertise ``required`` as the tool's required arguments, and refuse arguments the tool
    does not have.

    The tool's Python parameters are all optional, so that a missing one reaches memtrace's
    own check and message instead of the SDK's pydantic error; the schema clients see must
    still say what is required. The SDK's argument model drops unknown arguments, which would
    turn ``memtrace_forget(agent_id=…, content_contains=…)`` into a delete of all the agent's
    memories: the model is swapped for a subclass that keeps them and hands them to the tool
    function, which refuses them in memtrace's words (and the schema says
    ``additionalProperties: false``). The tool manager, the argument model and its
    ``model_dump_one_level`` are the same private names on 1.23 … 2.3; tests cover both."""
    registered = server._tool_manager.get_tool(tool)
    if registered is None:  # pragma: no cover - add_tool just registered it
        raise RuntimeError(f"tool {tool} is not registered")
    schema = registered.parameters
    if required:
        schema["required"] = list(required)
    else:
        schema.pop("required", None)
    schema["additionalProperties"] = False
    base = registered.fn_metadata.arg_model

    def model_dump_one_level(self: Any) -> dict[str, Any]:
        return {**base.model_dump_one_level(self), **(self.__pydantic_extra__ or {})}

    registered.fn_metadata.arg_model = type(
        base.__name__,
        (base,),
        {
            "model_config": {**base.model_config, "extra": "allow"},
            "__module__": base.__module__,
            "model_dump_one_level": model_dump_one_level,
        },
    )


def request_error(message: str, *, invalid_params: bool = False) -> Exception:
    """The exception a resource or prompt function raises so that the client receives a
    JSON-RPC error with ``message`` (2.x hides the message of any other exception)."""
    if MCP_V2:
        from mcp.shared.exceptions import MCPError

        return MCPError(-32602 if invalid_params else -32603, message)
    return ValueError(message)  # 1.x puts str(exc) into the error it sends


def text_result(text: str, structured: dict[str, Any] | None = None) -> Any:
    """A tool result: ``text`` for the model, ``structured`` as ``structuredContent``."""
    return CallToolResult(
        content=[TextContent(type="text", text=text)], structuredContent=structured
    )
