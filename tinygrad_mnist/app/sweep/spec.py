"""What a sweep runs: its spec (a YAML or JSON file, or a dict), the search space, and
the trials it expands to.

    name: lr-x-hidden           # optional (default: the file's name)
    out: sweeps/lr-x-hidden     # the sweep directory (default: sweeps/NAME)
    train:                      # fixed training options: any TrainConfig key
      model: mlp
      epochs: 2
    search: grid                # grid, random or tpe (Optuna's TPE; needs optuna)
    space:                      # the swept options
      lr: [0.0003, 0.001, 0.003]          # a list: these values
      hidden: [[64], [256], [512, 256]]
      dropout: {low: 0.0, high: 0.5}      # random/tpe: a range (log: true, int: true)
    trials: 20                  # random/tpe: configurations to draw (grid: every one)
    seeds: 2                    # runs per configuration: seeds 0..n-1, or a list [0, 7]
    seed: 0                     # the random/tpe sampler's seed
    metric: val_acc             # what to optimise: val_acc (max) or val_loss (min)

A *configuration* is one point of the space; a *trial* is one configuration with one
seed, i.e. one ordinary training run. A trial's id is a hash of its full options, so
the same spec gives the same trials and a re-run finds the finished ones.
"""
from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import numpy as np

from ..config import TrainConfig

PathLike = Union[str, os.PathLike]
SEARCHES = ("grid", "random", "tpe")
#: metric name -> True when larger is better
METRICS = {"val_acc": True, "val_loss": False}
#: Options a spec may not set: the sweep gives each trial its seed and run directory.
RESERVED = ("seed", "out", "quiet", "overwrite")
SPEC_KEYS = ("name", "out", "train", "search", "space", "trials", "seeds", "seed", "metric")
#: The most values a spec may hold, counted as written out (YAML aliases repeat theirs).
MAX_SPEC_VALUES = 100_000
#: The most training runs (configurations times seeds) one sweep may ask for.
MAX_RUNS = 10_000


@dataclass(frozen=True)
class Range:
    """A continuous (or integer) range of values, uniform or log-uniform."""
    low: float
    high: float
    log: bool = False
    int: bool = False

    def sample(self, rng: np.random.Generator) -> Any:
        if self.log:
            value = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        else:
            value = rng.uniform(self.low, self.high)
        return int(round(value)) if self.int else float(value)


Domain = Union[List[Any], Range]


@dataclass(frozen=True)
class Trial:
    """One training run of a sweep: the swept options' values, the seed, and every
    option it trains with."""
    index: int
    config: int                 # which configuration (0, 1, ...) it belongs to
    params: Dict[str, Any]      # the swept options only
    seed: int
    options: Dict[str, Any]     # every TrainConfig option given (train + params + seed)

    @property
    def id(self) -> str:
        """A stable id: a hash of the options, so a re-run finds the same trial."""
        text = json.dumps(self.options, sort_keys=True, default=str)
        return hashlib.sha1(text.encode()).hexdigest()[:10]

    @property
    def name(self) -> str:
        """The name of its run directory under the sweep's `trials/`."""
        return f"{self.index:03d}-{self.id}"


@dataclass
class Spec:
    """A parsed, checked sweep spec (see the module docstring for the keys)."""
    name: str
    out: Path
    train: Dict[str, Any] = field(default_factory=dict)
    search: str = "grid"
    space: Dict[str, Domain] = field(default_factory=dict)
    trials: Optional[int] = None
    seeds: List[int] = field(default_factory=lambda: [0])
    seed: int = 0
    metric: str = "val_acc"
    source: Optional[Path] = None   # the file it was read from, if any

    @property
    def maximize(self) -> bool:
        return METRICS[self.metric]

    def to_dict(self) -> Dict[str, Any]:
        """The spec as plain JSON values (what `spec.json` in the sweep directory holds)."""
        space = {k: dataclasses.asdict(v) if isinstance(v, Range) else v
                 for k, v in self.space.items()}
        return {"name": self.name, "out": str(self.out), "train": self.train,
                "search": self.search, "space": space, "trials": self.trials,
                "seeds": self.seeds, "seed": self.seed, "metric": self.metric}


def load_spec(spec: Union[PathLike, Dict[str, Any], Spec]) -> Spec:
    """Read and check a spec: a Spec, a dict, or a `.yaml`/`.yml`/`.json` file. Raises
    ValueError naming the first problem."""
    if isinstance(spec, Spec):
        return spec
    source = None
    if not isinstance(spec, dict):
        source = Path(spec)
        try:
            text = source.read_text(encoding="utf-8")
        except OSError as e:
            raise ValueError(f"cannot read the sweep spec {source}: {e.strerror or e}") \
                from None
        except UnicodeDecodeError as e:
            raise ValueError(f"cannot read the sweep spec {source}: it is not UTF-8 text "
                             f"(byte {e.start})") from None
        spec = _parse(text, source)
    return _check(dict(spec), source)


def _parse(text: str, source: Path) -> Dict[str, Any]:
    if source.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ImportError("YAML sweep specs need PyYAML (installed with the sweep extra: "
                              'pip install -e ".[sweep]"), or write the spec as JSON') \
                from None
        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"{source} is not valid YAML: {_one_line(e)}") from None
        except RecursionError:
            raise ValueError(f"{source} is not a sweep spec: nested too deeply") from None
    else:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"{source} is not valid JSON: {e}") from None
        except RecursionError:
            raise ValueError(f"{source} is not a sweep spec: nested too deeply") from None
    if not isinstance(values, dict):
        raise ValueError(f"{source} must hold a mapping of spec keys ({', '.join(SPEC_KEYS)})")
    _check_size(values, source)
    return values


def _one_line(error: Exception) -> str:
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _check_size(values: Any, source: Path) -> None:
    """ValueError if `values` holds more than MAX_SPEC_VALUES values, counting each use
    of a YAML alias (a few lines of aliases can stand for billions of values)."""
    seen, todo = 0, [values]
    while todo:
        value = todo.pop()
        seen += 1
        if seen > MAX_SPEC_VALUES:
            raise ValueError(f"{source} holds more than {MAX_SPEC_VALUES:,} values (counting "
                             f"each use of a YAML alias); write a smaller spec")
        if isinstance(value, dict):
            todo += [*value.keys(), *value.values()]
        elif isinstance(value, (list, tuple)):
            todo += value


def _check(values: Dict[str, Any], source: Optional[Path]) -> Spec:
    unknown = _names(set(values) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"unknown sweep spec key(s): {unknown}; known keys: "
                         f"{', '.join(SPEC_KEYS)}")
    name = str(values.get("name") or (source.stem if source else "sweep"))
    out = values.get("out") or str(Path("sweeps") / name)
    if not isinstance(out, (str, os.PathLike)):
        raise ValueError(f"out must be a directory name, got {_short(out)}")
    out = Path(out)
    for key in ("train", "space"):
        if not isinstance(values.get(key) or {}, dict):
            raise ValueError(f"{key} must be a mapping of training options, got "
                             f"{_short(values[key])}")
    train = dict(values.get("train") or {})
    space_values = dict(values.get("space") or {})
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for where, keys in (("train", train), ("space", space_values)):
        bad = _names(set(keys) - known)
        if bad:
            raise ValueError(f"{where}: unknown training option(s) {bad}; known: "
                             f"{', '.join(sorted(known - set(RESERVED)))}")
        reserved = sorted(set(keys) & set(RESERVED))
        if reserved:
            raise ValueError(f"{where}: {', '.join(reserved)} cannot be set in a sweep "
                             "(use the spec's seeds and out)")
    both = sorted(set(train) & set(space_values))
    if both:
        raise ValueError(f"{', '.join(both)} is both fixed (train) and swept (space)")
    search = values.get("search", "grid")
    if search not in SEARCHES:
        raise ValueError(f"search must be one of {list(SEARCHES)}, got {_short(search)}")
    space = {key: _domain(key, value, search) for key, value in space_values.items()}
    trials = values.get("trials")
    if search == "grid":
        if trials is not None:
            raise ValueError("trials is for random or tpe search; a grid runs every "
                             "combination")
    elif not _is_int(trials) or trials < 1:
        raise ValueError(f"{search} search needs trials: a positive number of "
                         f"configurations to draw, got {_short(trials)}")
    seeds = values.get("seeds", 1)
    if _is_int(seeds):
        if not 1 <= seeds <= MAX_RUNS:
            raise ValueError(f"seeds must be at least 1 and at most {MAX_RUNS:,}, got "
                             f"{seeds}")
        seeds = list(range(seeds))
    elif not (isinstance(seeds, list) and seeds and all(isinstance(s, int) for s in seeds)
              and len(set(seeds)) == len(seeds)):
        raise ValueError(f"seeds must be a count or a list of distinct integers, got "
                         f"{_short(seeds)}")
    configs = (math.prod(len(domain) for domain in space.values()) if search == "grid"
               else trials)
    if configs * len(seeds) > MAX_RUNS:
        raise ValueError(f"the sweep asks for {configs:,} configuration(s) times "
                         f"{len(seeds)} seed(s), over the limit of {MAX_RUNS:,} runs; sweep "
                         f"fewer values")
    seed = values.get("seed", 0)
    if not _is_int(seed):
        raise ValueError(f"seed must be an integer, got {_short(seed)}")
    metric = values.get("metric", "val_acc")
    if not isinstance(metric, str) or metric not in METRICS:
        raise ValueError(f"metric must be one of {list(METRICS)}, got {_short(metric)} (the "
                         "test set is used once, for the final pick, never to choose)")
    spec = Spec(name=name, out=out, train=train, search=search, space=space, trials=trials,
                seeds=list(seeds), seed=seed, metric=metric,
                source=source)
    TrainConfig.from_dict(dict(train))  # the fixed options are valid on their own
    return spec


def _names(keys: Any) -> str:
    """Some keys, as text: the first five, sorted, and how many more."""
    names = sorted(map(str, keys))
    return ", ".join(n if len(n) <= 60 and n.isprintable() else _short(n)
                     for n in names[:5]) + (
        f" (+{len(names) - 5} more)" if len(names) > 5 else "")


def _short(value: Any) -> str:
    """`value`'s repr, cut to a few dozen characters (an error names it in one line)."""
    text = " ".join(repr(value).split())
    return text if len(text) <= 60 else text[:57] + "..."


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _domain(key: str, value: Any, search: str) -> Domain:
    if isinstance(value, list):
        if not value:
            raise ValueError(f"space: {key} has no values")
        return value
    if isinstance(value, dict) and search != "grid":
        unknown = sorted(set(value) - {"low", "high", "log", "int"})
        if unknown or "low" not in value or "high" not in value:
            raise ValueError(f"space: {key} must be a list of values or {{low, high}} with "
                             f"optional log and int, got {_short(value)}")
        try:
            r = Range(float(value["low"]), float(value["high"]), bool(value.get("log", False)),
                      bool(value.get("int", False)))
        except (TypeError, ValueError):
            raise ValueError(f"space: {key} needs numbers for low and high, got "
                             f"{_short(value)}") from None
        if not r.low < r.high or (r.log and r.low <= 0) or not math.isfinite(r.high - r.low):
            raise ValueError(f"space: {key} needs low < high (and low > 0 for log), "
                             f"got {_short(value)}")
        return r
    kind = "a list of values" if search == "grid" else "a list of values or {low, high}"
    raise ValueError(f"space: {key} must be {kind} ({search} search), got {_short(value)}")


# --------------------------------------------------------------------- trials
def make_trial(spec: Spec, index: int, config: int, params: Dict[str, Any],
               seed: int) -> Trial:
    """The trial of configuration `params` with `seed`; raises ValueError when the
    options are invalid together."""
    options = {**spec.train, **params, "seed": seed}
    TrainConfig.from_dict(dict(options))
    return Trial(index, config, dict(params), seed, options)


def configurations(spec: Spec) -> List[Dict[str, Any]]:
    """The configurations of a grid or random search, in order (the same every time)."""
    if spec.search == "grid":
        keys = list(spec.space)
        return [dict(zip(keys, values))
                for values in itertools.product(*(spec.space[k] for k in keys))]
    if spec.search == "random":
        rng = np.random.default_rng(spec.seed)
        return [{key: _sample(domain, rng) for key, domain in spec.space.items()}
                for _ in range(spec.trials)]
    raise ValueError(f"{spec.search} search draws its configurations as it goes")


def _sample(domain: Domain, rng: np.random.Generator) -> Any:
    if isinstance(domain, Range):
        return domain.sample(rng)
    return domain[int(rng.integers(len(domain)))]


def expand(spec: Spec, configs: List[Dict[str, Any]], first_config: int = 0,
           first_index: int = 0) -> List[Trial]:
    """Every (configuration, seed) pair as a Trial, configurations first."""
    trials = []
    for c, params in enumerate(configs, start=first_config):
        for seed in spec.seeds:
            trials.append(make_trial(spec, first_index + len(trials), c, params, seed))
    return trials
