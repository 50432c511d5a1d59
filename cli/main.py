"""The `polyp-rt` command line: flags built from config dataclasses, one-line errors.

Heavy packages (torch, onnxruntime, av, cv2) are imported by the command that
needs them, so `polyp-rt --help` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import logging
import signal
import sys
import types
import typing
from collections.abc import Sequence
from importlib import metadata
from typing import Any

from polyp_rt.core.errors import PolypRtError
from polyp_rt.core.names import printable
from polyp_rt.core.options import Range
from polyp_rt.core.signals import EXIT_CODES, HUNG_UP, INTERRUPTED, TERMINATED

log = logging.getLogger("polyp_rt")

DESCRIPTION = """\
Real-time polyp segmentation on live colonoscopy video.

  polyp-rt --source video.mp4            run the live overlay (same as `polyp-rt run ...`)
  polyp-rt --source 0 --record out.mp4   a webcam or capture card, recorded
  polyp-rt --source 0 --serve 127.0.0.1:8080
                                         ... and watched in browsers at http://127.0.0.1:8080/
  polyp-rt serve                         segment an uploaded image or clip in a browser
"""
EPILOG = (
    "Run `polyp-rt COMMAND --help` for a command's options. Exit codes: 0 ok, 1 internal error, "
    f"{PolypRtError.exit_code} bad input, {EXIT_CODES[INTERRUPTED]} Ctrl-C, {EXIT_CODES[TERMINATED]} SIGTERM, "
    f"{EXIT_CODES[HUNG_UP]} SIGHUP."
)


def version() -> str:
    try:
        return metadata.version("polyp-rt")
    except metadata.PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------- dataclass -> flags


def _flag_type(annotation: Any) -> Any:
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType) and len(args) == 1:
        return args[0]
    if typing.get_origin(annotation) is list:  # nargs: argparse converts each item
        return args[0]
    return annotation


def add_options(parser: argparse.ArgumentParser, config_cls: type) -> None:
    """One flag per dataclass field: `--field-name`, typed, with the field's default and help."""
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        if dataclasses.is_dataclass(hints[f.name]):
            add_options(parser, hints[f.name])
            continue
        meta = dict(f.metadata)
        help_text = meta.pop("help", None)
        flags = meta.pop("flag", None) or "--" + f.name.replace("_", "-")
        flags = [flags] if isinstance(flags, str) else list(flags)
        kind = _flag_type(hints[f.name])
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc,operator]
        if kind is bool:
            action = argparse.BooleanOptionalAction if default else "store_true"
            parser.add_argument(*flags, dest=f.name, action=action, default=default, help=help_text)
            continue
        valid = meta.pop("range", None)
        positional = not flags[0].startswith("-")  # its name is its dest
        if default not in (None, []) and not meta.get("required") and not positional:
            help_text = f"{help_text} (default: {default})"
        dest: dict[str, Any] = {} if positional else {"dest": f.name}
        parser.add_argument(
            *flags,
            **dest,
            type=_ranged(kind, valid),
            default=default,
            help=help_text,
            **meta,
        )


def _ranged(kind: Any, valid: Range | None) -> Any:
    """The flag's type; for a number with a range, a parser that refuses values outside it."""
    if valid is None or kind not in (int, float):
        return kind

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not {'a whole number' if kind is int else 'a number'}"
            ) from None
        if not valid.contains(float(value)):
            raise argparse.ArgumentTypeError(f"{text} is out of range: must be {valid.describe()}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def config_from(config_cls: type, args: argparse.Namespace) -> Any:
    hints = typing.get_type_hints(config_cls)
    values = {
        f.name: config_from(hints[f.name], args)
        if dataclasses.is_dataclass(hints[f.name])
        else getattr(args, f.name)
        for f in dataclasses.fields(config_cls)
    }
    return config_cls(**values)


# ---------------------------------------------------------------- commands

# name: (summary, config dataclass, handler taking that config), as "module:attribute",
# imported only when the command runs (the config modules are light; handlers are not).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "run": (
        "run the live overlay on a video, camera, stream or image folder",
        "polyp_rt.realtime.config:RunConfig",
        "polyp_rt.cli.run:run_command",
    ),
    "train": (
        "train a UNet++ on a polyp data set",
        "polyp_rt.train.config:TrainConfig",
        "polyp_rt.cli.commands:train_command",
    ),
    "eval": (
        "score a model (or a folder of predicted masks, or a video as CADe systems are judged) against ground truth",
        "polyp_rt.cli.config:EvalCommandConfig",
        "polyp_rt.cli.commands:eval_command",
    ),
    "synth": (
        "make a synthetic data set or a synthetic (or panned real-image) video clip",
        "polyp_rt.train.config:SynthConfig",
        "polyp_rt.cli.commands:synth_command",
    ),
    "export": (
        "export a checkpoint to ONNX, verified against torch",
        "polyp_rt.export.config:ExportConfig",
        "polyp_rt.cli.commands:export_command",
    ),
    "quantize": (
        "make a verified INT8 ONNX from an FP32 one, calibrated on real images (fastest on a CPU)",
        "polyp_rt.export.config:QuantizeConfig",
        "polyp_rt.cli.commands:quantize_command",
    ),
    "build": (
        "build a TensorRT engine from an ONNX model (needs TensorRT and a GPU)",
        "polyp_rt.export.config:BuildConfig",
        "polyp_rt.cli.commands:build_command",
    ),
    "bench": (
        "latency benchmark per backend (model only) or per pipeline stage",
        "polyp_rt.cli.config:BenchConfig",
        "polyp_rt.cli.bench:bench_command",
    ),
    "info": (
        "versions, devices, backends; a model file's contract",
        "polyp_rt.cli.config:InfoConfig",
        "polyp_rt.cli.info:info_command",
    ),
    "serve": (
        "the upload page: segment an image or a short clip in a browser",
        "polyp_rt.web.config:ServeConfig",
        "polyp_rt.cli.serve:serve_command",
    ),
    "batch": (
        "run the pipeline over archives of recorded videos, on this machine or a Ray cluster",
        "polyp_rt.batch.config:BatchConfig",
        "polyp_rt.cli.batch:batch_command",
    ),
}


def load(target: str) -> Any:
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


# ---------------------------------------------------------------- entry point


class Parser(argparse.ArgumentParser):
    """argparse with its errors as one line, like every other error: `error: argument --flag: ...`."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(2, f"error: {printable(message)} (`{self.prog} --help` lists the options)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="polyp-rt",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"polyp-rt {version()}")
    common = Parser(add_help=False)
    common.add_argument("-v", "--verbose", action="store_true", help="more log output")
    common.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", title="commands")
    for name, (summary, config, _handler) in COMMANDS.items():
        p = sub.add_parser(
            name, parents=[common], help=summary, description=summary[0].upper() + summary[1:] + "."
        )
        add_options(p, load(config))
    return parser


def setup_logging(verbose: bool) -> None:
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(console=Console(stderr=True), show_path=False, show_time=False)
    handler.addFilter(_printable_record)
    logging.basicConfig(level=logging.WARNING, handlers=[handler], format="%(message)s", force=True)
    logging.getLogger("polyp_rt").setLevel(logging.DEBUG if verbose else logging.INFO)


def _printable_record(record: logging.LogRecord) -> bool:
    """A log line as printable text, line by line: a file name's control characters are shown."""
    message = record.getMessage()
    record.msg, record.args = "\n".join(printable(line) for line in message.split("\n")), None
    return True


# the optional extra that installs a package the base install does not have
EXTRAS = {
    "torch": "train",
    "torchvision": "train",
    "segmentation_models_pytorch": "train",
    "timm": "train",
    "onnx": "train",
    "onnxscript": "train",
    "matplotlib": "train",
    "ray": "batch",
    "jinja2": "batch",
    "openvino": "openvino",
    "tensorrt": "tensorrt",
    "starlette": "web",
    "uvicorn": "web",
    "websockets": "web",
    "python_multipart": "web",
}


def missing_extra(exc: ModuleNotFoundError, command: str) -> Exception:
    """A one-line PolypRtError naming the extra that brings the missing package (else the error itself)."""
    package = (exc.name or "").split(".")[0]
    if package not in EXTRAS:
        return exc
    extra = EXTRAS[package]
    return PolypRtError(
        f'polyp-rt {command} needs {package}, which comes with pip install "polyp-rt[{extra}]"'
    )


def main(argv: Sequence[str] | None = None) -> int:
    code = _main(argv)
    if argv is None:  # the program itself: Ctrl-C while the interpreter exits must not kill it
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    return code


def _main(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "run")  # `polyp-rt --source X` is `polyp-rt run --source X`
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    _summary, config, handler = COMMANDS[args.command]
    try:
        try:
            return int(load(handler)(config_from(load(config), args)))
        except ModuleNotFoundError as exc:
            raise missing_extra(exc, args.command) from exc
    except PolypRtError as exc:
        if args.debug:
            log.exception("details")
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        return EXIT_CODES[INTERRUPTED]
    except Exception as exc:
        if args.debug:
            log.exception("details")
        first_line = printable(str(exc).splitlines()[0]) if str(exc) else ""
        print(
            f"error: internal error: {type(exc).__name__}: {first_line} "
            "(a bug: run again with --debug and report the traceback)",
            file=sys.stderr,
        )
        return 1


if __name__ == "__main__":
    sys.exit(main())
