"""The shared checks themselves: what they accept matters as much as what they refuse."""

import math
import os
import re
from pathlib import Path

import pytest

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.units import above_texts, usd_text


@pytest.mark.parametrize("value, kwargs", [
    (math.nan, {}), (math.inf, {}), (-math.inf, {"low": 0}), (True, {}), ("1", {}), (None, {}),
    (0, {"low": 0, "above": True}), (2, {"high": 1}), (1.5, {"whole": True}), (-1, {"low": 0}),
])
def test_number_refuses(value, kwargs):
    with pytest.raises(UserError):
        checks.number(value, "x", **kwargs)


def test_number_accepts_the_edges_and_whole_floats():
    assert checks.number(0, "x", 0) == 0 and checks.number(1, "x", 0, 1) == 1
    assert checks.number(3.0, "x", whole=True) == 3 and isinstance(checks.number(3.0, "x", whole=True), int)
    assert checks.optional_number(None, "x", 0) is None


def test_range_message_names_both_bounds():
    with pytest.raises(UserError, match=r"x must be above 0 and at most 16777216, got 0\."):
        checks.number(0, "x", 0, 2**24, above=True)


def test_yaml_refuses_duplicates_but_keeps_merge_keys():
    with pytest.raises(UserError, match="duplicate key 'a'"):
        checks.parse_yaml("a: 1\nb: 2\na: 3\n", "t")
    merged = checks.parse_yaml("base: &b {lr: 1, r: 8}\njob:\n  <<: *b\n  lr: 2\n", "t")
    assert merged["job"] == {"lr": 2, "r": 8}
    assert checks.parse_yaml("b: &b {r: 8}\njob:\n  <<: [*b, {lr: 1}]\n", "t")["job"] == {"r": 8, "lr": 1}


@pytest.mark.parametrize("text, said", [
    ("<<: {r: 4, r: 64}\n", "duplicate key 'r'"),
    ("<<: [{mb: 4}, {mb: 2}]\n", "duplicate key 'mb' among the mappings `<<:` merges"),
    ("<<: [{<<: {a: 1, a: 2}}]\n", "duplicate key 'a'")])
def test_yaml_refuses_a_key_given_twice_in_what_a_merge_key_merges(text, said):
    """PyYAML flattens what `<<:` merges unchecked: `<<: {r: 4, r: 64}` read as 64, and `<<: [{mb: 4}, {mb: 2}]` as 2,
    with nothing said."""
    with pytest.raises(UserError, match=re.escape(said)):
        checks.parse_yaml(text, "t")


def test_yaml_reads_exponents_as_numbers_as_trainer_configs_mean_them():
    """PyYAML alone reads `1e-4` as text (YAML 1.1); every HF-style config means a number."""
    read = checks.parse_yaml("lr: 1e-4\nbig: 5E9\nsigned: -2e+3\ndotted: 1.5e-3\ncount: 12\nword: e5\nhalf: 1e", "x")
    assert read == {"lr": 1e-4, "big": 5e9, "signed": -2e3, "dotted": 1.5e-3, "count": 12, "word": "e5", "half": "1e"}
    assert isinstance(read["count"], int)


@pytest.mark.parametrize("text, said", [
    ("seed: 1" + "0" * 5000, "a number of thousands of digits, too long to read"),
    ("created: 2001-02-30", "day is out of range for month"),
])
def test_a_value_yaml_reads_but_python_cannot_hold_is_one_error(text, said):
    """PyYAML turns these into an int or a date, which Python refuses with a ValueError (and, for the number,
    advice to change a Python setting)."""
    with pytest.raises(UserError, match=f"job file holds a value that cannot be read \\({said}\\): check it"):
        checks.parse_yaml(text, "job file")
    with pytest.raises(UserError, match="results file: a number of thousands of digits, too long to read"):
        checks.parse_json('{"seed": 1' + "0" * 5000 + "}", "results file")


@pytest.mark.parametrize("value", ["", " ", "\t "])
def test_an_empty_or_blank_path_variable_means_the_default(monkeypatch, value):
    """A blank ORCH_HOME put orch's databases in a folder named ' ' wherever the command ran."""
    monkeypatch.setenv("ORCH_HOME", value)
    assert checks.env_path("ORCH_HOME", "/default/orch") == Path("/default/orch")


@pytest.mark.parametrize("variable", ["ORCH_HARDWARE", "ORCH_CALIBRATION", "ORCH_SKY_CATALOGS"])
def test_a_blank_variable_names_nothing_to_the_commands_that_refuse_a_named_file_that_is_missing(
        tmp_path, monkeypatch, variable):
    """A blank value is the default path (env_path); the check that refuses a named file that is missing read it as
    named, and so refused the default file by the variable's name."""
    from typer.testing import CliRunner

    from orchestrator.cli.main import app
    from tests.conftest import REPO

    monkeypatch.setenv("ORCH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv(variable, " ")
    result = CliRunner().invoke(app, ["plan", str(REPO / "examples" / "tiny.yaml"), "--budget", "1", "--json"])
    assert result.exit_code == 0, result.output


def test_yaml_is_safe():
    with pytest.raises(UserError, match="could not determine a constructor"):
        checks.parse_yaml("x: !!python/object/apply:os.system [echo]\n", "t")


@pytest.mark.parametrize("name", ["tiny", "llama-3.1_8b+lora", "A" * 100, "0x"])
def test_safe_names_pass(name):
    assert checks.safe_name(name) == name


@pytest.mark.parametrize("name", ["", "..", "../x", "/x", "a/b", "a\\b", ".x", "-x", "[red]", "a b", "a\nb", None])
def test_unsafe_names_fail(name):
    with pytest.raises(UserError):
        checks.safe_name(name)


@pytest.mark.parametrize("stem, name", [("my job", "my-job"), ("..", "job"), ("[red]x[/]", "red-x"),
                                        ("llama31-8b-qlora", "llama31-8b-qlora")])
def test_a_file_stem_becomes_a_safe_name(stem, name):
    assert checks.name_from_stem(stem) == name and checks.safe_name(name)


def test_read_text_names_the_file(tmp_path):
    path = tmp_path / "x.yaml"
    path.write_bytes(b"a: \xff")
    with pytest.raises(UserError, match=f"'{path}' is not UTF-8"):
        checks.read_text(path)


def test_output_paths(tmp_path):
    (tmp_path / "file").write_text("x")
    assert checks.output_file(tmp_path / "out.csv") == tmp_path / "out.csv"
    assert checks.output_folder(tmp_path / "new" / "deeper", parents=True) == tmp_path / "new" / "deeper"
    with pytest.raises(UserError, match="folder '.*new' does not exist; create it first"):
        checks.output_folder(tmp_path / "new" / "deeper")  # a named folder's parent must be there: a typo else
    for bad in (lambda: checks.output_file(tmp_path / "missing" / "out.csv"),
                lambda: checks.output_file(tmp_path),
                lambda: checks.output_folder(tmp_path / "file"),
                lambda: checks.output_folder(tmp_path / "file" / "sub")):
        with pytest.raises(UserError):
            bad()
    assert not (tmp_path / "new").exists()  # checking creates nothing
    with pytest.raises(UserError, match="is the file system's root"):  # `report --out /` wrote report.md into /
        checks.output_folder("/")


@pytest.mark.parametrize("usd, text", [(12.345, "$12.35"), (0.5, "$0.500"), (0.0042, "$0.0042"), (0.0, "$0.000"),
                                       (1e-320, "$1.0e-320")])
def test_dollars_for_people_never_run_to_a_line_of_zeros(usd, text):
    assert usd_text(usd) == text


@pytest.mark.parametrize("value, limit, texts", [
    (8.04, 8, ("8.04", "8.00")), (9.5, 8, ("9.5", "8.0")), (1.0000001, 1, ("1.001", "1.000")),
    (1234.56, 1000, ("1,234.6", "1,000.0"))])
def test_a_value_over_its_limit_is_written_above_it(value, limit, texts):
    """`misses deadline: 8.0 h > 8 h` said a job of 8.04 h missed an 8 h deadline in words that contradict it."""
    assert above_texts(value, limit) == texts


@pytest.mark.parametrize("char", ["\u202a", "\u202e", "\u2066", "\u2069", "\u200e", "\u200f", "\u061c"])
def test_bidirectional_controls_are_escaped_so_a_line_cannot_show_reversed(char):
    """U+202E and its kin make a terminal show what follows in another order ("Trojan Source"), so a name can read
    as something it is not."""
    assert checks.printable(f"job{char}x") == f"job\\u{ord(char):04x}x"


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u200b"])
def test_line_separators_and_the_zero_width_space_are_escaped(char):
    """U+2028 starts a new line in some terminals, and a zero-width space makes a name look like another."""
    assert checks.printable(f"job{char}x") == f"job\\u{ord(char):04x}x"


@pytest.mark.parametrize("value", ["x" * 10_000, "a b " * 2_500, "/tmp/" + "d/" * 5_000 + "job.yaml"])
def test_a_long_value_in_an_error_line_is_cut_around_an_ellipsis_and_the_advice_kept(value):
    line = checks.one_line(f"unknown model '{value}'. List them with `orch catalog models`.")
    assert len(line) < 150 and "…" in line
    assert line.startswith(f"unknown model '{value[:20]}") and line.endswith(f"{value[-10:]}'. List them with "
                                                                            "`orch catalog models`.")


def test_a_line_break_or_tab_in_a_quoted_value_is_shown_not_folded():
    """Folded into a space, `job file 'a\nb.yaml' does not exist` named 'a b.yaml', a file that did exist; the
    message's own line breaks (a YAML parser's) still fold."""
    assert checks.one_line("job file 'a\nb.yaml' does not exist.\n  Copy one\tfrom examples/.") == (
        "job file 'a\\nb.yaml' does not exist. Copy one from examples/.")
    assert checks.one_line('unknown model "a\tb": list them') == 'unknown model "a\\tb": list them'
    assert checks.one_line("it can't be\nread, don't") == "it can't be read, don't"


def test_a_value_of_a_readable_length_is_left_whole():
    message = f"job file '/home/alice/{'projects/' * 8}job.yaml' does not exist. Copy one from examples/ to start."
    assert checks.one_line(message) == message


@pytest.mark.parametrize("variable", ["ORCH_HOME", "ORCH_CACHE", "ORCH_CALIBRATION", "ORCH_HARDWARE",
                                      "ORCH_SKY_CATALOGS"])
def test_a_path_variable_that_is_not_utf8_is_refused_by_its_name(monkeypatch, variable):
    """A byte that is not UTF-8 reaches Python as a lone surrogate: ORCH_HOME made its folders, then sqlite refused
    the path, a traceback after half a job was queued."""
    monkeypatch.setenv(variable, os.fsdecode(b"/tmp/orch-\xff"))
    for read in (checks.env_value, lambda v: checks.env_path(v, "/default")):
        with pytest.raises(UserError, match=rf"^{variable} '/tmp/orch-\\xff' is not UTF-8 text: set it"):
            read(variable)


def test_a_home_folder_that_is_not_utf8_is_refused_by_the_variable_that_would_fix_it(monkeypatch):
    monkeypatch.delenv("ORCH_CACHE", raising=False)
    monkeypatch.setenv("HOME", os.fsdecode(b"/home/\xff"))
    with pytest.raises(UserError, match=r"^ORCH_CACHE '/home/\\xff/.cache/orch' is not UTF-8 text"):
        checks.env_path("ORCH_CACHE", "~/.cache/orch")


@pytest.mark.parametrize("check", [checks.output_file, checks.output_folder])
def test_an_output_path_that_is_not_utf8_is_refused_before_any_work(tmp_path, check):
    """`orch train --output $'\\xff.d'` trained the whole job, then failed saving the tokenizer there (exit 1)."""
    with pytest.raises(UserError, match=r"^--output '.*/\\xff\.d' is not UTF-8 text: give a path written in UTF-8"):
        check(tmp_path / os.fsdecode(b"\xff.d"), "--output")
    assert list(tmp_path.iterdir()) == []


def test_read_text_drops_a_byte_order_mark_and_counts_it_in_a_bad_byte_s_place(tmp_path):
    """Windows editors start UTF-8 files with one: it became part of a CSV's first column name."""
    path = tmp_path / "x.csv"
    path.write_bytes(b"\xef\xbb\xbfInstanceType,Price\n")
    assert checks.read_text(path) == "InstanceType,Price\n"
    path.write_bytes(b"\xef\xbb\xbfab\xff")
    with pytest.raises(UserError, match=r"is not UTF-8 text \(byte 5\)"):
        checks.read_text(path)


def test_an_input_that_is_a_device_is_not_said_to_be_missing():
    with pytest.raises(UserError, match="'/dev/null' is not a regular file"):
        checks.input_file("/dev/null", "ORCH_CALIBRATION file", "fix the path.")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_output_folder_that_takes_no_new_file_is_refused_before_any_work():
    """access() says yes to root everywhere: `bench --out /proc/x.jsonl` ran every point, then failed at the write."""
    with pytest.raises(UserError, match="folder '/proc' takes no new file"):
        checks.output_file(Path("/proc/x.jsonl"), "--out")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_an_existing_output_folder_that_takes_no_new_file_is_refused_before_any_work():
    """`orch report --out /proc` did all its work, then failed at the first write."""
    with pytest.raises(UserError, match="folder '/proc' takes no new file"):
        checks.output_folder(Path("/proc"), "--out")


def test_a_relative_path_in_an_environment_variable_is_made_absolute_where_it_is_read(tmp_path, monkeypatch):
    """ORCH_HOME=rel_h stored `rel_h/jobs/...` in runs.db, which pointed nowhere from any other folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORCH_HOME", "rel_h")
    assert checks.env_path("ORCH_HOME", "~/.local/share/orch") == tmp_path / "rel_h"


DURATIONS = [(0.36, "0.36 s", "0.36 s"), (30, "30 s", "30 s"), (41.2, "41 s", "42 s"), (59.6, "1 min", "1 min"),
             (200, "3 min", "4 min"), (5400, "1.5 h", "1.5 h"), (5364, "1.49 h", "1.49 h"), (5365, "1.49 h", "1.5 h"),
             (86400 * 50, "1,200 h", "1,200 h")]


@pytest.mark.parametrize("seconds, said, least", DURATIONS)
def test_a_duration_is_said_in_the_unit_that_reads(seconds, said, least):
    """`--deadline 30s` was echoed as "the 0.00833333 h deadline", and its least value as "0.02 h"."""
    from gpu_catalog.units import duration_text

    assert duration_text(seconds) == said and duration_text(seconds, round_up=True) == least


def test_yaml_orch_writes_reads_back_as_written():
    """A bench point's id, `091967168166`, was written plain as the job's name, and orch's reader refused the file
    orch had written (a zero-padded whole number); `1e5` came back a number."""
    from gpu_catalog import checks

    data = {"name": "091967168166", "tag": "1e5", "octal": "0700", "rate": 1e-05, "steps": 12, "text": "abc"}
    assert checks.parse_yaml(checks.dump_yaml(data), "written") == data
