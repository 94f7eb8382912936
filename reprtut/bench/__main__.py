"""Command line of the benchmarks: ``python -m reprtut.bench {train,attack,mnist} [--out FILE]``.

    python -m reprtut.bench train  [--arch resnet18] [--batch 512] [--steps 20] [--compile]
    python -m reprtut.bench attack [--batch 256] [--repeats 5]
    python -m reprtut.bench mnist  [--target 0.99] [--max-epochs N] [--every 100]
    python -m reprtut.bench plan   [--profile quick|colab|full|paper] [--json FILE] [--calibrate]

Common flags: ``--device`` (default: the fastest), ``--out FILE`` (also write the JSON there),
``--profile`` (print torch.profiler's top operators and keep them in the JSON). Sizes default
to the GPU figures of the issue on CUDA and to small ones on CPUs.
"""

from __future__ import annotations

import argparse
import shlex
import sys

import torch

from .. import profiles
from ..device import default_device
from . import attack, common, mnist, training


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reprtut.bench",
                                     description="Benchmarks of reprtut, printed (and written) as JSON.")
    sub = parser.add_subparsers(dest="command", required=True)
    common_args = argparse.ArgumentParser(add_help=False)
    common_args.add_argument("--device", default=None, help="cpu, cuda, mps (default: the fastest)")
    common_args.add_argument("--out", default=None, help="also write the JSON result to this file")
    common_args.add_argument("--profile", action="store_true",
                             help="run under torch.profiler and print its top operators")

    p = sub.add_parser("train", parents=[common_args], help="training throughput (synthetic data)")
    p.add_argument("--arch", default="resnet18", help="resnet18 (default) or small_cnn, ...")
    p.add_argument("--batch", type=int, default=None, help="images per step (GPU 512, CPU 32)")
    p.add_argument("--steps", type=int, default=None, help="timed steps (GPU 20, CPU 2)")
    p.add_argument("--method", choices=("standard", "pgd", "both"), default="both")
    p.add_argument("--no-amp", dest="amp", action="store_false", help="train in fp32")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")

    p = sub.add_parser("attack", parents=[common_args], help="PGD-20: reprtut vs torchattacks")
    p.add_argument("--arch", default=None, help="default: the profile's CIFAR-10 architecture")
    p.add_argument("--batch", type=int, default=None, help="images per attack call (GPU 512, CPU 64)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per attack (GPU 10, CPU 3)")

    p = sub.add_parser("mnist", parents=[common_args], help="seconds to 99%% MNIST test accuracy")
    p.add_argument("--target", type=float, default=0.99, help="test accuracy to reach")
    p.add_argument("--max-epochs", type=int, default=None, help="default: the recipe's epochs")
    p.add_argument("--every", type=int, default=100, help="evaluate every this many steps")
    p.add_argument("--compile", action="store_true", help="torch.compile the model")
    p = sub.add_parser("plan", help="the cost model: TFLOP and minutes per page and device")
    p.add_argument("--profile", dest="book_profile", default=None, choices=profiles.NAMES,
                   help="the book's profile to plan (default: the active one)")
    p.add_argument("--json", default=None, help="also write the rows as JSON to this file")
    p.add_argument("--calibrate", action="store_true",
                   help="compare the quick profile's CPU estimates with recorded page times")
    return parser


def _plan(args) -> dict:
    """Print (and with --json write) the cost model's table, and the calibration."""
    from . import calibration, costs, plan

    name = args.book_profile or profiles.name()
    rows = plan.table(name)
    cpu = plan.cpu_device()
    print(f"Cold estimates (empty model cache) of the {name} profile; cached models cost nothing.")
    print(f"CPU: {cpu.name}, measured {cpu.amp_tflops * 1e3:.1f} GFLOP/s and "
          f"{cpu.pass_s * 1e3:.1f} ms per pass; GPUs: data-sheet peaks at an assumed "
          + ", ".join(f"{d.name} {d.efficiency:.0%} of {d.amp_tflops:g}" for d in costs.GPUS.values())
          + " TFLOP/s")
    print(plan.format_rows(rows))
    result = {"benchmark": "plan", "book_profile": name, "cpu": cpu.__dict__,
              "gpus": {k: d.__dict__ for k, d in costs.GPUS.items()}, "pages": rows}
    if args.calibrate:
        cal, source = calibration.calibration()
        print(f"\nCalibration, quick profile on this CPU, against {source}:")
        print(calibration.format_calibration(cal))
        result["calibration"] = {"source": source, "pages": cal}
    if args.json:
        import json
        from pathlib import Path
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return result


def _print_tables(result: dict) -> None:
    tables = [(k, v) for k, v in result.items() if k.startswith("profile_table")]
    tables += [(f"{m}: profile_table", r["profile_table"]) for m, r in result.get("methods", {}).items()
               if "profile_table" in r]
    for name, table in tables:
        print(f"== {name} ==\n{table}")


def main(argv=None) -> dict:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = _parser().parse_args(argv)
    if args.command == "plan":
        return _plan(args)
    device = torch.device(args.device) if args.device else default_device()
    gpu = device.type == "cuda"
    if args.command == "train":
        methods_ = ("standard", "pgd") if args.method == "both" else (args.method,)
        body = training.run(device, arch=args.arch, batch=args.batch or (512 if gpu else 32),
                            steps=args.steps or (20 if gpu else 2), amp=args.amp,
                            compile=args.compile, profile=args.profile, methods_=methods_)
        peak = common.peak_tflops(common.device_name(device)) if gpu else None
        for row in body["methods"].values():
            row["fraction_of_peak"] = row["achieved_tflops"] / peak if peak else None
    elif args.command == "attack":
        body = attack.run(device, batch=args.batch or (512 if gpu else 64),
                          repeats=args.repeats or (10 if gpu else 3), arch=args.arch,
                          profile=args.profile)
    else:
        body = mnist.run(device, target=args.target, max_epochs=args.max_epochs, every=args.every,
                         compile=args.compile, profile=args.profile)
    command = shlex.join(["python", "-m", "reprtut.bench", *argv])
    result = {"benchmark": args.command, **common.metadata(device, command), **body}
    _print_tables(result)
    common.write(result, args.out)
    return result


if __name__ == "__main__":
    main()
