"""The demo's phonon figures, judged on the ground truth itself and on the raw input."""

import numpy as np
import pytest

from hyperspy_eelspecnet.data import membrane_hole, silver_nanowire
from hyperspy_eelspecnet.demo import phonon_figures


@pytest.fixture(scope="module")
def nanowire():
    return silver_nanowire(return_ground_truth=True)


def test_the_truth_scores_perfectly_and_gives_its_temperature(nanowire):
    _, truth = nanowire
    figures = phonon_figures(truth, truth)
    assert figures["found_along_wire"] == figures["found_in_membrane"] == 1.0
    assert figures["false_in_hole"] == 0.0
    assert figures["map_correlation"] == pytest.approx(1.0)
    assert all(r == pytest.approx(1.0) for r in figures["sp_map_correlation"].values())
    # Detailed balance at 295 K, read back over the phonon window (0.07-0.13 eV) at its centre.
    assert figures["temperature_K"] == pytest.approx(295, rel=0.1)


def test_the_raw_input_shows_no_phonon_where_it_is_and_no_clean_map(nanowire):
    signal, truth = nanowire
    figures = phonon_figures(signal, truth)
    assert figures["found_along_wire"] < 0.5 and figures["found_in_membrane"] < 0.5
    assert figures["map_correlation"] < 0.9  # the ZLP tail, not the phonon, fills the window
    assert membrane_hole().sum() == 28


def test_several_restorations_are_scored_as_each_alone(nanowire):
    signal, truth = nanowire
    together = phonon_figures({"input": signal, "truth": truth}, truth)
    assert together == {"input": phonon_figures(signal, truth), "truth": phonon_figures(truth, truth)}
