"""One line per exception, for a run's status message and a log."""

from gpu_catalog.checks import printable
from gpu_catalog.errors import UserError, one_line


def test_a_user_error_is_its_own_message_and_others_say_their_type():
    assert one_line(UserError("no run matching 'x'\nmore detail")) == "no run matching 'x'"
    assert one_line(OSError("disk full\ntraceback-ish detail")) == "OSError: disk full"
    assert one_line(KeyError()) == "KeyError"
    assert one_line(UserError()) == "UserError"


def test_control_characters_are_shown_not_obeyed():
    assert printable("model \x1b[31mred\x07 tab\tand\nline") == "model \\x1b[31mred\\x07 tab\tand\nline"
    assert printable("café [bold]") == "café [bold]"  # text and rich markup pass; markup is display.esc's job
