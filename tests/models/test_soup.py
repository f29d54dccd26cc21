"""Weight averaging: the soup's weights are the members' mean, its card lists them, its
calibration is refitted, and members that do not fine-tune the same base are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file
from tiny_model import build_tiny_model, template_sentences

from app.errors import ModelError
from models.data import Example, write_csv
from models.evaluate import load_scorer
from models.registry import read_card, write_card
from models.scoring import weights_digest
from models.soup import average_weights, main, make_soup


@pytest.fixture(scope="module")
def members(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two tiny models trained from different seeds, each with a card."""
    out = []
    for seed, commercial in ((0, True), (1, False)):
        d = build_tiny_model(tmp_path_factory.mktemp(f"member{seed}"), steps=40, seed=seed)
        write_card(
            d,
            {
                "name": f"member-{seed}",
                "summary": f"tiny model, seed {seed}",
                "licences": ["MIT" if commercial else "CC BY-NC-SA 3.0"],
                "commercial_use": commercial,
                "base_model": {"name": "tiny"},
                "training": {"sources": []},
            },
        )
        out.append(d)
    return out


def test_the_soup_is_the_mean_of_the_members_weights(members: list[Path], tmp_path: Path):
    out = tmp_path / "soup"
    average_weights(members, out)
    soup = load_file(str(out / "model.safetensors"))
    a, b = (load_file(str(m / "model.safetensors")) for m in members)
    assert set(soup) == set(a)
    for name, tensor in soup.items():
        assert tensor.dtype == a[name].dtype
        expected = (a[name].astype(np.float64) + b[name].astype(np.float64)) / 2
        np.testing.assert_allclose(tensor.astype(np.float64), expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(soup[next(iter(soup))], a[next(iter(a))])

    weighted = tmp_path / "weighted"
    average_weights(members, weighted, weights=[3, 1])
    w = load_file(str(weighted / "model.safetensors"))
    name = next(iter(w))
    np.testing.assert_allclose(w[name], 0.75 * a[name] + 0.25 * b[name], rtol=1e-5, atol=1e-6)


def test_members_of_another_architecture_are_refused(members: list[Path], tmp_path: Path):
    other = shutil.copytree(members[1], tmp_path / "other")
    state = load_file(str(other / "model.safetensors"))
    state.pop(sorted(state)[0])
    save_file(state, str(other / "model.safetensors"))
    with pytest.raises(ModelError, match="same base"):
        average_weights([members[0], other], tmp_path / "soup")
    with pytest.raises(ModelError, match="at least two"):
        average_weights(members[:1], tmp_path / "soup")
    with pytest.raises(ModelError, match="non-negative weight per member"):
        average_weights(members, tmp_path / "soup", weights=[1.0])


def test_the_card_lists_every_member_and_commercial_use_needs_all(
    members: list[Path], tmp_path: Path
):
    card = make_soup(members, tmp_path / "soup", name="sesame-sentiment")
    assert [m["name"] for m in card["soup"]["members"]] == ["member-0", "member-1"]
    assert [m["sha256"] for m in card["soup"]["members"]] == [weights_digest(m) for m in members]
    assert card["commercial_use"] is False  # one member is non-commercial
    assert card["licences"] == ["CC BY-NC-SA 3.0", "MIT"]
    assert card["sha256"] == weights_digest(tmp_path / "soup")
    assert read_card(tmp_path / "soup") == card
    assert "## Weight average" in (tmp_path / "soup" / "MODEL_CARD.md").read_text()
    both = make_soup([members[0], members[0]], tmp_path / "soup2", name="x")
    assert both["commercial_use"] is True


def test_the_cli_fits_the_soups_own_temperature_and_saves_a_reference(
    members: list[Path], tmp_path: Path
):
    # a member's calibration belongs to the member; the soup's is fitted on the file given
    config = json.loads((members[0] / "config.json").read_text())
    assert "sesame_calibration" not in config
    calibration = tmp_path / "calibration.csv"
    write_csv(
        [Example(text=t, label=lab, source="cal") for t, lab in template_sentences(12, seed=5)],
        calibration,
    )
    out = tmp_path / "soup"
    assert (
        main([str(out), "--member", str(members[0]), "--member", str(members[1]), "--name", "s"])
        == 0
    )
    assert load_scorer(out).calibration is None
    assert (
        main(
            [str(out), "--member", str(members[0]), "--member", str(members[1]), "--name", "s"]
            + ["--calibration-file", str(calibration), "--threads", "1"]
        )
        == 0
    )
    scorer = load_scorer(out)
    assert scorer.calibration is not None and scorer.calibration.n == 36
    assert read_card(out)["calibration"]["temperature"] == scorer.calibration.temperature
    # the test settings have no report sentences and a soup no evaluation split: nothing to
    # profile, so no reference (monitoring says so rather than compare against nothing)
    assert not (out / "reference_profile.json").exists()
