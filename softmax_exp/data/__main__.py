"""Command line: ``python -m softmax_exp.data info [overrides...]`` and ``... download cifar10``.

    python -m softmax_exp.data info                                   # digits, offline
    python -m softmax_exp.data info dataset=cifar10 dataset.root=DIR  # any Hydra overrides
    python -m softmax_exp.data download cifar10 --root DIR [--url URL --md5 MD5]

Bad input exits with status 2 and a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from softmax_exp.cli import OneLineParser

CONFIG_DIR = Path(__file__).resolve().parents[2] / "conf"


def compose_config(overrides: list[str]) -> Any:
    """The project config (conf/config.yaml) with Hydra overrides applied."""
    from hydra import compose, initialize_config_dir

    if not (CONFIG_DIR / "config.yaml").is_file():
        raise FileNotFoundError(
            f"config folder {CONFIG_DIR} not found (run from a source checkout)"
        )
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("config", overrides=overrides)


def info(overrides: list[str]) -> None:
    """Load the configured dataset and print its splits, classes, fingerprint and cache path."""
    from softmax_exp.data import load_dataset

    data = load_dataset(compose_config(overrides).dataset)
    print(f"dataset      {data.name}")
    for split in ("train", "val", "test", "dev"):
        X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
        print(f"X_{split:<10} {X.shape} {X.dtype}   y_{split} {y.shape} {y.dtype}")
    print(f"classes      {data.num_classes}: {', '.join(data.class_names)}")
    print(f"image_shape  {data.image_shape}")
    print(f"bias_trick   {data.bias_trick}")
    print(f"fingerprint  {data.fingerprint}")
    print(f"cache_path   {data.cache_path}")


def download(args: argparse.Namespace) -> None:
    """Download CIFAR-10; root, url and md5 default to conf/dataset/cifar10.yaml."""
    from softmax_exp.data.cifar10 import download_cifar10
    from softmax_exp.data.options import parse_options, resolve_path

    opts = parse_options(compose_config(["dataset=cifar10", *args.overrides]).dataset)
    root = resolve_path(args.root) if args.root else opts.root
    md5 = (args.md5 or opts.md5 or "").lower() or None
    archive = download_cifar10(root, args.url or opts.url, md5)
    print(
        f"{archive} ready; check it with: python -m softmax_exp.data info dataset=cifar10 "
        f"dataset.root={root}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(
        prog="python -m softmax_exp.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    info_cmd = commands.add_parser("info", help="load a dataset and describe it")
    info_cmd.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. dataset=cifar10")
    dl_cmd = commands.add_parser("download", help="download a dataset archive")
    dl_cmd.add_argument("dataset", choices=["cifar10"])
    dl_cmd.add_argument("--root", help="folder to download into (default: dataset.root)")
    dl_cmd.add_argument("--url", help="archive URL (default: dataset.url)")
    dl_cmd.add_argument("--md5", help="expected MD5 hex digest (default: dataset.md5)")
    dl_cmd.add_argument("overrides", nargs="*", help="Hydra overrides for the dataset config")
    args = parser.parse_args(argv)

    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from softmax_exp.data import DataError

    try:
        if args.command == "info":
            info(args.overrides)
        else:
            download(args)
    except (DataError, HydraException, OmegaConfBaseException, FileNotFoundError) as e:
        # one line: Hydra's messages span lines and end with the config search path
        message = " ".join(str(e).split("Config search path")[0].split())
        print(f"{parser.prog}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
