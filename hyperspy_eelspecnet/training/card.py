"""Model cards: what a model was trained on, how, and how well it did.

:func:`write_model_card` writes the card of a trained model from its contract;
:func:`set_card_section` replaces one ``##`` section of a card where it stands (the evaluation writes its
tables there), so every card is written by this module.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ..spectral import MIN_CHANNELS_ABOVE_ZLP, MIN_CHANNELS_BELOW_ZLP

__all__ = ["write_model_card", "set_card_section", "coverage_rows", "initial_stage_lines"]


def coverage_rows(config) -> list[str]:
    """Markdown rows describing what each generator component of the mixture covers."""
    rows = ["| | " + " | ".join(f"`{m.preset}` (weight {m.weight:g})" for m in config.mixture) + " |"]
    rows.append("|---|" + "---|" * len(config.mixture))
    generators = config.generator_configs

    def row(label, cell):
        rows.append(f"| {label} | " + " | ".join(cell(g) for g in generators) + " |")

    def channels(pair, g, digits=3):
        low, high = pair
        return (f"{low:.{digits}g}-{high:.{digits}g} ch "
                f"({low * g.dispersion * 1000:.{digits}g}-{high * g.dispersion * 1000:.{digits}g} meV at {g.dispersion * 1000:g} meV/ch)")

    def analytic(cell):
        """An analytic PSF's setting; none where every spectrum is blurred by a measured PSF."""
        return lambda g: "- (measured PSFs only)" if g.measured_psf_probability >= 1.0 else cell(g)

    row("measured vacuum PSFs", lambda g: "none" if g.measured_psf_probability == 0 else
        f"{g.measured_psf_probability:.0%} of spectra, broadened by "
        f"{g.measured_psf_extra_fwhm[0]:g}-{g.measured_psf_extra_fwhm[1]:g} ch")
    row("distorted ZLP / PSF FWHM", analytic(lambda g: f"{g.psf_shape}, " + channels(g.psf_fwhm, g)))
    row("PSF loss/gain half-width ratio", analytic(lambda g: f"{g.psf_asymmetry[0]:g}-{g.psf_asymmetry[1]:g}"))
    row("PSF Lorentzian fraction (tails)", analytic(
        lambda g: f"{g.psf_lorentz_fraction[0]:g}-{g.psf_lorentz_fraction[1]:g}"
        + (" (log-uniform)" if g.psf_lorentz_fraction_log else "")))
    row("jitter half-amplitude", lambda g: f"{g.jitter_amplitude[0]:g}-{g.jitter_amplitude[1]:g} ch, "
        + ", ".join(g.jitter_distributions))
    row("loss features", lambda g: f"{g.n_peaks[0]}-{g.n_peaks[1]} Lorentzians, FWHM " + channels(g.peak_fwhm, g)
        + f", 1/{g.peak_ratio[1]:g} to 1/{g.peak_ratio[0]:g} of the ZLP")
    row("feature centres", lambda g: f"uniform over channels {g.peak_channel[0]}-{g.peak_channel[1]}" + (
        "" if g.peak_near_zlp_fraction == 0 else f"; {g.peak_near_zlp_fraction:.0%} instead "
        f"{g.peak_near_zlp_distance[0]:.3g}-{g.peak_near_zlp_distance[1]:.3g} ch above the ZLP (log-uniform)"))
    row("continuum", lambda g: "none" if g.continuum_probability == 0 else
        f"{g.continuum_probability:.0%} of spectra, 1/{g.continuum_ratio[1]:g} to 1/{g.continuum_ratio[0]:g} of the ZLP")
    row("noise", lambda g: f"Gaussian, std {g.gaussian_noise_std[0]:g}-{g.gaussian_noise_std[1]:g} x max"
        if g.noise_model == "gaussian" else
        f"Poisson, {g.total_counts[0]:.0e}-{g.total_counts[1]:.0e} counts, read noise "
        f"{g.read_noise[0]:g}-{g.read_noise[1]:g}, dark {g.dark_level[0]:g}-{g.dark_level[1]:g} counts/ch")
    row("ZLP drift, alignment", lambda g: f"{g.zlp_drift[0]:g} to {g.zlp_drift[1]:g} ch, "
        + ("aligned on the located ZLP" if g.align_zlp else "not aligned"))
    row("short windows", lambda g: "none" if g.window_probability == 0 else
        f"{g.window_probability:.0%} of spectra, start {g.window_start[0]}-{g.window_start[1]}, "
        f"stop {g.window_stop[0]}-{g.window_stop[1]}")
    return rows


def initial_stage_lines(stage) -> list[str]:
    """Card lines naming the earlier stages of a staged training, latest first."""
    if not stage:
        return []
    lines = [
        f"- started from the best weights of the earlier stage `{stage['config']}`; the epochs and "
        "wall time above are this stage's"
    ]
    while stage:
        earlier = stage.get("initial_stage")
        start = f"the best weights of `{earlier['config']}`" if earlier else "random weights"
        minutes = (stage.get("wall_time_s") or float("nan")) / 60
        lines.append(
            f"- stage `{stage['config']}`: {stage.get('epochs_run', '?')} epochs from {start}, "
            f"{minutes:.1f} min on {stage.get('hardware', '?')}"
        )
        stage = earlier
    return lines


def write_model_card(path, contract, config) -> None:
    """Write the card of a model from its contract and the ``TrainConfig`` it was trained with."""
    t = contract.training
    lines = [
        f"# Model card: {contract.name} {contract.version}",
        "",
        "A compact EELSpecNet (1-D U-shaped CNN) that restores near-zero-loss EELS spectra: it",
        "removes the instrument's blur (PSF and energy jitter) and noise and returns a quasi-Dirac",
        "zero-loss peak with the loss features, counts conserved. Trained on generated spectra only.",
        "",
        "## Contract",
        f"- trained on {contract.n_channels}-channel spectra at {contract.dispersion * 1000:g} meV/channel "
        "(ranges below are in channels); restores spectra of any length with the ZLP anywhere, "
        f"{MIN_CHANNELS_BELOW_ZLP} channels or more below it and {MIN_CHANNELS_ABOVE_ZLP} above",
        f"- distorted ZLP FWHM seen in training: {contract.psf_fwhm_channels[0]:g}-"
        f"{contract.psf_fwhm_channels[1]:g} channels; restored ZLP FWHM {contract.zlp_fwhm_channels:g} channels",
        f"- generator preset(s): {contract.preset}",
        "",
        "## What it was trained on",
        *coverage_rows(config),
        "",
        "## Limits",
        "- Outside these ranges (a ZLP wider or narrower in channels, other counts) the network has",
        "  seen nothing: `eelspecnet_deconvolve` warns with the numbers; bin the energy axis where the",
        "  ZLP is too wide, or fine-tune on your microscope's vacuum ZLP (`eelspecnet finetune`).",
        "  A ZLP already narrower than the restored ZLP is refused (the restoration would widen it)",
        "  unless `force=True`.",
        "  Features narrower than about 3 channels were not in the training either; nothing checks",
        "  for them.",
        "- The restored ZLP is the quasi-Dirac of the training truth, not a measurement of the",
        "  source's energy spread; it sits where the training put energy zero (see the",
        "  configuration's `zlp_centre`).",
        "- Generated training data only: features unlike Lorentzians or the continua listed above may",
        "  be restored with the shape of what the network knows.",
        "",
        "## Training",
        f"- parameters: {t['parameters']:,}",
        f"- epochs run: {t.get('epochs_run', '?')}, best validation loss {t.get('best_val_loss', float('nan')):.3e}",
        f"- wall time: {t.get('wall_time_s', float('nan')) / 60:.1f} min on {t.get('hardware', '?')}",
        *initial_stage_lines(t.get("initial_stage")),
        f"- seed: {config.seed} (training batch i of epoch e: SeedSequence([seed, 0, e, i]); "
        "validation: SeedSequence([seed, 1]))",
        "",
        "## Configuration",
        "```yaml",
        yaml.safe_dump(t["config"], sort_keys=False).rstrip(),
        "```",
        "",
    ]
    Path(path).write_text("\n".join(lines))


def set_card_section(card_path, heading: str, body: str) -> None:
    """Replace the section ``heading`` of a card where it stands, or add it at the end.

    Parameters
    ----------
    card_path : str or Path
        The card (Markdown); created if missing.
    heading : str
        The section's heading line, e.g. ``"## Evaluation"``. Only a line that is exactly this
        heading (trailing spaces aside, outside fenced code blocks) is the section: ``"### Evaluation
        split"`` or ``"## Evaluation notes"`` are not. The first such line is replaced.
    body : str
        The section's text, written below the heading.

    Notes
    -----
    The section runs to the next heading of its level or a higher one (its subsections go with
    it); the sections after it stay where they are, unchanged.
    """
    card_path = Path(card_path)
    text = card_path.read_text() if card_path.exists() else ""
    heading = heading.strip()
    level = len(heading) - len(heading.lstrip("#"))
    section = f"{heading}\n\n{body.strip()}\n"
    lines = text.splitlines(keepends=True)
    start = stop = None
    fenced = False
    for index, line in enumerate(lines):
        stripped = line.rstrip()
        if stripped.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        if start is None:
            if stripped == heading:
                start = index
        elif _heading_level(stripped) and _heading_level(stripped) <= level:
            stop = index
            break
    if start is None:
        card_path.write_text((text.rstrip() + "\n\n" if text.strip() else "") + section)
        return
    before = "".join(lines[:start])
    after = "".join(lines[stop:]) if stop is not None else ""
    card_path.write_text(before + section + ("\n" + after if after else ""))


def _heading_level(line: str) -> int:
    """The level of a Markdown ATX heading line (``"## A"``: 2), 0 for any other line."""
    hashes = len(line) - len(line.lstrip("#"))
    return hashes if 0 < hashes <= 6 and (len(line) == hashes or line[hashes] == " ") else 0
