"""`orch plan JOB.yaml --budget USD`: every target ranked by cost or time, the rejected ones with their reasons.

The one command people run again and again while they try settings, so it stands apart from the typer app: argparse
and the planner, nothing else (no typer, pydantic or rich unless a table is printed). `orch plan` starts here
directly (orchestrator/cli/entry.py); the typer app passes its arguments through.
"""

import argparse
import difflib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from orchestrator import preflight
from orchestrator.cli import fold
from orchestrator.cli.argv_forms import (
    UnreadableOptions,
    argparse_options,
    json_wanted,
    left_over_word,
    spelled_as_orch,
)
from orchestrator.cli.limits import (
    DURATION_FORMS,
    USD_FORMS,
    hours_amount,
    missing_value_hint,
    usd_amount,
    whole_amount,
)
from orchestrator.cli.pipe import reader_left
from orchestrator.cli.planning import data_and_notes, plan_job
from orchestrator.cli.serialize import INTERRUPTED_EXIT_CODE, USAGE_ERROR_EXIT_CODE, error_dict, plan_dict
from orchestrator.planner import OBJECTIVES, no_option_message

MAX_TOP = 10_000  # rows of a plan's table: more than any catalog has offers; 1e30 was taken


class _Refused(Exception):
    """A malformed flag, said once by `run` (one line, exit 2, and with --json the same as JSON on stdout), as every
    orch command answers it. Not a ValueError: argparse would turn one into its own message."""


class _Parser(argparse.ArgumentParser):
    # Another command's option given to plan, said to be that command's as every typer command says it (`--cpu-slots`
    # was offered --no-spot): orch's program sets it, asking its other commands only when such a mistake is made
    option_owners: Callable[[str], str | None] = staticmethod(lambda option: None)

    def error(self, message: str):
        missing = re.fullmatch(r"argument (\S+): expected one argument", message)
        hint = missing_value_hint(missing.group(1)) if missing else ""
        raise _Refused(f"{checks.one_line(message)}{hint}; see `orch plan --help`.")

    def parse_known_args(self, args=None, namespace=None):
        """An unknown option is said before anything else, with the nearest known ones in the typer commands' words:
        argparse checks the required --budget first, so `--budjet 20` read "--budget is required", and `--topp 3`
        read "unrecognized arguments" with no hint."""
        for token in sys.argv[1:] if args is None else args:
            if token == "--":  # what follows is positional, whatever it looks like
                break
            name = token.split("=", 1)[0]  # `--budjet=20` as well as `--budjet 20`
            if name.startswith("-") and name != "-" and not checks.is_number_text(name) and \
                    name not in self._option_string_actions:
                near = difflib.get_close_matches(name, list(self._option_string_actions))  # click's own matching
                self.error(self.option_owners(name) or
                           f"No such option: {name}" + (f" (Possible options: {', '.join(near)})" if near else ""))
        return super().parse_known_args(args, namespace)


class _Once(argparse.Action):
    """Stores a flag's value, refusing a second, different one: argparse keeps the last silently, so `--budget 20 ...
    --budget 3` planned with $3 unsaid. The same value twice is harmless."""

    def __call__(self, parser, namespace, values, option_string=None):
        given = vars(namespace).setdefault("_given", {})
        if self.dest in given and given[self.dest] != values:
            first, second = (f"{v:g}" if isinstance(v, float) else v for v in (given[self.dest], values))
            parser.error(f"{option_string} given twice, as {first} and {second}: give it once")
        given[self.dest] = values
        setattr(namespace, self.dest, values)


def _flag_value(read: Callable[[str, str], float], flag: str) -> Callable[[str], float]:
    """argparse's `type` for a flag read by `read`: a mistake is the one `error: ...` line the typer commands print
    for the same flag, not argparse's "argument --budget: invalid float value"."""
    def convert(text: str) -> float:
        try:
            return read(text, flag)
        except UserError as exc:
            raise _Refused(str(exc)) from None
    return convert


def _job_path(text: str) -> Path:
    """The job file's path; '' is no file (Path('') is the working folder)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("the job file is empty: give a job file")
    return Path(text)


def parser() -> argparse.ArgumentParser:
    # allow_abbrev=False: argparse took `--bud 3` for `--budget 3`, overriding the budget given before it
    parse = _Parser(prog="orch plan", description="Rank every local and cloud target for a job under "
                                    "a budget and an optional deadline.", allow_abbrev=False)
    parse.add_argument("job", type=_job_path, help="Job YAML (see examples/).")
    parse.add_argument("--budget", type=_flag_value(usd_amount, "--budget"), required=True, action=_Once,
                       metavar="USD", help=f"Most you will spend, in US dollars: {USD_FORMS}.")
    parse.add_argument("--deadline", type=_flag_value(hours_amount, "--deadline"), action=_Once, metavar="HOURS",
                       help=f"Time until the job must be done: {DURATION_FORMS}.")
    parse.add_argument("--objective", default="cost", action=_Once, metavar="|".join(OBJECTIVES),
                       help=f"Rank by {' or '.join(OBJECTIVES)} (default: %(default)s).")
    parse.add_argument("--providers", "--provider", action=_Once,  # one spelling for every command (ProvidersOption)
                       metavar="LIST", help="Comma list of allowed providers (e.g. local,runpod).")
    spot = parse.add_mutually_exclusive_group()  # --spot --no-spot: the last won, unsaid
    spot.add_argument("--spot", dest="spot", action="store_true", default=True, help="Allow spot (interruptible) "
                      "offers (the default).")
    spot.add_argument("--no-spot", dest="spot", action="store_false", help="On-demand offers only.")
    parse.add_argument("--local-cost", action=_Once, metavar="amortized|marginal",
                       help="Price local cards amortized or marginal (default: the hardware file's).")
    parse.add_argument("--top", type=_flag_value(whole_amount, "--top"), default=10, action=_Once, metavar="N",
                       help="Rows to show in each table (default: %(default)s).")
    parse.add_argument("--max-usd-per-hour", type=_flag_value(usd_amount, "--max-usd-per-hour"), action=_Once,
                       metavar="USD", help=f"Most to pay per GPU-hour, on top of the budget: {USD_FORMS}.")
    parse.add_argument("--json", dest="as_json", action="store_true", help="Print JSON for scripts instead of tables.")
    return parse


def _spot_note(result) -> str | None:
    """Where the plan chose a cloud spot offer: plan does not load SkyPilot to ask whether a storage cloud is enabled
    (it answers in a fraction of a second), and `orch launch` passes over spot offers without one, so it may choose
    another offer than the plan showed."""
    chosen = result.chosen
    if chosen is None or not chosen.offer.spot or chosen.offer.is_local:
        return None
    return ("the chosen offer is spot: `orch launch` keeps its checkpoints in a storage cloud (enable one: `sky "
            "check`) and passes over spot offers without one; `orch launch JOB --dry-run` names the offer a launch "
            "here takes.")


def _cloud_note(result, job: Path) -> str | None:
    """What refuses a launch on the chosen cloud offer now and is no part of the plan (a gated model without
    HF_TOKEN): the README's own plan of Llama-3.1-8B chose an Azure offer unsaid, and only `orch submit` told a
    first user that every cloud would refuse the job."""
    chosen = result.chosen
    if chosen is None or chosen.offer.is_local:
        return None
    problems = preflight.cloud_only_problems(result.spec, job)
    return f"`orch launch` here would refuse the chosen offer: {'; '.join(problems)}." if problems else None


def run(argv: list[str], option_owners: Callable[[str], str | None] | None = None) -> int:
    """`orch plan ARGV`; `option_owners`: the message for an option of orch's other commands (_Parser)."""
    as_json = json_wanted(argv)
    parse = parser()
    if option_owners is not None:
        parse.option_owners = option_owners
    try:  # options as the typer commands read them too (`--spot=false`, `--max_usd_per_hour 2`, `--budget -5usd`)
        try:
            typed, argv = argv, spelled_as_orch(argparse_options(parse), argv)
        except UnreadableOptions as exc:
            parse.error(str(exc))
        if "--" in argv and len(after := argv[argv.index("--") + 1:]) > 1:  # argparse: "--budget is required"
            parse.error(f"after `--` comes the job file alone, and {' '.join(after[1:])} follows it: put the "
                        "options before `--`")
        # argparse: "unrecognized arguments: 4090"; read as typed, the option named as the user wrote it
        if left_over := left_over_word(argparse_options(parse), 1, typed):
            parse.error(left_over)
        args = parse.parse_args(argv)  # a malformed flag: one line, exit 2
        checks.number(args.top, "--top", 1, MAX_TOP, whole=True)
        if sys.stderr.isatty():  # a first count of the data's tokens takes seconds: display's progress notes say so
            from orchestrator.cli import display  # noqa: F401
        model, _, result = plan_job(args.job, args.budget, args.deadline, args.objective, args.spot, args.providers,
                                    local_cost=args.local_cost, max_usd_per_hour=args.max_usd_per_hour)
        said = [note for note in (_cloud_note(result, args.job), _spot_note(result)) if note]
        data, notes = data_and_notes(args.job, model, result)
        notes += said
        refusal = no_option_message(result) if result.chosen is None else None
        if args.as_json:
            # one line (the C encoder); a plan that found nothing is the document, with its error in it
            print(json.dumps({**plan_dict(result), "data": data, "notes": notes,
                              **(error_dict(refusal) if refusal else {})}))
        else:
            from orchestrator.cli import display

            display.show_plan(result, args.top)
            display.show_data_size(data, result.spec.dataset is not None)
        sys.stdout.flush()  # under the chosen line they are about, on a terminal: above the tables they scrolled away
        for note in said:
            fold.note(f"note: {note}")
        if refusal:
            return _refuse(refusal, json_too=False)
    except (UserError, _Refused) as exc:
        return _refuse(str(exc), as_json)
    except BrokenPipeError:  # `orch plan ... | head`: the reader left
        raise reader_left() from None
    except KeyboardInterrupt:  # Ctrl-C in a first count of the data's tokens: a traceback, where launch said this
        print("interrupted.", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE
    except (OSError, RuntimeError) as exc:  # as the typer commands say them (errors.user_errors)
        if (said := checks.last_resort(exc)) is None:
            raise
        return _refuse(str(said), as_json)
    return 0


def _refuse(message: str, json_too: bool) -> int:
    print(f"error: {checks.one_line(message)}", file=sys.stderr)
    if json_too:
        print(json.dumps(error_dict(message)))
    return USAGE_ERROR_EXIT_CODE
