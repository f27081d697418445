#!/usr/bin/env python3
"""Reference schedules of diffusers' FlowMatchEulerDiscreteScheduler for tests/test_flowmatch.c.

Writes tests/fixtures/flowmatch/schedules.json: for each case the scheduler config, the
set_timesteps arguments (num_inference_steps, custom sigmas or none, mu or none) and the resulting
sigmas / timesteps exactly as float32 values (printed with repr, which round-trips), plus
torch.linspace(1, 1/N, N) for a range of N (the Z-Image pipeline's default sigmas) and
calculate_shift values. CPU only, deterministic.

    python3 tools/make_flowmatch_fixtures.py            # from the repository root
"""
import json
import os

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.pipelines.z_image.pipeline_z_image import calculate_shift

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def f32_list(t):
    return [float(x) for x in np.asarray(t, dtype=np.float32)]


def case(name, config, steps, sigmas=None, mu=None):
    s = FlowMatchEulerDiscreteScheduler(**config)
    kwargs = {}
    if sigmas is not None:
        kwargs["sigmas"] = sigmas
    if mu is not None:
        kwargs["mu"] = mu
    s.set_timesteps(num_inference_steps=steps if sigmas is None else None, **kwargs)
    return {
        "name": name,
        "config": config,
        "num_inference_steps": steps,
        "custom_sigmas": None if sigmas is None else f32_list(sigmas),
        "mu": mu,
        "sigmas": f32_list(s.sigmas.numpy()),
        "timesteps": f32_list(s.timesteps.numpy()),
    }


def zimage_sigmas(n):
    return torch.linspace(1.0, 1 / n, n).tolist()


def main():
    flux = {"shift": 3.0, "use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 1.15,
            "base_image_seq_len": 256, "max_image_seq_len": 4096}
    qwen = {"shift": 1.0, "use_dynamic_shifting": True, "base_shift": 0.5, "max_shift": 0.9,
            "base_image_seq_len": 256, "max_image_seq_len": 8192, "shift_terminal": 0.02,
            "time_shift_type": "exponential"}
    mu_flux = calculate_shift(4096, 256, 4096, 0.5, 1.15)
    mu_qwen = calculate_shift(1024 * 1024 // 256, 256, 8192, 0.5, 0.9)
    cases = [
        case("default", {}, 10),
        case("static shift 3, default sigmas", {"shift": 3.0}, 8),
        case("z-image turbo 8 steps", {"shift": 3.0}, 8, sigmas=zimage_sigmas(8)),
        case("z-image 50 steps", {"shift": 3.0}, 50, sigmas=zimage_sigmas(50)),
        case("z-image 1 step", {"shift": 3.0}, 1, sigmas=zimage_sigmas(1)),
        case("z-image shift 6 odd steps", {"shift": 6.0}, 37, sigmas=zimage_sigmas(37)),
        case("dynamic exponential (flux)", flux, 28, mu=mu_flux),
        case("dynamic exponential, custom sigmas", flux, 20,
             sigmas=list(np.linspace(1.0, 1 / 20, 20)), mu=mu_flux),
        case("dynamic + shift_terminal (qwen-image)", qwen, 50,
             sigmas=list(np.linspace(1.0, 1 / 50, 50)), mu=mu_qwen),
        case("dynamic + shift_terminal, default sigmas", qwen, 30, mu=mu_qwen),
        case("dynamic linear", dict(flux, time_shift_type="linear"), 12, mu=1.2),
        case("invert sigmas", {"shift": 2.0, "invert_sigmas": True}, 6),
        case("static shift_terminal", {"shift": 3.0, "shift_terminal": 0.1}, 9,
             sigmas=zimage_sigmas(9)),
    ]
    shifts = [{"config": {"base_image_seq_len": b, "max_image_seq_len": m, "base_shift": bs,
                          "max_shift": ms},
               "image_seq_len": n, "mu": calculate_shift(n, b, m, bs, ms)}
              for (n, b, m, bs, ms) in [(4096, 256, 4096, 0.5, 1.15), (1024, 256, 4096, 0.5, 1.15),
                                        (16, 256, 4096, 0.5, 1.15), (4096, 256, 8192, 0.5, 0.9),
                                        (777, 256, 4096, 0.5, 1.15)]]
    linspace = [{"n": n, "values": f32_list(torch.linspace(1.0, 1 / n, n).numpy())}
                for n in list(range(1, 70)) + [100, 128, 250, 1000]]
    out_dir = os.path.join(ROOT, "tests", "fixtures", "flowmatch")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "schedules.json"), "w") as f:
        json.dump({"generator": "tools/make_flowmatch_fixtures.py",
                   "schedules": cases, "calculate_shift": shifts, "linspace": linspace}, f,
                  indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
