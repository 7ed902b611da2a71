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


def test_a_librarys_styling_in_its_message_is_dropped_and_other_control_characters_stay_for_printable():
    class NoCloudAccessError(Exception):
        pass

    said = one_line(NoCloudAccessError("Cloud access is not set up. Run: \x1b[1msky check\x1b[0m\x1b]0;title\x07"))
    assert printable(said) == "NoCloudAccessError: Cloud access is not set up. Run: sky check\\x1b]0;title\\x07"
