"""Writing files that other processes may be creating or tidying at the same time."""

from pathlib import Path

import pytest

from glfpinn import _io
from glfpinn.runs.directory import _check_writable


def test_make_folders_survives_a_parent_removed_between_two_mkdirs(tmp_path, monkeypatch):
    """What a neighbour's writability check does: it removes the empty parents it made just
    after this process made them and before it made its own folder inside."""
    leaf = tmp_path / "bench" / "experiment" / "cell"
    real_mkdir = Path.mkdir
    removed = []

    def racing_mkdir(self, mode=0o777, parents=False, exist_ok=False):
        if self == leaf and not removed and self.parent.exists():
            self.parent.rmdir()  # the neighbour's tidy-up, at the worst moment
            removed.append(self.parent)
        return real_mkdir(self, mode, parents, exist_ok)

    monkeypatch.setattr(Path, "mkdir", racing_mkdir)
    _io.make_folders(leaf)
    assert removed and leaf.is_dir()


def test_a_writability_check_survives_the_race_and_leaves_no_folder(tmp_path, monkeypatch):
    leaf = tmp_path / "out" / "main" / "glf" / "seed1"
    real_mkdir = Path.mkdir
    raced = []

    def racing_mkdir(self, mode=0o777, parents=False, exist_ok=False):
        if self == leaf and not raced and self.parent.exists():
            self.parent.rmdir()
            raced.append(True)
        return real_mkdir(self, mode, parents, exist_ok)

    monkeypatch.setattr(Path, "mkdir", racing_mkdir)
    _check_writable(leaf)
    assert raced and not (tmp_path / "out").exists()


def test_make_folders_still_fails_on_a_file_in_the_way(tmp_path):
    (tmp_path / "taken").write_text("")
    with pytest.raises(FileExistsError):
        _io.make_folders(tmp_path / "taken")
    with pytest.raises(NotADirectoryError):
        _io.make_folders(tmp_path / "taken" / "below")
