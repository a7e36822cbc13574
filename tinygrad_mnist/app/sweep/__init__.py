"""Sweeps and ensembles on Dask: many training runs at once, on the cores of one machine
(an embedded `LocalCluster`) or on a cluster (``tcp://HOST:PORT`` of a `dask scheduler`).

    from tinygrad_mnist.app import sweep
    result = sweep.run("lr.yaml")                    # LocalCluster: one worker per core
    result = sweep.run(spec, client=Client("tcp://10.0.0.5:8786"))
    print(result.summary)                            # mean ± std over seeds per configuration

`spec` (what to sweep: `spec.py`), `runner` (the Dask engine, faults and resuming) and
`results` (sweep.csv, the summary table and the plots). `ensemble_spec(k)` is the sweep
behind `tinygrad-mnist ensemble-train`: k runs of one configuration with seeds 0..k-1.
"""
from __future__ import annotations

from typing import Any, Dict, Optional

from ... import models
from .runner import (SINGLE_THREAD_ENV, SweepResult, close_client, run, run_trial,
                     start_client)
from .spec import Range, Spec, Trial, configurations, expand, load_spec


def ensemble_spec(k: int, train: Optional[Dict[str, Any]] = None,
                  out: Optional[str] = None, name: str = "ensemble") -> Spec:
    """A sweep of `k` runs of one configuration (`train`'s options; the default CNN
    unless it says otherwise) with seeds 0..k-1: the members of an ensemble."""
    if k < 1:
        raise ValueError(f"an ensemble needs at least 1 member, got {k}")
    train = {"model": models.ENSEMBLE_MODEL, **(train or {})}
    return load_spec({"name": name, "out": out or f"sweeps/{name}", "train": train,
                      "seeds": k})


__all__ = ["run", "load_spec", "ensemble_spec", "Spec", "Trial", "Range", "SweepResult",
           "configurations", "expand", "run_trial", "start_client", "close_client",
           "SINGLE_THREAD_ENV"]
