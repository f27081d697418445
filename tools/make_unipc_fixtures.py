#!/usr/bin/env python3
"""Reference schedules and trajectories of diffusers' UniPCMultistepScheduler for tests/test_unipc.c.

Writes tests/fixtures/unipc/cases.json:
  "schedules": for each case the scheduler config, set_timesteps(N, mu) and the resulting sigmas
      (float32, printed with repr, which round-trips) and integer timesteps;
  "trajectories": a full sampling run on a small [1, 2, 3, 4] tensor: the initial sample, then for
      every step the model output fed to scheduler.step and the sample it returned. The "model" is
      a fixed formula of the sample and the timestep evaluated in torch (its outputs are recorded,
      so the C test feeds them back instead of re-evaluating it). begin_index says whether the run
      called set_begin_index(0) as WanPipeline does (else step() finds its index from the timestep).

Configs: the Wan2.1 release (flow sigmas, flow_prediction, bh2, order 2, lower_order_final,
final sigma zero) with flow_shift 3 and 5, orders 1/2/3, bh1, lower_order_final off, disabled
correctors, dynamic shifting and shift_terminal. CPU only, deterministic.

    python3 tools/make_unipc_fixtures.py            # from the repository root
"""
import json
import math
import os

import numpy as np
import torch
from diffusers import UniPCMultistepScheduler

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))

# scheduler_config.json of the Wan2.1 diffusers releases (flow_shift 3.0; 5.0 for 720p).
WAN = {
    "_class_name": "UniPCMultistepScheduler",
    "beta_end": 0.02, "beta_schedule": "linear", "beta_start": 0.0001, "disable_corrector": [],
    "dynamic_thresholding_ratio": 0.995, "final_sigmas_type": "zero", "flow_shift": 3.0,
    "lower_order_final": True, "num_train_timesteps": 1000, "predict_x0": True,
    "prediction_type": "flow_prediction", "rescale_betas_zero_snr": False,
    "sample_max_value": 1.0, "solver_order": 2, "solver_p": None, "solver_type": "bh2",
    "steps_offset": 0, "thresholding": False, "timestep_spacing": "linspace",
    "trained_betas": None, "use_beta_sigmas": False, "use_exponential_sigmas": False,
    "use_flow_sigmas": True, "use_karras_sigmas": False,
}


def f32_list(t):
    return [float(x) for x in np.asarray(t, dtype=np.float32).ravel()]


def make(config):
    return UniPCMultistepScheduler(**{k: v for k, v in config.items() if not k.startswith("_")})


def schedule(name, config, steps, mu=None):
    s = make(config)
    s.set_timesteps(steps, mu=mu)
    return {"name": name, "config": config, "num_inference_steps": steps, "mu": mu,
            "sigmas": f32_list(s.sigmas.numpy()),
            "timesteps": [int(t) for t in s.timesteps.tolist()]}


def fake_model(x, t):
    # Smooth in x and t so that the multistep history matters; float32 throughout.
    tt = t.to(torch.float32) / 1000.0
    return torch.sin(1.3 * x + tt) - 0.7 * x + 0.25 * tt


def trajectory(name, config, steps, mu=None, begin_index=True, seed=0):
    s = make(config)
    s.set_timesteps(steps, mu=mu)
    if begin_index:
        s.set_begin_index(0)
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(1, 2, 3, 4, generator=g, dtype=torch.float32)
    samples, outputs = [f32_list(x)], []
    for t in s.timesteps:
        v = fake_model(x, t)
        x = s.step(v, t, x, return_dict=False)[0]
        assert x.dtype == torch.float32 and torch.isfinite(x).all(), name
        outputs.append(f32_list(v))
        samples.append(f32_list(x))
    return {"name": name, "config": config, "num_inference_steps": steps, "mu": mu,
            "begin_index": begin_index, "shape": [1, 2, 3, 4],
            "sigmas": f32_list(s.sigmas.numpy()),
            "timesteps": [int(t) for t in s.timesteps.tolist()],
            "model_outputs": outputs, "samples": samples}


def main():
    wan5 = dict(WAN, flow_shift=5.0)
    sched = []
    for cfg_name, cfg in (("wan shift 3", WAN), ("wan shift 5", wan5)):
        for n in (1, 2, 3, 4, 7, 10, 20, 30, 50, 100):
            sched.append(schedule(f"{cfg_name}", cfg, n))
    sched += [
        schedule("shift 1", dict(WAN, flow_shift=1.0), 25),
        schedule("shift 1, 1000 steps (repeated timesteps)", dict(WAN, flow_shift=1.0), 1000),
        schedule("shift 7.3, 13 steps", dict(WAN, flow_shift=7.3), 13),
        schedule("sigma_min final", dict(WAN, final_sigmas_type="sigma_min"), 9),
        schedule("sigma_min final, 1 step", dict(WAN, final_sigmas_type="sigma_min"), 1),
        schedule("500 training steps", dict(WAN, num_train_timesteps=500), 16),
        schedule("dynamic exponential", dict(WAN, use_dynamic_shifting=True), 20, mu=0.8),
        schedule("dynamic linear", dict(WAN, use_dynamic_shifting=True,
                                        time_shift_type="linear"), 11, mu=1.7),
        schedule("shift_terminal", dict(WAN, shift_terminal=0.05), 18),
    ]
    o3 = dict(WAN, solver_order=3)
    trajs = [
        trajectory("wan shift 3, 50 steps", WAN, 50),
        trajectory("wan shift 5, 30 steps", wan5, 30, seed=1),
        trajectory("wan shift 3, 1 step", WAN, 1, seed=2),
        trajectory("wan shift 3, 2 steps", WAN, 2, seed=3),
        trajectory("wan shift 3, 3 steps", WAN, 3, seed=4),
        trajectory("order 1", dict(WAN, solver_order=1), 10, seed=5),
        trajectory("order 3, 12 steps", o3, 12, seed=6),
        trajectory("order 3, 3 steps", o3, 3, seed=7),
        trajectory("order 3, shift 5, 25 steps", dict(o3, flow_shift=5.0), 25, seed=8),
        trajectory("bh1, sigma_min final", dict(WAN, solver_type="bh1",
                                                final_sigmas_type="sigma_min"), 10, seed=9),
        trajectory("bh1 order 3, sigma_min final", dict(o3, solver_type="bh1",
                                                        final_sigmas_type="sigma_min"), 8,
                   seed=10),
        trajectory("lower_order_final off, sigma_min final",
                   dict(WAN, lower_order_final=False, final_sigmas_type="sigma_min"), 8, seed=11),
        trajectory("order 3, lower_order_final off, 1 step",
                   dict(o3, lower_order_final=False), 1, seed=12),
        trajectory("disable_corrector [0, 1, 5]", dict(WAN, disable_corrector=[0, 1, 5]), 10,
                   seed=13),
        trajectory("order 3, disable_corrector [2, 3]", dict(o3, disable_corrector=[2, 3]), 9,
                   seed=14),
        trajectory("no set_begin_index", WAN, 6, begin_index=False, seed=15),
        trajectory("dynamic exponential", dict(WAN, use_dynamic_shifting=True), 8, mu=0.8,
                   seed=16),
        trajectory("shift_terminal", dict(WAN, shift_terminal=0.05), 7, seed=17),
    ]
    out_dir = os.path.join(ROOT, "tests", "fixtures", "unipc")
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "cases.json"), "w") as f:
        json.dump({"generator": "tools/make_unipc_fixtures.py",
                   "schedules": sched, "trajectories": trajs}, f, separators=(",", ":"))
        f.write("\n")


if __name__ == "__main__":
    main()
