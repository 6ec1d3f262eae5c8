"""Model cards: written from a model's contract and training configuration, one section
replaceable (the evaluation's)."""

import numpy as np
import yaml

from hyperspy_eelspecnet.model import ModelContract
from hyperspy_eelspecnet.training.card import coverage_rows, initial_stage_lines, set_card_section, write_model_card
from hyperspy_eelspecnet.training.trainer import MixtureComponent, TrainConfig


def test_card_names_every_earlier_stage():
    stage1 = {"config": "s1.yaml", "epochs_run": 75, "wall_time_s": 600.0, "hardware": "CPU"}
    stage2 = {"config": "s2.yaml", "epochs_run": 70, "wall_time_s": 1200.0, "hardware": "CPU", "initial_stage": stage1}
    lines = initial_stage_lines(stage2)
    assert lines == [
        "- started from the best weights of the earlier stage `s2.yaml`; the epochs and wall time above are this stage's",
        "- stage `s2.yaml`: 70 epochs from the best weights of `s1.yaml`, 20.0 min on CPU",
        "- stage `s1.yaml`: 75 epochs from random weights, 10.0 min on CPU",
    ]
    assert initial_stage_lines(None) == []


def test_coverage_rows_describe_each_mixture_component():
    config = TrainConfig(mixture=[MixtureComponent("reference", 2.0), MixtureComponent("instrument", 1.0)])
    rows = coverage_rows(config)
    assert rows[0] == "| | `reference` (weight 2) | `instrument` (weight 1) |"
    assert all(row.count("|") == 4 for row in rows)  # a label and two components
    psf = next(row for row in rows if row.startswith("| distorted ZLP / PSF FWHM"))
    # 7-40 channels at 5 meV/channel: 35-200 meV; the instrument's 3-40 channels: 15-200 meV.
    assert "lorentzian, 7-40 ch (35-200 meV at 5 meV/ch)" in psf and "pseudo_voigt, 3-40 ch (15-200 meV" in psf
    noise = next(row for row in rows if row.startswith("| noise"))
    assert "Gaussian" in noise and "Poisson, 1e+04-1e+08 counts" in noise
    windows = next(row for row in rows if row.startswith("| short windows"))
    assert "| none |" in windows and "40% of spectra" in windows
    assert next(row for row in rows if row.startswith("| measured vacuum PSFs")) == "| measured vacuum PSFs | none | none |"


def test_coverage_rows_of_a_fine_tune_name_the_measured_psfs_instead_of_analytic_ones():
    from hyperspy_eelspecnet.training.finetuning import finetune_config

    config = finetune_config({}, np.array([13.7, 14.1]), 0.005, (1e6, 1e7), n_channels=1024)
    rows = {row.split(" | ")[0]: row for row in coverage_rows(config)}
    assert rows["| measured vacuum PSFs"] == "| measured vacuum PSFs | 100% of spectra, broadened by 0-1 ch | 100% of spectra, broadened by 0-1 ch |"
    assert rows["| distorted ZLP / PSF FWHM"].count("- (measured PSFs only)") == 2
    # The phonon-like half: features 1-5 vacuum FWHM (median 13.9 channels) above the ZLP.
    assert "75% instead 13.9-69.5 ch above the ZLP" in rows["| feature centres"]


def test_write_model_card_from_contract_and_configuration(tmp_path):
    config = TrainConfig(filters=(4, 6, 8), seed=7, mixture=[MixtureComponent("instrument")])
    stage = {"config": "stage1.yaml", "epochs_run": 3, "wall_time_s": 120.0, "hardware": "CPU: test"}
    contract = ModelContract(
        n_channels=2048, length_multiple=4, psf_fwhm_channels=(3.0, 40.0), name="tiny", version="9.9",
        preset="instrument",
        training={"config": config.to_dict(), "parameters": 12345, "epochs_run": 4, "best_val_loss": 0.0123,
                  "wall_time_s": 90.0, "hardware": "CPU: test", "initial_stage": stage},
    )
    card = tmp_path / "MODEL_CARD.md"
    write_model_card(card, contract, config)
    text = card.read_text()
    assert text.startswith("# Model card: tiny 9.9\n")
    for line in (
        "- distorted ZLP FWHM seen in training: 3-40 channels; restored ZLP FWHM 3 channels",
        "- parameters: 12,345",
        "- epochs run: 4, best validation loss 1.230e-02",
        "- wall time: 1.5 min on CPU: test",
        "- stage `stage1.yaml`: 3 epochs from random weights, 2.0 min on CPU: test",
        "- seed: 7 (training batch i of epoch e: SeedSequence([seed, 0, e, i]); validation: SeedSequence([seed, 1]))",
        *coverage_rows(config),
    ):
        assert line in text.splitlines(), line
    # The configuration block reads back as the configuration.
    block = text.split("```yaml\n", 1)[1].split("```", 1)[0]
    assert yaml.safe_load(block) == config.to_dict()
    # The evaluation's section goes below the card's own sections.
    set_card_section(card, "## Evaluation", "numbers")
    assert card.read_text().startswith(text.rstrip()) and card.read_text().endswith("## Evaluation\n\nnumbers\n")


def test_set_card_section_replaces_adds_or_creates(tmp_path):
    card = tmp_path / "card.md"
    set_card_section(card, "## Evaluation", "first")  # no card yet: created
    assert card.read_text() == "## Evaluation\n\nfirst\n"
    card.write_text("# Card\n\n## A\n\na text\n\n## Evaluation\n\nold\n\n### kept inside\n\nold too\n\n## B\n\nb text\n")
    set_card_section(card, "## Evaluation", "\nnew\n")
    # The whole old section (its subsections too) goes, replaced where it stood; the others stay.
    assert card.read_text() == "# Card\n\n## A\n\na text\n\n## Evaluation\n\nnew\n\n## B\n\nb text\n"
    set_card_section(card, "## C", "c text")  # absent: added at the end
    assert card.read_text().endswith("## Evaluation\n\nnew\n\n## B\n\nb text\n\n## C\n\nc text\n")
    set_card_section(card, "## C", "c again")  # the last section: to the end of the card
    assert card.read_text().endswith("## B\n\nb text\n\n## C\n\nc again\n")


def test_set_card_section_matches_only_the_heading_line_itself(tmp_path):
    card = tmp_path / "card.md"
    text = (
        "# Card\n\n## Training\n\n### Evaluation split\n\n10 % held out\n\n## Evaluation notes\n\n"
        "read me\n\n```text\n## Evaluation\n```\n\n## Limits\n\nkeep me\n"
    )
    card.write_text(text)
    set_card_section(card, "## Evaluation", "numbers")
    # A subsection, a longer heading or a line in a code block is not the section: nothing goes.
    assert card.read_text() == text + "\n## Evaluation\n\nnumbers\n"
    card.write_text("# Card\n\n## Evaluation  \n\nold\n\n# Appendix\n\nkeep me\n")
    set_card_section(card, "## Evaluation", "new")  # trailing spaces aside; a higher heading ends it
    assert card.read_text() == "# Card\n\n## Evaluation\n\nnew\n\n# Appendix\n\nkeep me\n"
