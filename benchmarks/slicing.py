"""Model-slicing benchmark: accuracy and batch time per slice rate, sliced vs unsliced training.

    python benchmarks/slicing.py            # a few minutes on 2 CPU cores
    python benchmarks/slicing.py --quick    # smoke run

Digits (scikit-learn's bundled 8x8 images): a sliced ResNet-8 trained with "min-max + 1 random"
against the same architecture trained unsliced and against the r = 0.25 architecture trained alone,
averaged over seeds. CIFAR-10-shaped random tensors: inference time per mini-batch for ResNet-20 and
VGG-11. Prints tables and writes benchmarks/results/slicing.json.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch
from sklearn.datasets import load_digits as sklearn_digits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from slicing import (  # noqa: E402
    DEFAULT_RATES,
    FixedRateSampler,
    LabeledData,
    MinMaxRandomSampler,
    count_flops,
    count_params,
    evaluate_rates,
    fit,
    profile,
    resolve_device,
    sliced_resnet,
    sliced_vgg,
    time_rates,
)

RESULTS = Path(__file__).resolve().parent / "results" / "slicing.json"
TARGETS = {
    "r1_within_points_of_unsliced": 1.0,
    "train_time_ratio_max": 2.0,
    "t025_over_t1_at_batch128_max": 0.4,
}


def machine_facts(device: torch.device) -> dict[str, Any]:
    return {
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
    }


def train_digits(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Sliced vs unsliced vs narrow-alone on digits; wall times summed over seeds (interleaved)."""
    digits = sklearn_digits()
    images = (digits.data.astype("float32") / 16.0).reshape(-1, 1, 8, 8)
    train, val = LabeledData.from_arrays(images, digits.target, digits.target_names).split(0.2, seed=0)
    build = functools.partial(sliced_resnet, num_classes=10, input_shape=(1, 8, 8), depth=8, width=args.width)
    variants = {
        "sliced": (dict(), lambda m, s: MinMaxRandomSampler(m.rates, k=1, seed=s)),
        "unsliced": (dict(rates=(1.0,)), lambda m, s: FixedRateSampler(1.0, m.rates)),
        # The r = 0.25 sub-model as its own network: a quarter of the width, 2 of the 8 groups.
        "narrow": (
            dict(rates=(1.0,), width=args.width // 4, groups=2),
            lambda m, s: FixedRateSampler(1.0, m.rates),
        ),
    }
    acc: dict[str, list[dict[float, float]]] = {k: [] for k in variants}
    seconds: dict[str, float] = {k: 0.0 for k in variants}
    models: dict[str, torch.nn.Module] = {}
    for seed in range(args.seeds):
        for name, (kwargs, sampler) in variants.items():
            torch.manual_seed(seed)
            model = build(**kwargs)
            t0 = time.perf_counter()
            fit(
                model,
                train,
                epochs=args.epochs,
                batch_size=64,
                lr=0.05,
                sampler=sampler(model, seed),
                device=device,
                seed=seed,
            )
            seconds[name] += time.perf_counter() - t0
            acc[name].append(evaluate_rates(model, val, device=device))
            models.setdefault(name, model)
            print(
                f"  seed {seed} {name:9s} {seconds[name]:7.1f}s  "
                + " ".join(f"{r}:{a:.3f}" for r, a in acc[name][-1].items()),
                flush=True,
            )

    def mean_acc(name: str) -> dict[float, float]:
        return {r: statistics.fmean(a[r] for a in acc[name]) for r in acc[name][0]}

    sliced = mean_acc("sliced")
    profiles = {
        str(b): profile(
            models["sliced"], val, batch_size=b, device=device, warmup=3, repeats=args.repeats
        ).to_dict()
        for b in (32, 128)
    }
    return {
        "model": f"sliced_resnet(depth=8, width={args.width}, groups=8, norm='group'), input (1, 8, 8)",
        "train_examples": len(train),
        "val_examples": len(val),
        "epochs": args.epochs,
        "seeds": args.seeds,
        "sampler": "min-max + 1 random",
        "sliced_accuracy": {str(r): a for r, a in sliced.items()},
        "unsliced_accuracy": mean_acc("unsliced")[1.0],
        "narrow_alone_accuracy": mean_acc("narrow")[1.0],
        "per_seed_accuracy": {k: [{str(r): a for r, a in d.items()} for d in v] for k, v in acc.items()},
        "train_time_s": seconds,
        "train_time_ratio_sliced_over_unsliced": seconds["sliced"] / seconds["unsliced"],
        "profiles": profiles,
    }


def time_cifar_shaped(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """Inference time per mini-batch on random (3, 32, 32) inputs: accuracy is meaningless here."""
    shape = (3, 32, 32)
    nets = {
        "resnet20": sliced_resnet(input_shape=shape, depth=20),
        "vgg11_w32": sliced_vgg(input_shape=shape, depth=11, width=32),
    }
    out: dict[str, Any] = {}
    for name, model in nets.items():
        model.to(device).eval()
        entry: dict[str, Any] = {
            "flops": [count_flops(model, shape, r) for r in DEFAULT_RATES],
            "params": [count_params(model, r) for r in DEFAULT_RATES],
        }
        for b in (32, 128):
            x = torch.randn(b, *shape, device=device)
            times = time_rates(model, x, DEFAULT_RATES, warmup=2, repeats=args.repeats_cifar)
            entry[f"mean_batch_time_s_{b}"] = [statistics.fmean(times[r]) for r in DEFAULT_RATES]
            entry[f"p99_batch_time_s_{b}"] = [
                float(torch.tensor(times[r], dtype=torch.float64).quantile(0.99)) for r in DEFAULT_RATES
            ]
        out[name] = entry
        print(f"  timed {name}", flush=True)
    return out


def check_targets(digits: dict[str, Any], cifar: dict[str, Any]) -> dict[str, Any]:
    r1_gap = 100 * (digits["unsliced_accuracy"] - digits["sliced_accuracy"]["1.0"])
    t128 = {name: e["mean_batch_time_s_128"] for name, e in cifar.items()}
    t128["digits_resnet8"] = digits["profiles"]["128"]["mean_batch_time_s"]
    ratios = {name: t[-1] / t[0] for name, t in t128.items()}
    return {
        "r1_points_below_unsliced": r1_gap,
        "r1_within_1_point": r1_gap <= TARGETS["r1_within_points_of_unsliced"],
        "r025_points_vs_narrow_alone": 100
        * (digits["sliced_accuracy"]["0.25"] - digits["narrow_alone_accuracy"]),
        "train_time_ratio": digits["train_time_ratio_sliced_over_unsliced"],
        "train_time_ratio_at_most_2": digits["train_time_ratio_sliced_over_unsliced"]
        <= TARGETS["train_time_ratio_max"],
        "t025_over_t1_batch128": ratios,
        "t025_over_t1_batch128_at_most_0.4": {
            k: v <= TARGETS["t025_over_t1_at_batch128_max"] for k, v in ratios.items()
        },
    }


def print_tables(digits: dict[str, Any], cifar: dict[str, Any], targets: dict[str, Any]) -> None:
    p32, p128 = digits["profiles"]["32"], digits["profiles"]["128"]
    print(f"\nDigits — {digits['model']}, {digits['epochs']} epochs, mean of {digits['seeds']} seeds")
    print(
        f"{'rate':>5} {'acc':>6} {'t32 ms':>8} {'p99':>7} {'t128 ms':>8} {'p99':>7} {'MFLOPs':>7} {'params':>8}"
    )
    for i, r in enumerate(p32["rates"]):
        print(
            f"{r:5.2f} {digits['sliced_accuracy'][str(r)]:6.3f} {1e3 * p32['mean_batch_time_s'][i]:8.2f} "
            f"{1e3 * p32['p99_batch_time_s'][i]:7.2f} {1e3 * p128['mean_batch_time_s'][i]:8.2f} "
            f"{1e3 * p128['p99_batch_time_s'][i]:7.2f} {p32['flops'][i] / 1e6:7.2f} {p32['params'][i]:8d}"
        )
    print(
        f"unsliced (same architecture): {digits['unsliced_accuracy']:.3f}   "
        f"narrow (r=0.25 architecture) alone: {digits['narrow_alone_accuracy']:.3f}"
    )
    print(
        f"training wall time sliced / unsliced: {digits['train_time_s']['sliced']:.1f}s / "
        f"{digits['train_time_s']['unsliced']:.1f}s = {digits['train_time_ratio_sliced_over_unsliced']:.2f}"
    )
    print("\nCIFAR-10-shaped random inputs (3x32x32): inference time per mini-batch")
    print(
        f"{'model':>10} {'rate':>5} {'t32 ms':>8} {'t128 ms':>8} {'p99 128':>8} {'MFLOPs':>8} {'params':>8}"
    )
    for name, e in cifar.items():
        for i, r in enumerate(DEFAULT_RATES):
            print(
                f"{name:>10} {r:5.2f} {1e3 * e['mean_batch_time_s_32'][i]:8.1f} "
                f"{1e3 * e['mean_batch_time_s_128'][i]:8.1f} {1e3 * e['p99_batch_time_s_128'][i]:8.1f} "
                f"{e['flops'][i] / 1e6:8.2f} {e['params'][i]:8d}"
            )
    print("\nTargets")
    print(
        f"  r=1.0 within 1 point of unsliced: {targets['r1_points_below_unsliced']:+.2f} points below "
        f"-> {'met' if targets['r1_within_1_point'] else 'MISSED'}"
    )
    print(f"  r=0.25 vs narrow alone: {targets['r025_points_vs_narrow_alone']:+.2f} points")
    print(
        f"  training time <= 2x unsliced: {targets['train_time_ratio']:.2f}x "
        f"-> {'met' if targets['train_time_ratio_at_most_2'] else 'MISSED'}"
    )
    for name, ratio in targets["t025_over_t1_batch128"].items():
        ok = targets["t025_over_t1_batch128_at_most_0.4"][name]
        print(f"  t(0.25)/t(1.0) at batch 128, {name}: {ratio:.3f} -> {'met' if ok else 'MISSED'}")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto")
    # One intra-op thread by default: on a small shared machine, OpenMP threads spinning against other
    # processes make timings erratic (observed 30x stalls on 2 cores). Recorded in the JSON either way.
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--repeats-cifar", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 1 seed, 3 repeats")
    parser.add_argument("--out", type=Path, default=None,
                        help="default: results/slicing.json, or results/slicing-cuda.json on a GPU")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.seeds, args.repeats, args.repeats_cifar = 2, 1, 3, 2
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if args.out is None:  # a GPU run never overwrites the CPU numbers: issue #15 keeps them side by side
        args.out = RESULTS.with_name("slicing-cuda.json") if device.type == "cuda" else RESULTS
    started = time.perf_counter()
    print("Training on digits ...", flush=True)
    digits = train_digits(args, device)
    print("Timing CIFAR-shaped inputs ...", flush=True)
    cifar = time_cifar_shaped(args, device)
    targets = check_targets(digits, cifar)
    print_tables(digits, cifar, targets)
    if args.quick:
        print("(quick smoke run: too few epochs and seeds for the targets to mean anything)")
    result = {
        "benchmark": "slicing",
        "machine": machine_facts(device),
        "config": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "targets": TARGETS,
        "digits": digits,
        "cifar_shaped": cifar,
        "results": targets,
        "wall_time_s": time.perf_counter() - started,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.out} ({result['wall_time_s']:.0f}s)")
    return result


if __name__ == "__main__":
    main()
