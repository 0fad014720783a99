"""Command line: ``python -m softmax_exp.data info [overrides...]`` and ``... download cifar10``.

    python -m softmax_exp.data info                                   # digits, offline
    python -m softmax_exp.data info dataset=cifar10 dataset.root=DIR  # any Hydra overrides
    python -m softmax_exp.data download cifar10 --root DIR [--url URL --md5 MD5]

Bad input exits with status 2 and a one-line message on stderr.
"""

from __future__ import annotations

import argparse
import sys

from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from softmax_exp.config import ConfigError, compose, to_config
from softmax_exp.data import DataError, load_dataset
from softmax_exp.data.cifar10 import download_cifar10
from softmax_exp.data.options import parse_options
from softmax_exp.util.cli import OneLineParser
from softmax_exp.util.errors import one_line
from softmax_exp.util.paths import resolve_path


def info(overrides: list[str]) -> None:
    """Load the configured dataset and print its splits, classes, fingerprint and cache path."""
    composed = compose(overrides)
    parse_options(composed.dataset)  # a dataset option's own one-line error (dataset.root: DIR/train/...)
    cfg = to_config(composed)  # then the rest of the config, the features group with it
    data = load_dataset(cfg.dataset, cfg.features)
    print(f"dataset      {data.name}")
    for split in ("train", "val", "test", "dev"):
        X, y = getattr(data, f"X_{split}"), getattr(data, f"y_{split}")
        print(f"X_{split:<10} {X.shape} {X.dtype}   y_{split} {y.shape} {y.dtype}")
    print(f"classes      {data.num_classes}: {', '.join(data.class_names)}")
    print(f"image_shape  {data.image_shape}")
    print(f"bias_trick   {data.bias_trick}")
    print(f"features     {data.features.settings() if data.features is not None else 'pixels'}")
    print(f"fingerprint  {data.fingerprint}")
    print(f"cache_path   {data.cache_path}")


def download(args: argparse.Namespace) -> None:
    """Download CIFAR-10; root, url and md5 default to conf/dataset/cifar10.yaml."""
    opts = parse_options(compose(["dataset=cifar10", *args.overrides]).dataset)
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

    try:
        if args.command == "info":
            info(args.overrides)
        else:
            download(args)
    except (DataError, ConfigError) as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 2
    except (HydraException, OmegaConfBaseException) as e:
        print(f"{parser.prog}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{parser.prog}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
