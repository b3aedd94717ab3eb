"""Search efficiency of deepseek.tune (Optuna TPE, multivariate) against random search, its sampler overhead, and
several workers on one study (journal file and PostgreSQL).

    python benchmarks/bench_tune.py [--seeds 10] [--real-seeds 3] [--smoke]

- Branin (2-D) and Hartmann-6 (6-D), one study per seed: random search's best value in 60 trials, then the trial at
  which TPE (same seed) first reaches it; the median over seeds is the figure (target: within 20 trials).
- A real task: a small CNN trained for one epoch on 4,000 Fashion-MNIST images (the Debian package's real data),
  validation error on 2,000 test images; learning rate, batch size, dropout and width searched. Same protocol.
  Each sampler (TPE, the default; GP) runs with another seed than random search's.
- Sampler overhead: milliseconds per trial spent in the sampler (a free objective), at 1,000 trials, TPE vs random.
- Workers: 24 trials of a 0.2 s objective with 1 and 2 worker processes on a journal file and on a real PostgreSQL
  (Debian's, started here on 127.0.0.1): wall time, trials lost or numbered twice, parameters drawn twice.
Writes benchmarks/results/tune.json and tune.png.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from _common import add_smoke_flag, results_dir, scratch_dir, write_results

BRANIN = {"x": {"type": "uniform", "min": -5, "max": 10}, "y": {"type": "uniform", "min": 0, "max": 15}}
HARTMANN = {f"x{i}": {"type": "uniform", "min": 0, "max": 1} for i in range(6)}
_A = np.array([[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]])
_P = 1e-4 * np.array([[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
                      [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]])
_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])
CNN_SPACE = {"learning_rate": {"type": "log_uniform", "min": 1e-4, "max": 3e-1},
             "batch_size": {"type": "choice", "options": [16, 32, 64, 128, 256]},
             "dropout": {"type": "uniform", "min": 0.0, "max": 0.6},
             "width": {"type": "choice", "options": [4, 8, 16, 32]}}


def branin(p: dict[str, float]) -> float:
    x, y = p["x"], p["y"]
    return (y - 5.1 / (4 * math.pi ** 2) * x ** 2 + 5 / math.pi * x - 6) ** 2 + 10 * (1 - 1 / (8 * math.pi)) * math.cos(x) + 10


def hartmann6(p: dict[str, float]) -> float:
    x = np.array([p[f"x{i}"] for i in range(6)])
    return float(-np.sum(_ALPHA * np.exp(-np.sum(_A * (x - _P) ** 2, axis=1))))


class FashionCNN:
    """Validation error of a small CNN after one epoch on real Fashion-MNIST (deterministic for given params)."""

    def __init__(self, train: int, val: int) -> None:
        from deepseek import assets

        full = assets.fashion_mnist("train")
        test = assets.fashion_mnist("test")
        self.x, self.y = full.x[:train], full.y[:train]
        self.vx, self.vy = test.x[:val], test.y[:val]

    def __call__(self, p: dict[str, Any]) -> float:
        import torch

        torch.manual_seed(0)
        w = int(p["width"])
        model = torch.nn.Sequential(
            torch.nn.Conv2d(1, w, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(w, 2 * w, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Flatten(), torch.nn.Dropout(p["dropout"]), torch.nn.Linear(2 * w * 49, 10))
        opt = torch.optim.Adam(model.parameters(), lr=p["learning_rate"])
        order = torch.randperm(len(self.x), generator=torch.Generator().manual_seed(0))
        model.train()
        for i in range(0, len(order), int(p["batch_size"])):
            idx = order[i:i + int(p["batch_size"])]
            loss = torch.nn.functional.cross_entropy(model(self.x[idx]), self.y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            error = float((model(self.vx).argmax(-1) != self.vy).float().mean())
        return error if math.isfinite(error) else 1.0


def trials_to_reach(objective: Any, space: dict[str, Any], seed: int, budget: int, target: float,
                    sampler: str = "tpe") -> int | None:
    """The first trial (1-based) at which ``sampler``'s best is <= ``target``; None if not within ``budget``."""
    from deepseek import tune

    reached: list[int] = []

    def stop_when_reached(study: Any, trial: Any) -> None:
        if trial.value is not None and trial.value <= target and not reached:
            reached.append(trial.number + 1)
            study.stop()

    # another seed than random search's: TPE's first 10 (startup) trials are random draws, and with the same seed
    # they would be random search's first 10
    cfg = tune.TuneConfig.parse({"search_space": space, "n_trials": budget, "seed": seed + 1000, "sampler": sampler})
    study = tune.open_study(cfg)
    study.optimize(lambda t: objective(tune.space.suggest(cfg.params, t)), n_trials=budget, callbacks=[stop_when_reached])
    return reached[0] if reached else None


def random_best(objective: Any, space: dict[str, Any], seed: int, trials: int) -> tuple[float, list[float]]:
    from deepseek import tune

    result = tune.run(objective, {"search_space": space, "n_trials": trials, "seed": seed, "sampler": "random"},
                      progress=False)
    values = [r["value"] for r in result.trials()]
    return result.best_value, list(np.minimum.accumulate(values))


def efficiency(name: str, objective: Any, space: dict[str, Any], seeds: int, random_trials: int,
               samplers: tuple[str, ...]) -> dict[str, Any]:
    """Per seed: random search's best of ``random_trials``, and the trial at which each sampler first reaches it."""
    rows = []
    for seed in range(seeds):
        target, _ = random_best(objective, space, seed, random_trials)
        row: dict[str, Any] = {"seed": seed, "random_best": target}
        for sampler in samplers:
            row[f"{sampler}_trials_to_reach"] = trials_to_reach(objective, space, seed, random_trials, target, sampler)
        rows.append(row)
        reached = ", ".join(f"{s} at {row[f'{s}_trials_to_reach'] or f'> {random_trials}'}" for s in samplers)
        print(f"  {name} seed {seed}: random best of {random_trials} = {target:.5g}; reached by {reached}", flush=True)
    out: dict[str, Any] = {"random_trials": random_trials, "seeds": seeds, "rows": rows, "samplers": {}}
    for sampler in samplers:
        counts = [r[f"{sampler}_trials_to_reach"] or random_trials + 1 for r in rows]
        out["samplers"][sampler] = {"median_trials_to_reach": float(np.median(counts)),
                                    "speedup_median": random_trials / float(np.median(counts)),
                                    "reached_within_20": sum(c <= 20 for c in counts)}
    return out


def sampler_overhead(trials: int) -> dict[str, Any]:
    """Milliseconds per trial over the last 100 of ``trials`` with a free objective (sampling + storage)."""
    from deepseek import tune

    out = {}
    for sampler in ("tpe", "random"):
        cfg = tune.TuneConfig.parse({"search_space": HARTMANN, "n_trials": trials, "seed": 0, "sampler": sampler})
        study = tune.open_study(cfg)
        stamps: list[float] = []
        params = cfg.params
        study.optimize(lambda t, params=params: hartmann6(tune.space.suggest(params, t)), n_trials=trials,
                       callbacks=[lambda s, t, stamps=stamps: stamps.append(time.perf_counter())])
        tail = np.diff(stamps[-101:]) * 1000 if len(stamps) > 101 else np.diff(stamps) * 1000
        out[sampler] = {"trials": trials, "ms_per_trial_last_100": float(np.median(tail)),
                        "total_s": stamps[-1] - stamps[0]}
        print(f"  {sampler}: {out[sampler]['ms_per_trial_last_100']:.2f} ms per trial around trial {trials}", flush=True)
    return out


def sleepy(params: dict[str, float]) -> float:
    time.sleep(0.2)
    return branin(params)


def workers(tmp: Path, trials: int, postgres: str | None) -> list[dict[str, Any]]:
    from deepseek import tune

    rows = []
    storages = [("journal file", lambda i: str(tmp / f"w{i}.journal"))]
    if postgres:
        storages.append(("PostgreSQL", lambda i: postgres))
    for label, storage in storages:
        for n in (1, 2):
            started = time.perf_counter()
            result = tune.run(sleepy, {"search_space": BRANIN, "n_trials": trials, "study_name": f"w{n}"},
                              storage=storage(n), workers=n, progress=False)
            wall = time.perf_counter() - started
            numbers = [r["number"] for r in result.trials()]
            params = [(r["param:x"], r["param:y"]) for r in result.trials()]
            rows.append({"storage": label, "workers": n, "wall_s": wall, "trials": len(numbers),
                         "complete": result.complete, "failed": result.failed,
                         "numbered_twice": len(numbers) - len(set(numbers)),
                         "lost": len(set(range(max(numbers) + 1)) - set(numbers)),
                         "params_drawn_twice": len(params) - len(set(params))})
            print(f"  {label}, {n} worker(s): {wall:.1f} s for {len(numbers)} trials; {rows[-1]}", flush=True)
    return rows


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["efficiency"])
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6))
    for ax, task in zip(np.atleast_1d(axes), tasks):
        r = results["efficiency"][task]
        samplers = list(r["samplers"])
        width = 0.8 / len(samplers)
        for i, sampler in enumerate(samplers):
            counts = [row[f"{sampler}_trials_to_reach"] or r["random_trials"] + 1 for row in r["rows"]]
            ax.bar(np.arange(len(counts)) + i * width, counts, width=width,
                   label=f"{sampler} (median {r['samplers'][sampler]['median_trials_to_reach']:g})")
        ax.axhline(r["random_trials"], color="tab:red", ls="--", label=f"random search: {r['random_trials']}")
        ax.axhline(20, color="gray", ls=":", label="target: 20")
        ax.set_title(f"{task}: trials to match random's best", fontsize=9)
        ax.set_xlabel("seed")
        ax.legend(fontsize=7)
    fig.text(0.01, 0.01, results["machine"], fontsize=7, color="gray")
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10, help="seeds for Branin and Hartmann-6")
    parser.add_argument("--real-seeds", type=int, default=3, help="seeds for the Fashion-MNIST CNN")
    add_smoke_flag(parser)
    args = parser.parse_args()

    import torch

    from deepseek._core import machine as _machine

    torch.set_num_threads(2)
    seeds, real_seeds, budget, overhead_trials, worker_trials = (
        (2, 1, 8, 30, 6) if args.smoke else (args.seeds, args.real_seeds, 60, 1000, 24))
    results: dict[str, Any] = {"machine": _machine.describe(_machine.summary(threads=2)), "smoke": args.smoke,
                               "efficiency": {}}
    print("search efficiency (TPE vs random search)", flush=True)
    samplers = ("tpe", "gp")  # TPE is the default; GP (Optuna's Gaussian process) is the one to pick on smooth spaces
    results["efficiency"]["Branin"] = efficiency("Branin", branin, BRANIN, seeds, budget, samplers)
    results["efficiency"]["Hartmann-6"] = efficiency("Hartmann-6", hartmann6, HARTMANN, seeds, budget, samplers)
    cnn = FashionCNN(*((256, 256) if args.smoke else (4000, 2000)))
    results["efficiency"]["Fashion-MNIST CNN"] = efficiency("Fashion-MNIST CNN", cnn, CNN_SPACE, real_seeds, budget,
                                                            samplers)
    print(f"sampler overhead at {overhead_trials} trials", flush=True)
    results["sampler_overhead"] = sampler_overhead(overhead_trials)
    print("workers on one study", flush=True)
    import contextlib
    import glob

    from deepseek.tune.postgres import throwaway_postgres

    with (throwaway_postgres() if glob.glob("/usr/lib/postgresql/*/bin/initdb") else contextlib.nullcontext()) as url:
        results["workers"] = workers(scratch_dir("bench-tune-"), worker_trials, url)
    for task, r in results["efficiency"].items():
        for sampler, m in r["samplers"].items():
            print(f"{task}: {sampler} matched random search's best of {r['random_trials']} in a median of "
                  f"{m['median_trials_to_reach']:g} trials ({m['speedup_median']:.1f}x); within 20 for "
                  f"{m['reached_within_20']}/{r['seeds']} seeds", flush=True)
    write_results(args, "tune.json", results)
    plot(results, results_dir(args) / "tune.png")


if __name__ == "__main__":
    main()
