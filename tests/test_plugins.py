import sys

import pytest

from glfpinn.plugins import is_import_path, load_object


def test_a_module_path_and_a_dotted_name():
    from glfpinn.training.plan import OptimizationPlan

    assert load_object("glfpinn.training:OptimizationPlan") is OptimizationPlan
    assert load_object("glfpinn.training:OptimizationPlan.adam_then_lbfgs") is not None


def test_a_file_path_is_loaded_once_per_process(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text("CALLS = []\nCALLS.append(1)\n\ndef make():\n    return 42\n")
    make = load_object(f"{path}:make")
    assert make() == 42
    again = load_object(f"{path}:CALLS")
    assert again == [1]  # the file ran once
    assert any(name.startswith("glfpinn_plugin_mine_") for name in sys.modules)


@pytest.mark.parametrize(
    ("spec", "fragment"),
    [
        ("no_such_module_xyz:thing", "no module named 'no_such_module_xyz'"),
        ("glfpinn.training:Nope", "'glfpinn.training' has no 'Nope'"),
        ("missing/file.py:make", "file 'missing/file.py' does not exist"),
        ("justaname", "must look like package.module:Name"),
        (":make", "must look like package.module:Name"),
    ],
)
def test_bad_paths_are_one_line_errors(spec, fragment):
    with pytest.raises(ValueError) as info:
        load_object(spec, "model")
    message = str(info.value)
    assert fragment in message and message.startswith("model ") and "\n" not in message


def test_a_file_that_fails_is_a_one_line_error(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text("raise RuntimeError('boom')\n")
    with pytest.raises(ValueError, match="running .*broken.py' failed .RuntimeError: boom"):
        load_object(f"{path}:make")


def test_registry_names_are_not_import_paths():
    assert is_import_path("pkg.mod:make") and is_import_path("a/b.py:make")
    assert not is_import_path("glf") and not is_import_path("reaction-diffusion-20d")
