"""Learned models' cost: parameters, FLOPs and CPU time of the default spectral VAE and FrequencyUNet, 2 threads.

FrequencyUNet: one forward at batch 2 (the conditional and unconditional halves of classifier-free guidance) x
K = 16 slices of 32x20 latents with a 256x160 image; a 25-step sample costs 25 of them plus one VAE decode.
VAE: encode and decode of one (16, 4, 160, 256) spectral volume. Times are the best of --repeats runs, since the
cores are shared with other jobs; FLOPs (torch's FlopCounterMode) do not depend on the load.

Unless OMP_WAIT_POLICY is set, the script re-runs itself with OMP_WAIT_POLICY=PASSIVE: with OpenMP's default
(spinning) policy, two threads on two cores busy with other jobs stall at every parallel region, and the U-Net,
made of many small ops, slowed from 0.35 s to 1.2-4.5 s per forward (same minute, load 4). On idle cores the
policy makes little difference. Run: python benchmarks/bench_models.py [--repeats 5] [--steps 25]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from gid_pipeline.models import FrequencyUNet, decode_latents, encode_spectrum, make_spectral_vae

RESULTS = Path(__file__).parent / "results"
K, HEIGHT, WIDTH = 16, 160, 256


def best_time(step: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of the fastest of ``repeats`` runs, after a warm-up run."""
    step()
    best = (float("inf"), float("inf"))
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        step()
        best = min(best, (time.perf_counter() - start, time.process_time() - start_cpu))
    return best


def gflop(step: Callable[[], object]) -> float:
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / 1e9


def count(module: torch.nn.Module) -> int:
    return sum(parameter.numel() for parameter in module.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--steps", type=int, default=25)
    args = parser.parse_args()
    if "OMP_WAIT_POLICY" not in os.environ:  # OpenMP reads it at start-up only
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"})
    torch.set_num_threads(2)
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)

    unet = FrequencyUNet().eval()
    vae = make_spectral_vae().eval()
    factor = unet.image_downsampling
    latents = torch.randn(2, K, 4, HEIGHT // factor, WIDTH // factor, generator=generator)
    image = torch.rand(2, 3, HEIGHT, WIDTH, generator=generator) * 2 - 1
    mask = torch.tensor([True, False])
    spectrum = torch.randn(1, K, 4, HEIGHT, WIDTH, generator=generator)

    def forward():
        return unet(latents, 500, image, condition_mask=mask)

    def encode():
        return encode_spectrum(vae, spectrum)

    def decode():
        return decode_latents(vae, latents[:1])

    rows = []
    with torch.inference_mode():
        for name, step in (("unet forward B=2", forward), ("vae encode", encode), ("vae decode", decode)):
            seconds, cpu_seconds = best_time(step, args.repeats)
            rows.append({"name": name, "gflop": gflop(step), "seconds": seconds, "cpu_seconds": cpu_seconds})
    forward_row, encode_row, decode_row = rows

    def combine(name: str, *terms: tuple[int, dict]) -> dict:
        """A row summing weighted rows, e.g. 25 forwards and a decode."""
        return {"name": name, **{key: sum(weight * row[key] for weight, row in terms)
                                 for key in ("gflop", "seconds", "cpu_seconds")}}

    rows.append(combine("vae encode + decode", (1, encode_row), (1, decode_row)))
    rows.append(combine(f"sample: {args.steps} x forward + decode", (args.steps, forward_row), (1, decode_row)))
    parameters = {
        "unet": count(unet),
        "unet.frequency_layers": count(unet.frequency_layers),
        "unet.image_encoder": count(unet.image_encoder),
        "vae": count(vae),
        "vae.encoder": count(vae.encoder) + count(vae.quant_conv),
        "vae.decoder": count(vae.decoder) + count(vae.post_quant_conv),
    }

    print(f"{'parameters':<34} {'count':>10}")
    for name, value in parameters.items():
        print(f"{name:<34} {value / 1e6:9.2f}M")
    load = os.getloadavg()[0]
    print(f"\n{'step (2 threads, K=16, 256x160)':<34} {'GFLOP':>8} {'best s':>8} {'CPU s':>8}   "
          f"OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']}, load {load:.1f}")
    for row in rows:
        print(f"{row['name']:<34} {row['gflop']:8.1f} {row['seconds']:8.3f} {row['cpu_seconds']:8.3f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "bench_models.json").write_text(json.dumps({
        "torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": args.repeats, "steps": args.steps,
        "omp_wait_policy": os.environ["OMP_WAIT_POLICY"], "load_average_1min": load,
        "num_frequencies": K, "size": f"{WIDTH}x{HEIGHT}", "parameters": parameters, "rows": rows,
        "unet_config": dict(unet.config), "vae_config": dict(vae.config),
    }, indent=2))


if __name__ == "__main__":
    main()
