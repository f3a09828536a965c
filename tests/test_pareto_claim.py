"""Issue #11's target on planted-truth data, on the protocol of the README's evidence
(``benchmarks/_cases.py``'s planted case: ``datasets.planted_ood_split(0)``, its schedule,
models seeds 0-4): PaInvRL at its defaults above the backbone and InvRL out of
distribution, and its IID Recall@20 at least the backbone's.  The defaults were chosen on
validation data (``benchmarks/weighting_evidence.py``); this pins the test-set outcome
the README reports, so a change that loses it is noticed."""
import importlib.util
import pathlib

import pytest

from painvrl import InvRL, PaInvRL, datasets
from painvrl.experiments import compare_settings

BENCH = pathlib.Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def cases():
    spec = importlib.util.spec_from_file_location("_cases", BENCH / "_cases.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_painvrl_defaults_gain_ood_without_losing_iid_on_planted_data(cases):
    split = datasets.planted_ood_split(0)
    params = cases.SCHEDULES["planted"]
    df = compare_settings(split.dataset, split, {"InvRL": (InvRL, {}), "PaInvRL": (PaInvRL, {})},
                          seeds=range(5), progress=False, ks=(20,), metrics=("recall",),
                          **params)
    mean = df.groupby("variant")[["iid_test_recall@20", "ood_test_recall@20"]].mean()
    assert mean.loc["PaInvRL", "ood_test_recall@20"] > mean.loc["backbone", "ood_test_recall@20"]
    assert mean.loc["PaInvRL", "ood_test_recall@20"] > mean.loc["InvRL", "ood_test_recall@20"]
    assert mean.loc["PaInvRL", "iid_test_recall@20"] >= mean.loc["backbone", "iid_test_recall@20"]
