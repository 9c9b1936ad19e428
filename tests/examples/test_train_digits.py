"""The README's main job: trains on the shipped digits, reloads and exports."""

from __future__ import annotations

import os

from hybrid.examples import train_digits


def test_shipped_digits_dataset_loads() -> None:
    images, labels = train_digits.load_digits()
    assert images.shape == (1797, 64) and labels.shape == (1797,)
    assert images.min() >= 0 and images.max() <= 1 and set(labels) == set(range(10))


def test_main_job_trains_reloads_and_exports(tmp_path, capsys) -> None:
    train_digits.main(["--epochs", "1", "--out", str(tmp_path)])
    text = capsys.readouterr().out
    assert "eager epoch 0" in text and "hybridized epoch 0" in text
    assert "compiled epoch 0" in text
    assert "same predictions True, same outputs True" in text
    for mode in ("hybridized", "compiled"):
        accuracy = float(text.split(f"{mode} epoch 0: test accuracy ")[1].split(",")[0])
        assert accuracy > 0.8
    assert os.path.exists(tmp_path / "digits-mlp-symbol.json")
    assert os.path.exists(tmp_path / "digits-mlp-0000.params")
