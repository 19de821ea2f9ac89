"""`infercast` command line: what-if queries and listings. Other packages add commands through the
`infercast.commands` entry point group (validate, calibrate), keeping the core free of them."""

from __future__ import annotations

import os
import sys
from enum import Enum
from functools import lru_cache
from typing import Optional

import typer
from typer.exceptions import Abort, Exit, TyperException

from .closed_form import DEFAULT
from .errors import InfercastError
from .limits import MAX_BATCH, MAX_DEGREE, MAX_DEVICES, MAX_TOKENS
from .planner.cli import plan_command
from .serving.cli import simulate_command

app = typer.Typer(add_completion=False, help="infercast: LLM inference performance and cost, long context first.")
list_app = typer.Typer(add_completion=False, help="Show what ships: hardware and models.")
app.add_typer(list_app, name="list")


class Format(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


@app.command()
def whatif(
    model: str = typer.Option(DEFAULT["model"], help="Model ID (see `infercast list models`), a YAML file or a HF config.json."),
    hw: str = typer.Option(DEFAULT["hw"], help="Hardware ID (see `infercast list hw`), `local`, or a YAML file."),
    tp: int = typer.Option(1, help=f"Tensor-parallel degree (1 to {MAX_DEGREE:,}; devices tp x pp x cp up to {MAX_DEVICES:,})."),
    pp: int = typer.Option(1, help=f"Pipeline-parallel stages (1 to {MAX_DEGREE:,})."),
    cp: int = typer.Option(1, help=f"Context-parallel degree (ring attention prefill, KV sharded for decode; 1 to {MAX_DEGREE:,})."),
    cp_kind: Optional[str] = typer.Option(None, help="Context parallelism: ring (K/V passed under attention) or ulysses (all-to-all), with --cp above 1 [ring]."),
    ep: int = typer.Option(1, help="Expert-parallel degree inside the TP group (MoE models; divides --tp)."),
    ep_imbalance: float = typer.Option(1.0, help="Busiest expert-parallel rank's token load over the mean (1 to --ep)."),
    batch: int = typer.Option(1, help=f"Concurrent requests in the static batch (1 to {MAX_BATCH:,})."),
    input_len: int = typer.Option(DEFAULT["input_len"], help=f"Prompt tokens per request (1 to {MAX_TOKENS:,})."),
    output_len: int = typer.Option(DEFAULT["output_len"], help=f"Generated tokens per request (1 to {MAX_TOKENS:,})."),
    dtype: str = typer.Option("bf16", help="Weight dtype: fp32, bf16, fp16, fp8, int8, int4, fp4."),
    kv_dtype: Optional[str] = typer.Option(None, help="KV-cache dtype (default: as the weights; 16-bit for 4-bit weights)."),
    compute_dtype: Optional[str] = typer.Option(None, help="GEMM dtype (default: fp8/int8 weights run W8A8 where the device can)."),
    breakdown: bool = typer.Option(False, "--breakdown", help="Add the per-op table."),
    format: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
) -> None:
    """Predict TTFT, TPOT, E2E, throughput, memory and $/Mtoken for one configuration."""
    from .closed_form import whatif as run
    from .whatif_output import emit

    if cp_kind is not None and cp == 1:
        raise InfercastError(f"--cp-kind {cp_kind}: context parallelism needs --cp above 1 (got --cp 1)")
    res = run(model=model, hw=hw, tp=tp, pp=pp, cp=cp, ep=ep, ep_imbalance=ep_imbalance, cp_kind=cp_kind or "ring", batch=batch, input_len=input_len, output_len=output_len,
              dtype=dtype, kv_dtype=kv_dtype, compute_dtype=compute_dtype)
    emit(res, format.value, breakdown)


app.command("simulate")(simulate_command)
app.command("plan")(plan_command)


@list_app.command("hw")
def list_hw() -> None:
    """Hardware specs that ship (and `local`, this machine)."""
    from .listing import print_hardware

    print_hardware()


@list_app.command("models")
def list_models() -> None:
    """Model architectures that ship."""
    from .listing import print_models

    print_models()


_PLUGGED: set[str] = set()


def _plugins() -> None:
    """Add the commands of the `infercast.commands` entry points, once per process."""
    from importlib.metadata import entry_points

    for ep in entry_points(group="infercast.commands"):
        if ep.name not in _PLUGGED:
            app.add_typer(ep.load(), name=ep.name)
            _PLUGGED.add(ep.name)


def run(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code: bad input is one line on stderr and code 2, never a
    traceback; so is output that cannot be written (a full disk, a closed pipe) and a run too
    large for this machine's memory. Anything else is a bug: one line and code 1, the traceback
    with INFERCAST_DEBUG=1."""
    try:
        _plugins()
        _given_once(sys.argv[1:] if argv is None else argv)
        app(args=argv, standalone_mode=False)
        sys.stdout.flush()
    except InfercastError as exc:
        return _fail(f"error: {exc}", 2)
    except Exit as exc:
        return exc.exit_code
    except Abort:
        return _fail("aborted", 130)
    except TyperException as exc:
        return _fail(f"error: {exc.format_message()}", 2)
    except OSError as exc:
        if exc.filename is None:  # stdout itself: /dev/full, a closed pipe
            _silence_stdout()
            return _fail(f"error: cannot write the output ({exc.strerror or type(exc).__name__})", 2)
        return _fail(f"error: {exc.filename}: {exc.strerror or type(exc).__name__}", 2)
    except MemoryError:
        return _fail("error: out of memory: the run is larger than this machine holds; ask for fewer "
                     "requests, replicas or batch rows", 2)
    except Exception as exc:  # noqa: BLE001 - a bug, but still one line for the user
        if os.environ.get("INFERCAST_DEBUG"):
            raise
        first = (str(exc).splitlines() or [""])[0]
        return _fail(f"internal error: {type(exc).__name__}: {first} (a bug in infercast; INFERCAST_DEBUG=1 "
                     "shows the traceback)", 1)
    return 0


def _given_once(argv: list[str]) -> None:
    """No option is repeatable: one given twice (`--tp 1 --tp 2`, where the command line parser
    would keep the last without a word), or with its opposite (`--disagg --no-disagg`,
    `--points --summary`), is refused in one line."""
    seen: set[str] = set()
    opposite = _flag_opposites(frozenset(_PLUGGED)) if sum(t.startswith("--") for t in argv) > 1 else {}
    for token in argv:
        if token == "--":
            return
        name = token.split("=", 1)[0]
        if name.startswith("--") and len(name) > 2:
            if name in seen:
                raise InfercastError(f"{name}: given twice; give each option once")
            pair = opposite.get(name)
            if pair in seen:
                raise InfercastError(f"{name}: contradicts {pair} given before it; give one of the two")
            seen.add(name)


@lru_cache(maxsize=4)
def _flag_opposites(plugged: frozenset) -> dict[str, str]:
    """Each on/off flag's name -> its opposite's, over every command (`--x/--no-x`,
    `--points/--summary`); `plugged`, the plugin commands added so far, keys the cache."""
    out: dict[str, str] = {}
    stack = [typer.main.get_command(app)]
    while stack:
        cmd = stack.pop()
        stack.extend(getattr(cmd, "commands", {}).values())
        for p in cmd.params:
            if getattr(p, "is_flag", False) and getattr(p, "secondary_opts", None):
                for on in p.opts:
                    for off in p.secondary_opts:
                        out[on], out[off] = off, on
    return out


def _fail(line: str, code: int) -> int:
    try:
        print(line, file=sys.stderr)
    except OSError:
        pass
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's flush at exit has nothing left to fail on."""
    try:
        sys.stdout = open(os.devnull, "w")
    except OSError:
        pass


def main() -> None:
    sys.exit(run())
