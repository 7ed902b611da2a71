"""One line per exception, for a run's status message and a log."""

import errno

from matplotlib.figure import Figure
from typer.testing import CliRunner

from gpu_catalog.checks import printable
from gpu_catalog.errors import UserError, one_line
from orchestrator.cli.main import app
from tests.conftest import REPO


def test_a_user_error_is_its_own_message_and_others_say_their_type():
    assert one_line(UserError("no run matching 'x'\nmore detail")) == "no run matching 'x'"
    assert one_line(OSError("disk full\ntraceback-ish detail")) == "OSError: disk full"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(UserError()) == "UserError"


def test_control_characters_are_shown_not_obeyed():
    assert printable("model \x1b[31mred\x07 tab\tand\nline") == "model \\x1b[31mred\\x07 tab\tand\nline"
    assert printable("café [bold]") == "café [bold]"  # text and rich markup pass; markup is display.esc's job


def test_a_librarys_styling_in_its_message_is_dropped_and_other_control_characters_stay_for_printable():
    class NoCloudAccessError(Exception):
        pass

    said = one_line(NoCloudAccessError("Cloud access is not set up. Run: \x1b[1msky check\x1b[0m\x1b]0;title\x07"))
    assert printable(said) == "NoCloudAccessError: Cloud access is not set up. Run: sky check\\x1b]0;title\\x07"


def test_a_full_disk_says_what_to_do_where_the_write_names_no_file(tmp_path, monkeypatch):
    """A plot's savefig on a full disk said only "error: No space left on device.": neither where nor what next."""
    def full_disk(fig, path, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Figure, "savefig", full_disk)
    result = CliRunner().invoke(app, ["simulate", "--trace", str(REPO / "benchmarks" / "traces" / "team-week.csv"),
                                      "--out", str(tmp_path / "sim")])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "No space left on device: free space on the disk orch was writing to" in " ".join(result.stderr.split())
