"""The Python API checks what it is given (issue 22, point 8): one-line MMBenchErrors naming what
was passed and what is expected, and registries whose first lookups are safe from several threads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import mmbench
from mmbench.errors import MMBenchError

REPO = Path(__file__).resolve().parents[1]


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 3)

    def forward(self, tab: torch.Tensor) -> torch.Tensor:
        return self.head(tab)


@pytest.mark.parametrize(("args", "kwargs", "needle"), [
    (("late_fusion", "synthetic"), {}, "takes a torch.nn.Module, got a str"),
    ((Tiny(), {"name": "synthetic"}), {}, "dataset must be a MultimodalDataset"),
    ((Tiny(), 5), {}, "got a int"),
    ((Tiny(), "synthetic", 5), {}, "perturbations must be a non-empty list of names or {name, params} mappings, got int"),
    ((Tiny(), "synthetic", []), {}, "perturbations must be a non-empty list"),
    ((Tiny(), "synthetic", ["clean"], "accuracy ok"), {}, "unknown metric 'accuracy ok'"),
    ((Tiny(), "synthetic", ["clean"], 3), {}, "metrics must be a non-empty list of metric names, got int"),
])
def test_evaluate_refuses_bad_arguments_in_one_line(args, kwargs, needle) -> None:
    with pytest.raises(MMBenchError) as caught:
        mmbench.evaluate(*args, **kwargs)
    message = str(caught.value)
    assert needle in message and "\n" not in message, message


def test_one_perturbation_name_is_a_list_of_one() -> None:
    """``perturbations="clean"`` used to be read letter by letter ("unknown perturbation 'c'")."""
    data = mmbench.make_dataset({"tab": torch.randn(90, 4).numpy()}, {"tab": "vector"},
                                torch.arange(90).remainder(3).numpy())
    result = mmbench.evaluate(Tiny(), data, "clean", "accuracy", progress=False)
    assert set(result.frame["family"]) == {"clean"} and set(result.frame["metric"]) == {"accuracy"}


def test_first_registry_lookups_from_several_threads_see_every_entry() -> None:
    """In a fresh process, eight threads make their first lookups at once: none sees an empty or
    half-loaded registry (it used to return [] or 'unknown dataset')."""
    code = (
        "import threading, mmbench\n"
        "seen, errors = [], []\n"
        "def look():\n"
        "    try:\n"
        "        seen.append((len(mmbench.list_models()), len(mmbench.list_datasets()), 'synthetic' in mmbench.list_datasets()))\n"
        "    except Exception as exc:\n"
        "        errors.append(repr(exc))\n"
        "threads = [threading.Thread(target=look) for _ in range(8)]\n"
        "[t.start() for t in threads]; [t.join() for t in threads]\n"
        "assert not errors, errors\n"
        "assert len(set(seen)) == 1 and seen[0][0] > 5 and seen[0][2], seen\n"
        "print('ok', seen[0])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.startswith("ok"), done.stderr[-2000:]
