"""`deepcollapse list | reproduce | report`: clear errors, no traceback."""

from typer.testing import CliRunner

from deepcollapse.cli import app

runner = CliRunner()


def test_reproduce_without_the_data_is_a_clear_error(tmp_path):
    r = runner.invoke(app, ["reproduce", "garrod-fig7", "--smoke", "--out", str(tmp_path / "out")],
                      env={"DEEPCOLLAPSE_DATA": str(tmp_path / "empty")})
    assert r.exit_code == 2
    assert "not found" in r.output and "DEEPCOLLAPSE_DATA" in r.output
