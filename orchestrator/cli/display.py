"""The one place that formats output for people: rich tables and short summaries. Everything else returns data."""

import json
import logging
import math
import sys
import time
from pathlib import Path

from rich import box
from rich.console import Console, ConsoleOptions
from rich.markup import escape as _escape_markup
from rich.measure import Measurement
from rich.segment import Segment
from rich.table import Table as RichTable
from rich.text import Text

from gpu_catalog.checks import one_line, printable
from gpu_catalog.gpus import GPU
from gpu_catalog.local import LocalGPU
from gpu_catalog.models import ModelShape
from gpu_catalog.names import listed
from gpu_catalog.offer import Offer
from gpu_catalog.units import duration_text, given_duration_text, usd_text
from orchestrator.bench.calibrate import measured_vram_gib
from orchestrator.cli.fold import folded
from orchestrator.cli.pipe import reader_left
from orchestrator.cli.serialize import padding_worth_saying
from orchestrator.estimator.fit import needed_and_usable_gib
from orchestrator.planner import Option, Plan
from orchestrator.runs.status import RunStatus
from orchestrator.runs.store import RunRecord
from orchestrator.schedule.queue import UNBUDGETED_RULE, JobRecord, unbudgeted_usd
from orchestrator.spend import spend_usd, wall_s_so_far


class _Console(Console):
    def print(self, *objects, **kwargs) -> None:
        """A pipe, a log or a script gets each line of text whole, to grep, as `say` gives it (rich folded them at 80
        columns: `wrote .../calibration.json: fitted on 6 of 6 result` and the rest on the next line); a terminal
        folds them to its width. Tables are laid out to the width either way."""
        if not self.is_terminal and all(isinstance(text, str) for text in objects):
            kwargs.setdefault("soft_wrap", True)
        super().print(*objects, **kwargs)

    def on_broken_pipe(self) -> None:
        """`orch ... | head`: ended as every other write to a closed pipe ends orch (orchestrator/cli/pipe.py)."""
        raise reader_left()


# No automatic highlighting: rich coloured every run of digits it found, so "100,000 tokens" showed as two numbers in
# two colours and a run id's digits stood out from its letters; the tables and markup say what is to be seen. No emoji
# codes: a log line, a job or a file name holding `:x:` was shown as an emoji
console = _Console(highlight=False, emoji=False)
err_console = _Console(stderr=True, highlight=False, emoji=False)
UNBOUNDED = 10_000  # a width no table reaches: its natural width
MOST_KEYS_LISTED = 50  # of an imported config's keys not carried over, each with its reason


class Table(RichTable):
    """Tables that fit an 80-column terminal: light rules, one space between columns, numbers (right-aligned
    columns) never wrapped or cut, text folded onto more lines instead. A table that its edges (a space either side,
    a blank line above and below) alone push past the terminal's width drops them, all but the blank line below; one
    narrower than its title widens to keep the title on one line. A caption (notes under the table) starts at the
    left, as other text does: centred, its folded last word stood alone mid-screen."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, box=box.SIMPLE_HEAD, collapse_padding=True, pad_edge=False, caption_justify="left",
                         **kwargs)

    def __rich_console__(self, console: Console, options: ConsoleOptions):
        self.min_width = None
        natural = self.natural_width(console, options)
        self.show_edge = not options.max_width < natural <= options.max_width + 2
        if isinstance(self.title, str):
            self.min_width = console.render_str(self.title).cell_len + (2 if self.show_edge else 0)
        yield from super().__rich_console__(console, options)
        if not self.show_edge:  # the blank bottom edge kept: the next table's title does not run into these rows
            yield Segment.line()

    def natural_width(self, console: Console, options: ConsoleOptions | None = None) -> int:
        """The width that shows every cell on one line, edges included: a terminal 2 narrower still does."""
        self.show_edge = True
        return Measurement.get(console, (options or console.options).update_width(UNBOUNDED), self).maximum

    def add_column(self, header: str = "", *args, justify: str = "left", **kwargs) -> None:
        no_wrap = kwargs.pop("no_wrap", justify == "right")
        super().add_column(header, *args, justify=justify, no_wrap=no_wrap, overflow="ellipsis" if no_wrap else "fold",
                           **kwargs)


def print_json(data) -> None:
    """Plain JSON on stdout, unwrapped, for scripts: valid JSON or nothing (NaN and Infinity are not JSON, and a
    script's parser refuses them), encoded whole before anything is written."""
    sys.stdout.write(json.dumps(data, indent=2, allow_nan=False) + "\n")


def esc(value) -> str:
    """Text from a user (a job or model name, a path, a message) as written: `[red]x[/]` stays those characters
    instead of turning the rest of the line red, and a line break or tab shows escaped, `\\n` or `\\t` (a name
    edited into runs.db with a newline split its table row in two). Every user-provided value printed through rich
    goes through here."""
    return _escape_markup(_on_one_line(value))


def _on_one_line(value) -> str:
    """A user's value as literal text of one line: control characters, line breaks and tabs shown escaped."""
    return printable(str(value)).replace("\n", "\\n").replace("\t", "\\t")


def command_line(text: str, err: bool = False) -> None:
    """A command to copy, on a line of its own and never folded: say() folds at a terminal's width, and a command
    folded over three lines pasted as three (bash ran its first words alone)."""
    (err_console if err else console).print(printable(text), markup=False, highlight=False, soft_wrap=True)


class LogStream:
    """Where a run's log is copied as it grows (`orch logs --follow`, a launch's follow): each piece shown as
    log_text shows it. Raw, a line the trainer echoed with an ESC in it coloured the terminal, cleared it, or set a
    hyperlink, while the same run's log was shown escaped once it ended."""

    def __init__(self, out):
        self.out = out

    def write(self, text: str) -> int:
        return self.out.write(log_text(text, self.out))

    def flush(self) -> None:
        self.out.flush()


def log_text(text: str, stream) -> str:
    """A run's log as `stream` may show it: each control character as its escape (the log quotes the user's data and
    libraries' messages, which must not drive the terminal), and each character the stream's encoding lacks (an
    ASCII locale) as its escape too: `café` in a log ended `orch logs` in a UnicodeEncodeError. A line ended by CRLF
    ends as any other."""
    encoding = getattr(stream, "encoding", None) or "utf-8"
    return printable(text.replace("\r\n", "\n")).encode(encoding, "backslashreplace").decode(encoding)


def say(text: str, err: bool = False) -> None:
    """Plain lines for people (stderr with `err`), printed as written: no markup, no highlighting. At a terminal a
    line wider than it is folded at spaces, its later lines indented (the terminal cut words in two and went back to
    the first column); a pipe, a log or a script gets each line whole, to grep."""
    out = err_console if err else console
    text = printable(text)
    if out.is_terminal:
        text = "\n".join(folded(line, out.width) for line in text.split("\n"))
    out.print(text, markup=False, highlight=False, soft_wrap=True)


def progress(text: str) -> None:
    """A note that slow work has started (`counting tokens in ...`), for a person watching a terminal; a log, a pipe or
    a test reading stderr gets none, so an error after it is still the one line there and stdout is never touched."""
    if err_console.is_terminal:
        say(text, err=True)


class _ProgressNotes(logging.Handler):
    """The `orch.progress` log of code below the CLI (data_size's token count), shown as progress notes: that code
    says what started without importing the CLI's formatter."""

    def emit(self, record: logging.LogRecord) -> None:
        progress(record.getMessage())


_progress_log = logging.getLogger("orch.progress")
_progress_log.addHandler(_ProgressNotes())
_progress_log.setLevel(logging.INFO)
_progress_log.propagate = False  # not also to a root handler a library may have set up


def print_error(message: str) -> None:
    """`error: ...` on one line: a multi-line message (a YAML parser's, an exception's) is folded."""
    err_console.print(f"[bold red]error:[/] {esc(one_line(message))}", highlight=False, soft_wrap=True)


def labelled(label: str, text: str, out: Console | None = None) -> None:
    """`label text` with the text's folded lines under its own start, not under the label: a long line on an
    80-column terminal keeps its shape. Both are markup, their user values already escaped. `out`: stdout's console
    (looked up when called) unless given."""
    out = out or console
    if isinstance(out, _Console) and not out.is_terminal:  # a pipe or a log: the line whole, as _Console.print
        out.print(f"{label} {text}", highlight=False)
        return
    grid = RichTable.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(label, text)
    out.print(grid, highlight=False)


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def _things(count: int, thing: str) -> str:
    """`1 option`, `2 options`: a count with its noun."""
    return f"{count:,} {thing}{'' if count == 1 else 's'}"


def _count(value: float) -> str:
    """A parameter count for people: 8.03 B, 1.3 M, 12 K (a tiny model is not "0.00 B")."""
    for scale, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value:.0f}"


SOURCE_COLUMN_MIN_WIDTH = 120  # a row's source is a sentence: narrower, it would fold every row onto ten lines


def _source_column() -> tuple[bool, str | None]:
    """(show the source column, the caption that says where the sources are when it is left out)."""
    wide = console.width >= SOURCE_COLUMN_MIN_WIDTH
    return wide, None if wide else f"each row's source: --json, or a terminal of {SOURCE_COLUMN_MIN_WIDTH}+ columns"


def show_gpus(gpus: list[GPU]) -> None:
    with_source, caption = _source_column()
    table = Table(title="GPUs (dense tensor TFLOPS; 0 = no such dtype)", caption=caption)
    columns = ("GPU", "VRAM GiB", "BW GB/s", "bf16 TF", "fp16 TF", "CC", "TDP W", "price $")
    for column in columns + (("source",) if with_source else ()):
        table.add_column(column, justify="left" if column in ("GPU", "source") else "right")
    for g in gpus:
        price = f"{g.street_price_usd:,.0f}" if g.street_price_usd else "-"
        table.add_row(esc(g.name), f"{g.vram_gib:g}", f"{g.mem_bw_gbps:,.0f}", f"{g.bf16_tflops:g}",
                      f"{g.fp16_tflops:g}", esc(g.compute_capability), f"{g.tdp_w:.0f}", price,
                      *([esc(g.source)] if with_source else []))
    console.print(table)


def _billions(params: float) -> str:
    """A parameter count in billions, two decimals; under 0.01 B two significant digits, `0.0013` for orch's tiny
    model (1.3 M), which `0.00` hid: no wider than the column's header for a count down to 10 K."""
    billions = params / 1e9
    if billions >= 0.01 or billions <= 0:
        return f"{billions:.2f}"
    return f"{billions:.{1 - math.floor(math.log10(billions))}f}"


MODEL_COLUMNS = ("model", "params B", "layers", "hidden", "heads", "kv", "head_dim", "inter", "vocab", "tied")
MODELS_NARROW_LEFT_OUT = ("head_dim", "inter", "layers")  # a model id folded at 10 characters read as three names


def show_models(models: list[ModelShape]) -> None:
    cells = [dict(zip(MODEL_COLUMNS, (esc(m.name), _billions(m.params), str(m.n_layers), str(m.hidden),
                                      str(m.n_heads), str(m.n_kv_heads), str(m.head_dim), str(m.intermediate),
                                      str(m.vocab), "yes" if m.tied_embeddings else "no"), strict=True))
             for m in models]

    def build(left_out: tuple[str, ...]) -> Table:
        table = Table(title="Model shapes")
        columns = [column for column in MODEL_COLUMNS if column not in left_out]
        for column in columns:
            table.add_column(column, justify="left" if column == "model" else "right")
        for row in cells:
            table.add_row(*(row[column] for column in columns))
        return table

    console.print(_fitting_table(build, MODELS_NARROW_LEFT_OUT, console))


def show_offers(offers: list[Offer], dropped_count: int) -> None:
    with_source, caption = _source_column()
    table = Table(title=f"{_things(len(offers), 'offer')}, cheapest first", caption=caption)
    for column in ("GPU", "provider", "region", "instance", "spot", "$/h") + (("source",) if with_source else ()):
        table.add_column(column, justify="right" if column == "$/h" else "left")
    for o in offers:
        table.add_row(esc(o.gpu.name), esc(o.provider), esc(o.region), esc(o.instance_type), "spot" if o.spot else "",
                      usd_text(o.usd_per_hour), *([esc(o.source)] if with_source else []))
    console.print(table)
    if dropped_count:
        console.print(f"{_things(dropped_count, 'offer')} with implausible prices dropped (add --dropped to list "
                      "them).")


def show_local(hardware_file: str, cost_policy: str, detected: list[LocalGPU], local_offers: list[Offer]) -> None:
    if detected:
        table = Table(title="GPUs on this machine (NVML)")
        for column in ("index", "device", "matched", "VRAM GiB", "used GiB", "util %"):
            table.add_column(column)
        for d in detected:
            table.add_row(str(d.index), esc(d.device_name), esc(d.gpu.name) if d.gpu else "unknown: not plannable",
                          f"{d.vram_gib:.1f}", f"{d.used_vram_gib:.1f}", f"{d.utilization_pct:.0f}")
        console.print(table)
    else:
        console.print("No NVIDIA GPU visible through NVML on this machine.")
    table = Table(title=f"Local targets, priced {cost_policy} (hardware file: {esc(hardware_file)})")
    for column in ("target", "$/h", "here", "source"):
        table.add_column(column)
    for o in local_offers:  # a declared card not on this machine: every plan rejects it, so the table says so
        table.add_row(esc(o.gpu.name), usd_text(o.usd_per_hour), "yes" if o.present else "no", esc(o.source))
    console.print(table)
    if absent := sorted({o.gpu.name for o in local_offers if not o.present}):
        console.print(f"{esc(listed(absent))}: declared in the hardware file, not on this machine: plans take "
                      f"{'it' if len(absent) == 1 else 'them'} only with `ssh_pool: NAME` (a SkyPilot SSH node pool).",
                      highlight=False)


PEAK_AT = {"backward_start": "peak as the backward starts: activations alive, gradients only if accumulated",
           "backward_end": "peak as the backward ends: every gradient alive, the activations freed"}


# `measured`: runs of orch's own trainer, this machine's and the GPU results shipped in benchmarks/results/ ("your
# runs" was said of a fresh home's fit from the shipped H200 session alone)
MEMORY_BASIS = {"measured": "fitted from runs of orch's trainer (orch calibrate)",
                "published": "fitted from published measurements",
                "analytic": "the documented defaults"}


def show_estimate(result: dict) -> None:
    """`result` is the estimate command's JSON dict: one formatting of one structure."""
    console.print(f"[bold]{esc(result['model'])}[/] {result['method']}: {_count(result['params'])} params, "
                  f"{_count(result['trainable_params'])} trainable; seq {result['seq_len']} x micro-batch "
                  f"{result['micro_batch']}, checkpointing {'on' if result['grad_ckpt'] else 'off'}, "
                  f"{result['optimizer']}")
    table = Table(title=f"Peak memory on {esc(result['memory_device'])}")
    table.add_column("component")
    table.add_column("GiB", justify="right")
    on_cpu = result["memory_device"].startswith("CPU")
    for part, gib in result["breakdown"].items():
        # a CPU has no CUDA context: the part is the process's runtime there (torch and its libraries, measured)
        table.add_row("runtime" if on_cpu and part == "cuda_context" else part, f"{gib:.2f}")
    table.add_row("[bold]total[/]", f"[bold]{result['vram_gib']:.2f}[/]")
    console.print(table)
    console.print(f"[dim]{'runtime' if on_cpu else 'context'} and slack: {MEMORY_BASIS[result['memory_basis']]}[/]")
    console.print(f"[dim]{PEAK_AT[result['peak_at']]}[/]")
    if "gpu" in result and result["unsupported"]:
        console.print(f"{esc(result['gpu'])}: does not run: {esc(result['unsupported'])}")
    elif "gpu" in result:
        needed, usable = needed_and_usable_gib(result["vram_gib"], result["usable_vram_gib"])
        # the share of dense peak this micro-batch reaches: calibrate's figure is the GPU's share at full load, above it
        speed = f"{result['tokens_per_s']:,.0f} tokens/s ({result['efficiency']:.2f} of dense peak, {result['basis']})"
        # a speed of settings that do not fit is none a run has: the auto-fit line below gives the one that fits
        verdict = (f"fits ({result['usage']}; {result['headroom_fraction']:.0%} kept free); {speed}" if result["fits"]
                   else f"does not fit as given ({needed} of {result['gpu_vram_gib']:g} GiB, {usable} usable)")
        console.print(f"{esc(result['gpu'])}: {verdict}")
    else:
        console.print(f"Smallest catalog GPU that fits: {esc(result['smallest_gpu_that_fits'])}"
                      if result.get("smallest_gpu_that_fits") else "No catalog GPU fits these settings.")
        if result.get("smallest_gpu_with_auto_fit") and \
                result["smallest_gpu_with_auto_fit"] != result.get("smallest_gpu_that_fits"):
            console.print(f"With auto-fit, as plan runs it: {esc(result['smallest_gpu_with_auto_fit'])} "
                          f"({_batch_text(result['auto_fit_on_smallest'], speed=False)})")
    if fitted := result.get("auto_fit"):
        given = result["auto_fit_from"]
        ckpt = {True: "on", False: "off"}.get(given["grad_ckpt"], "auto")
        said = esc(fitted["reason"]) if "reason" in fitted else \
            f"{_batch_text(fitted)} (given: micro-batch {given['micro_batch']} x {given['grad_accum']}, " \
            f"checkpointing {ckpt})"
        console.print(f"auto-fit: {said}")
    elif would := result.get("with_auto_fit"):
        said = esc(would["reason"]) if "reason" in would else _batch_text(would)
        console.print(f"with --auto-fit, as plan and launch run it (the effective batch kept): {said}")
    for note in result["notes"]:
        console.print(f"note: {esc(note)}")


def _batch_text(fit: dict, speed: bool = True) -> str:
    """An auto-fit's batch and checkpointing with the memory (and speed) they take, in the one wording estimate uses
    for them."""
    text = (f"micro-batch {fit['micro_batch']} x accumulation {fit['grad_accum']}, checkpointing "
            f"{'on' if fit['grad_ckpt'] else 'off'}: {fit['vram_gib']:.1f} GiB")
    return f"{text}, {fit['tokens_per_s']:,.0f} tokens/s" if speed else text


def _where(offer: Offer, region_count: int = 1, spot: str = " spot") -> str:
    region = offer.region if region_count == 1 else f"{region_count} regions"
    where = offer.provider if offer.is_local else f"{offer.provider} {region}"
    return esc(f"{where}{spot}" if offer.spot else where)


def _distinct_options(plan: Plan) -> list[tuple[Option, int]]:
    """Options with the same GPU, provider, spot and price differ only by region: one row, with the region count."""
    rows: dict[tuple, list] = {}
    for option in plan.options:
        o = option.offer
        key = (o.gpu.name, o.provider, o.spot, round(o.usd_per_hour, 4))
        rows.setdefault(key, [option, 0])[1] += 1
    return [(option, count) for option, count in rows.values()]


def _table_title(counted: str, count: int, rows: int, top: int, more: str) -> str:
    """A plan table's title: the targets counted, and the rows shown where not all are (`more`: how to see the rest,
    from the command that shows it), or else why they are fewer than the targets (offers alike but for their region
    share one). "1 option, 1 distinct (1 shown)" was said of one row; "43 rejected, 42 rows (regions alike share
    one), 5 shown" of five, which puzzled a first user and folded mid-phrase at 80 columns."""
    if top < rows:
        return f"{counted}, {top} shown ({more})"
    return f"{counted} in {rows} rows (regions alike share one)" if rows < count else counted


def show_plan(plan: Plan, top: int, to_stderr: bool = False, more: str = "--top N shows more") -> None:
    """The ranked options, the rejected kinds and the chosen one with where its money goes; on stderr for a dry
    run, whose stdout is the task file."""
    out = err_console if to_stderr else console
    spec = plan.spec
    deadline_h = plan.policy.deadline_hours
    deadline = f", deadline {given_duration_text(deadline_h * 3600)}" if deadline_h else ""
    # two lines: folded by the terminal, the policy broke mid-phrase (`objective` / `cost`)
    out.print(f"[bold]{esc(spec.name)}[/]: {esc(spec.model)} {spec.method}, {_amount_text(spec, plan.train_tokens)};"
              f"\nbudget {usd_text(plan.policy.budget_usd)}{deadline}, "
              f"objective {plan.policy.objective}")
    distinct = _distinct_options(plan)
    if distinct:  # no option: the rejected targets below say why, without an empty table above them
        title = _table_title(_things(len(plan.options), 'option'), len(plan.options), len(distinct), top, more)
        table = _options_table(title, [_option_cells(rank, *row) for rank, row in enumerate(distinct[:top], 1)], out)
        # a cost checked by hand as hours x $/h was up to 67% short, with nothing on screen saying why
        if beyond := [said for part, said in BEYOND_THE_HOURS.items()
                      if any(o.estimate.parts_usd.get(part) for o, _ in distinct[:top])]:
            said = f"cost also counts {listed(beyond)}"
            table.caption = f"{table.caption}\n{said}" if table.caption else said
        out.print(table)
    _show_rejected(plan, top, more, out)
    if plan.chosen:
        o, e = plan.chosen.offer, plan.chosen.estimate
        labelled("[bold green]chosen:[/]", f"{esc(o.gpu.name)} on {_where(o)}: {duration_text(e.hours * 3600)}, "
                 f"{usd_text(e.cost_usd)}, {e.vram_gib:.1f} GiB, {_number(e.tokens_per_s)} tok/s "
                 f"[dim]({e.basis} throughput)[/]", out)
        _show_spend(plan.chosen, out)


def _amount_text(spec, train_tokens: int) -> str:
    """What the plan trains on: unpacked rows are priced as the GPU runs them, each padded to seq_len, and "16.5M
    tokens" of 203k tokens of data read as 80x the data; train_tokens in the whole steps the trainer runs, said
    beside the amount the job asks."""
    if spec.max_steps is None and spec.train_tokens is None and spec.dataset_sequences is not None:
        data = f" ({int(spec.dataset_tokens * spec.epochs):,} of them data)" if spec.dataset_tokens else ""
        return f"{train_tokens:,} token slots at seq {spec.seq_len}{data}"
    if spec.max_steps is None and spec.train_tokens not in (None, train_tokens) and \
            train_tokens == spec.resolved_train_tokens():  # not a resumed run's tokens left
        steps = train_tokens // (spec.effective_batch * spec.seq_len)  # "(100,000 in whole steps)" read backwards
        return (f"{train_tokens:,} tokens ({_things(steps, 'whole step')} for the {spec.train_tokens:,} asked) at "
                f"seq {spec.seq_len}")
    return f"{train_tokens:,} tokens at seq {spec.seq_len}"


PLAN_COLUMNS = ("#", "GPU", "where", "$/h", "GiB", "batch", "tok/s", "hours", "cost", "$/Mtok")
# a cost's parts (Estimate.parts_usd) outside the hours at the $/h, as the plan's table says them
BEYOND_THE_HOURS = {"last_save": "the last save", "idle": "idle VM time before autodown",
                    "controller": "a spot jobs controller"}
SPOT_MARK = "*"  # `gcp us-central1*`: a spot offer's `where` in a terminal too narrow for ` spot` and every figure
MARKED_WHERE = f"where{SPOT_MARK}"  # the row's key for that shorter `where`
# Left out, in this order, where a long location (vast's `Taichung City, TW, AS`) would fold rows onto two or three
# lines: the hours and the cost already tell the options apart, and --json keeps both; in a pane of 40 to 60
# columns the batch, memory and cost go too (the chosen line below says its cost), or the GPU's name was cut to a
# letter a line
NARROW_LEFT_OUT = ("$/Mtok", "tok/s", "batch", "GiB", "cost")


def _option_cells(rank: int, option: Option, region_count: int) -> dict[str, str]:
    """An option's row, by column."""
    o, e = option.offer, option.estimate
    return {"#": str(rank), "GPU": esc(o.gpu.name), "where": _where(o, region_count),
            MARKED_WHERE: _where(o, region_count, SPOT_MARK), "$/h": usd_text(o.usd_per_hour),
            "GiB": f"{e.vram_gib:.1f}", "batch": f"{e.micro_batch}x{e.grad_accum}" + (" ckpt" if e.grad_ckpt else ""),
            "tok/s": _number(e.tokens_per_s), "hours": f"{e.hours:.2f}", "cost": usd_text(e.cost_usd),
            "$/Mtok": usd_text(e.usd_per_million_tokens)}


def _fitting_table(build, droppable: tuple[str, ...], out: Console) -> Table:
    """`build(left_out)`'s table with the fewest of `droppable` columns left out, in order, that keeps each row on
    one line in this terminal; the caption says where to see them."""
    tables = [build(droppable[:count]) for count in range(len(droppable) + 1)]
    count = next((count for count, table in enumerate(tables) if table.natural_width(out) <= out.width + 2),
                 len(droppable))
    if count:
        widest = tables[0].natural_width(out) - 2
        tables[count].caption = f"{listed(droppable[:count])}: --json, or a terminal of {widest}+ columns"
    return tables[count]


def _options_table(title: str, rows: list[dict[str, str]], out: Console) -> Table:
    """The ranked options, a line each where the terminal allows: first a spot offer's ` spot` becomes SPOT_MARK,
    then the fewest NARROW_LEFT_OUT columns go that give the locations their room (`$/Mtok`, which README describes,
    was left out of the default plan at 80 columns for want of 3)."""
    table = _fitting_table(lambda left_out: _plan_table(title, rows, left_out), NARROW_LEFT_OUT, out)
    if table.caption is None or all(row["where"] == row[MARKED_WHERE] for row in rows):
        return table
    table = _fitting_table(lambda left_out: _plan_table(title, rows, left_out, MARKED_WHERE), NARROW_LEFT_OUT, out)
    table.caption = f"{SPOT_MARK}: spot" + (f"; {table.caption}" if table.caption else "")
    return table


def _plan_table(title: str, rows: list[dict[str, str]], left_out: tuple[str, ...], where: str = "where") -> Table:
    """The options table without the `left_out` columns, its locations from the rows' `where` key; one space between
    columns, and a location's words (a region, us-central1) are never cut."""
    table = Table(title=title, padding=(0, 0))
    columns = [column for column in PLAN_COLUMNS if column not in left_out]
    longest_word = {key: max((len(word) for row in rows for word in row[key].split()), default=0)
                    for key in ("GPU", where)}
    for column in columns:
        table.add_column(column, justify="left" if column in ("GPU", "where") else "right",
                         min_width=longest_word.get(where if column == "where" else column))
    for row in rows:
        table.add_row(*(row[where if column == "where" else column] for column in columns))
    return table


def _show_spend(option, out: Console) -> None:
    """Where the chosen option's money goes, how its output comes home, and where SkyPilot may fail over."""
    e = option.estimate
    parts = ", ".join(f"{name.replace('_', ' ')} {usd_text(usd)}" for name, usd in e.parts_usd.items() if usd > 0)
    startup = "measured" if e.startup_measured else "guessed"
    # two decimals hid a recovery cost's cause: `recovery $0.00011` beside `0.00 expected preemptions`
    expected = e.expected_preemptions
    shown = f"{expected:.2f}" if expected >= 0.01 or expected == 0 else \
        f"{expected:.{-math.floor(math.log10(expected))}f}"  # one significant digit, not e-notation (5e-05)
    preempt = f", {shown} expected preemptions" if option.offer.spot else ""
    labelled("  spend:", f"{parts} [dim](start-up {startup}{preempt})[/]", out)
    if option.delivery is not None:
        output = {"bucket": "a bucket orch-<run id> (MOUNT_CACHED)",
                  "cluster": "the VM's disk, pulled home before teardown"}[option.delivery.output]
        labelled("  output:", output, out)
    if option.failover:
        where = ", ".join(f"{_where(o)} {usd_text(o.usd_per_hour)}/h" for o in option.failover)
        labelled("  failover:", f"{where}; at the dearest {usd_text(option.worst_cost_usd)}", out)


# the rejected table's rows by their kind, the ones a plan's limits decide first: where no target met a deadline,
# the five rows shown were an absent card, the CPU and a T4, and the deadline's misses came after them
REJECTED_FIRST = ("deadline", "budget", "price", "memory", "unsupported", "cpu", "launch", "busy", "absent", "spot",
                  "provider")


def _rejected_order(r) -> tuple:
    """REJECTED_FIRST's order, and within a deadline's or a budget's misses the nearest first."""
    nearest = 0.0 if r.estimate is None else r.estimate.hours if r.kind == "deadline" else \
        r.estimate.cost_usd if r.kind in ("budget", "price") else 0.0
    return REJECTED_FIRST.index(r.kind) if r.kind in REJECTED_FIRST else len(REJECTED_FIRST), nearest


def _show_rejected(plan: Plan, top: int, more: str, out: Console = console) -> None:
    """One row per distinct (GPU, provider, spot, reason kind): regions repeat the same story. A provider left out
    by --providers is one row for all its offers (`--providers local` filled the table with one cloud's GPUs)."""
    seen, rows = set(), []
    for r in sorted(plan.rejected, key=_rejected_order):
        key = (r.offer.provider, r.kind) if r.kind == "provider" else (r.offer.gpu.name, r.offer.provider,
                                                                        r.offer.spot, r.kind)
        if key not in seen:
            seen.add(key)
            rows.append(r)
    if not rows:
        return
    table = Table(title=_table_title(f"{len(plan.rejected)} rejected", len(plan.rejected), len(rows), top, more))
    for column in ("GPU", "where", "why"):
        table.add_column(column)
    for r in rows[:top]:
        every = r.kind == "provider"
        table.add_row("every GPU" if every else esc(r.offer.gpu.name), esc(r.offer.provider) if every
                      else _where(r.offer), esc(r.reason))
    out.print(table)


def show_spend_rows(by: str, rows, home: Path) -> None:
    """`orch spend`: one row per group, the total below; active runs count their spend so far. With no run, the home
    is named, as `orch runs` names it (an empty table said nothing of where it looked)."""
    if not rows:
        console.print(f"No spend yet in {esc(home)}: no run has been recorded there; `orch launch JOB.yaml --budget "
                      "USD` starts one.", highlight=False)
        return
    table = Table(title=f"spend by {by}")
    for column in (by, "runs", "active", "spend"):
        table.add_column(column, justify="left" if column == by else "right")
    for row in rows:
        name = Text(_on_one_line(row.key))  # a name, never markup, a terminal escape nor a second line
        table.add_row(name, str(row.runs), str(row.active_runs), usd_text(row.usd))
    console.print(table, highlight=False)
    console.print(f"total: {usd_text(sum(r.usd for r in rows))}", highlight=False)


def optional(value, fmt: str) -> str:
    """A number formatted for people, or "-" where there is none (a run not ended, a point out of memory)."""
    return "-" if value is None else format(value, fmt)


MOST_HOUR_DECIMALS = 8  # 36 microseconds: less is shown as 0


def hours_text(hours: float | None) -> str:
    """Hours to two places, or to two significant digits below an hour: a 20 s run showed "0.00" hours beside its
    $0.000046, and an estimate of 0.0148 h showed "0.01" beside a measured "0.0071", which reads as half the gap."""
    if hours is None:
        return "-"
    if hours >= 1 or hours == 0:
        return f"{hours:,.2f}"
    return f"{hours:.{min(MOST_HOUR_DECIMALS, 1 - math.floor(math.log10(hours)))}f}"  # 9.2e-06 as 0.0000092


def show_runs(records: list[RunRecord], home: Path) -> None:
    """Two lines a run: what was measured, and under it (dim) what was estimated. A run still going shows its hours and
    spend so far (`~`). With none, the home is named: a mistyped ORCH_HOME is a new, empty one."""
    if not records:
        console.print(f"No runs yet in {esc(home)}: `orch launch JOB.yaml --budget USD` starts one.", highlight=False)
        return
    # job names whole where every figure keeps its room once the target folds (`qwen25-14b-l` over `ora` at 80
    # columns), else folded onto two lines at most, as a target is, and cut short there with an ellipsis (over
    # three lines and more, a long name pushed its estimate line down as if another run's); narrower still, whole
    # columns go, the least needed first, before any figure is cut (`$0.00005` for $0.000050 at 50 columns)
    longest = max(len(r.job_name) for r in records)
    for count in range(len(DROPPED_FIRST) + 1):
        dropped = DROPPED_FIRST[:count]
        table = _runs_table(records, dropped)
        if (spare := _spare_width(table, records)) >= 0:
            console.print(table)
            return
        if "job" not in dropped and longest + spare >= NARROWEST_JOB_NAME:
            console.print(_runs_table(records, dropped, name_width=longest + spare))
            return
    console.print(_runs_table(records, DROPPED_FIRST, statuses_fold=True))  # `budget_stopped` at 40


def _spare_width(table: Table, records: list[RunRecord]) -> int:
    """The columns the console has beyond the table's once its targets fold (below 0: too wide by that much)."""
    folds = max(0, max(len(text) for r in records for text in (r.gpu, _ran_on(r))) - MOST_FOLDED_GPU)
    return console.width - (table.natural_width(console) - folds)


# The runs table's columns left out, in this order, where the console is too narrow for every figure whole: a run's
# job and memory are in `orch logs` and `orch runs --json`; its cost, what orch is for, goes last of all
DROPPED_FIRST = ("job", "GiB", "hours", "tok/s")


def _runs_table(records: list[RunRecord], dropped: tuple[str, ...] = (), statuses_fold: bool = False,
                name_width: int | None = None) -> Table:
    """The runs, two rows each; `dropped`: columns left out; `statuses_fold`: a status may fold, where nothing else
    is left to fold or leave out; `name_width`: the job column's width, each name folded onto two lines of it at
    most, a longer one cut short there with an ellipsis."""
    # one space between columns, as the plan's table has: two left the job names 8 characters at 80 columns
    table = Table(title=f"{_things(len(records), 'run')}: measured, and under it estimated", padding=(0, 0))
    columns = {"run": dict(no_wrap=len(max((r.run_id for r in records), key=len, default="")) <= 12),
               # a job name folds before the target shrinks past its shortest GPU name (`A100 80GB`): with a
               # `budget_stopped` beside a 16-character job, every target was spelt down the screen a letter a line
               "job": dict(min_width=NARROWEST_JOB_NAME, no_wrap=name_width is None, max_width=name_width),
               "target": dict(min_width=min(max(len(r.gpu) for r in records), MOST_FOLDED_GPU)),
               "status": dict(no_wrap=not statuses_fold),
               **{figure: dict(justify="right") for figure in ("tok/s", "GiB", "hours", "cost")}}
    kept = [name for name in columns if name not in dropped]
    for name in kept:
        table.add_column(name, **columns[name])
    for r in records:
        wall_s = wall_s_so_far(r)  # a running run's earlier sessions' and this one's so far, as its cost
        hours = hours_text(None if wall_s is None else wall_s / 3600)
        hours, cost = (f"~{hours}", f"~{usd_text(spend_usd(r))}") if r.status.is_active() else \
            (hours, optional_usd(r.cost_usd))
        name = r.job_name if name_width is None or len(r.job_name) <= 2 * name_width else \
            r.job_name[:2 * name_width - 1] + "…"
        measured = dict(zip(columns, (esc(r.run_id), esc(name), esc(r.gpu), r.status.value,
                                      optional(r.tokens_per_s, ",.0f"), optional(r.peak_vram_gib, ".1f"),
                                      hours, cost), strict=True))
        estimated = dict(zip(columns, ("", "", esc(_ran_on(r)), "estimate", optional(r.est_tokens_per_s, ",.0f"),
                                       optional(r.est_vram_gib, ".1f"), hours_text(r.est_hours),
                                       optional_usd(r.est_cost_usd)), strict=True))
        table.add_row(*(measured[name] for name in kept))
        table.add_row(*(estimated[name] for name in kept), style="dim")
    return table


def _ran_on(record: RunRecord) -> str:
    """A run's provider, and whether it ran spot: the target column's second line."""
    return f"{record.provider}{' spot' if record.spot else ''}"


NARROWEST_JOB_NAME = 7  # a job name is folded no narrower than this
MOST_FOLDED_GPU = len("RTX 6000")  # nor a GPU's: `RTX 6000` over `Ada`, `A100` over `80GB`
MOST_WHOLE_NAME = 16  # a queued job's name up to this long is never folded (the other columns fold first)


def _whole(names) -> bool:
    """Whether a column of names is kept whole: `llama31-8b-qlora` folded as `llama31-8b-q` / `lora`."""
    return max((len(name) for name in names), default=0) <= MOST_WHOLE_NAME


def optional_usd(value: float | None) -> str:
    return "-" if value is None else usd_text(value)


def show_run(record: RunRecord) -> None:
    """The end of a run in a few lines: how it ended, what it did, what it cost, where its output is."""
    metrics = json.loads(record.metrics_json) if record.metrics_json else {}
    colour = "green" if record.status is RunStatus.OK else "red"
    did = [_things(metrics["steps"], "step") if metrics.get("steps") is not None else None,
           f"{record.train_tokens:,} tokens" if record.train_tokens else None,
           duration_text(record.wall_s) if record.wall_s is not None else None]  # as plans say it (53 s, not 0.014 h)
    console.print(f"[bold {colour}]{record.status.value}[/]: run {record.run_id} on {esc(record.gpu)} "
                  f"({esc(_ran_on(record))})"
                  + "".join(f", {part}" for part in did if part))
    if record.message:  # why, right under how it ended: below the figures and the output, a failed launch's reason
        console.print(f"  {esc(record.message)}", highlight=False)  # was read past as if none was given
    measured = [f"{optional(record.tokens_per_s, ',.0f')} tok/s (est. {optional(record.est_tokens_per_s, ',.0f')})",
                f"peak {optional(record.peak_vram_gib, '.2f')} GiB (est. {optional(record.est_vram_gib, '.1f')})",
                f"cost {optional_usd(record.cost_usd)} of {usd_text(record.budget_usd)}"]
    console.print("  " + ", ".join(measured), highlight=False)
    console.print(f"  output: {esc(str(record.output_dir))}", highlight=False)
    if record.output_uri:
        console.print(f"  kept in: {esc(record.output_uri)} (`orch pull {record.run_id}` brings it here)",
                      highlight=False)
    # the trainer's words ("a larger budget continues from the checkpoint") named no command; a trainer killed or
    # crashed left its checkpoint unsaid
    crashed = record.status in (RunStatus.FAILED, RunStatus.ERROR) and \
        (record.output_dir / "checkpoints" / "latest").is_file()
    if record.status in (RunStatus.STOPPED, RunStatus.PREEMPTED, RunStatus.BUDGET_STOPPED) or crashed:
        more = " --budget USD" if record.status is RunStatus.BUDGET_STOPPED else ""
        console.print(f"  `orch resume {record.run_id}{more}` continues it from its latest checkpoint", highlight=False)


def _percent(value) -> str:
    return "-" if value is None else f"{value:+.0%}"


def _bench_status(row: dict) -> str:
    """A point whose tokens/s never settled is `unstable`, not `ok`: its message, which says so, has no column at 80."""
    return "unstable" if row["status"] == "ok" and row.get("stable") is False else row["status"]


def show_bench(rows: list[dict]) -> None:
    """One row per point; what every row shares (the model, the device) goes in the title, leaving 80 columns to the
    numbers."""
    models, devices = ({row["config"]["model"] for row in rows}, {row.get("gpu") or "-" for row in rows})
    title = _things(len(rows), "point") + (f" of {esc(next(iter(models)))}" if len(models) == 1 else "") + \
        (f" on {esc(next(iter(devices)))}" if len(devices) == 1 else "")
    table = Table(title=title)
    columns = (["model"] if len(models) > 1 else []) + ["method", "seq", "batch", "ckpt", "status", "tok/s",
                                                        "peak GiB", "MFU"] + (["device"] if len(devices) > 1 else [])
    for column in columns:
        table.add_column(column, justify="right" if column in ("seq", "tok/s", "peak GiB", "MFU") else "left")
    for row in rows:
        c = row["config"]
        peak = measured_vram_gib(row)
        cells = [esc(c["method"]), str(c["seq_len"]), str(c.get("micro_batch", 4)),
                 "on" if c.get("grad_ckpt") is True else "off", esc(_bench_status(row)),
                 optional(row.get("tokens_per_s"), ",.0f"), optional(peak, ".2f"), optional(row.get("mfu"), ".1%")]
        table.add_row(*([esc(c["model"])] if len(models) > 1 else []), *cells,
                      *([esc(row.get("gpu") or "-")] if len(devices) > 1 else []))
    console.print(table)


def show_calibration(result: dict) -> None:
    """The fitted values one line a GPU (a memory kind), then the error of every measured point before and after,
    one table for tokens/s and one for VRAM: eleven columns did not fit 80."""
    console.print(f"wrote {esc(result['calibration'])}: fitted on {result['rows_used']} of {result['rows']} result "
                  "rows (ok runs on a known GPU) and the published points", highlight=False)
    console.print(f"read: {esc(', '.join(result['sources']))}", highlight=False)
    if left_out := result["speed_rows_left_out"]:
        console.print(f"{left_out} of them left out of the speed fit: too small a job for the GPU's share of peak to "
                      "set its speed (kernel launches do)", highlight=False)
    for gpu, methods in result["efficiency"].items():
        console.print(f"efficiency {esc(gpu)} (share of dense peak at full load): " +
                      ", ".join(f"{esc(m)} {e:.3g}" for m, e in methods.items()), highlight=False)
    if across := result["method_efficiency"]:  # what every other GPU is now estimated at: it changed unsaid
        before = result["method_efficiency_before"]
        console.print("efficiency of every other GPU (each method's fit across the GPUs fitted): " + ", ".join(
            f"{esc(m)} {e:.3g}" + (f" (was {before[m]:.3g})" if m in before and f"{before[m]:.3g}" != f"{e:.3g}"
                                   else "") for m, e in across.items()), highlight=False)
    for kind, values in result["memory"].items():
        fitted_from = esc(result["memory_fitted_from"][kind])  # a session orch ships is no run of this machine's
        was = result["memory_before"].get(kind)
        console.print(f"memory {esc(kind)} ({result['memory_basis'][kind]}, {fitted_from}): "
                      + ", ".join(f"{esc(k)} {v:g}" for k, v in values.items())
                      + (f" (was {', '.join(f'{esc(k)} {v:g}' for k, v in was.items())})" if was and was != values
                         else ""), highlight=False)
    if not result["memory"]:
        console.print("memory: nothing fitted (no whole-process peak among your runs or the published points)",
                      highlight=False)
    if result["at_bounds"]:
        console.print(f"note: fitted to an end of its range ({esc(', '.join(result['at_bounds']))}): no value "
                      "explains those runs, so check them (`orch bench` results)", highlight=False)
    # tokens/s with padding, as an estimate counts them: `orch bench` said 1,905 for a point this table said 2,054
    for title, unit, value, error, fmt in (("tokens/s (padding included)", "tok/s", "tokens_per_s", "tokens_per_s",
                                            ",.0f"), ("VRAM", "GiB", "vram_gib", "vram", ".2f")):
        points = [p for p in result["points"] if p[value] is not None]
        if not points:
            continue
        table = Table(title=f"{title} per point: measured, and estimated before -> after calibration")
        table.add_column("point", min_width=20)
        for column in (unit, "before", "err", "after", "err"):
            table.add_column(column, justify="right")
        for p in points:
            table.add_row(esc(p["point"]), optional(p[value], fmt), optional(p[f"est_{value}"], fmt),
                          _percent(p[f"{error}_error"]), optional(p[f"est_{value}_after"], fmt),
                          _percent(p[f"{error}_error_after"]))
        console.print(table)
    for name in ("in_sample", "leave_one_source_out"):
        for group, e in result.get(name, {}).items():
            console.print(f"{name.replace('_', ' ')}, {group}: median |error| {e['median_abs_error']:.1%} over "
                          f"{_things(e['points'], 'point')}, {e['within_10']:.0%} within 10%, "
                          f"{e['within_20']:.0%} within 20%")


def _queued_budget(job: JobRecord, run: RunRecord | None) -> str:
    """The budget a job's run has, or will have: one submitted without --budget gets a multiple of its estimate on
    the target it starts on, unknown until it starts, so the rule is said with the amount."""
    if run is not None and job.budget_usd is not None and not math.isclose(run.budget_usd, job.budget_usd):
        # a retry's run gets what its job has left, and `orch resume --budget` raises a run's: the job's was said
        # as the run's share ("budget $0.00029" for a job submitted with --budget 0.0003)
        return f"{usd_text(job.budget_usd)} ({usd_text(run.budget_usd)} for its run {run.run_id})"
    if run is not None:  # the run's own, which `orch resume --budget` may have raised since: then the rule is not why
        by_rule = run.est_cost_usd is not None and math.isclose(run.budget_usd,
                                                                unbudgeted_usd(run.est_cost_usd, run.usd_per_hour))
        return usd_text(run.budget_usd) + ("" if job.budget_usd is not None or not by_rule else f" ({UNBUDGETED_RULE})")
    return usd_text(job.budget_usd) if job.budget_usd is not None else f"{UNBUDGETED_RULE}, on the target it starts on"


NOT_DECIDED = "no scheduler pass has decided it yet (`orch scheduler run --once` makes one)"


def show_queue(jobs: list[JobRecord], explain: bool, runs: dict[str, RunRecord]) -> None:
    """One row a job; its run's own status beside the run id, which may be ahead of the job's until the scheduler's
    next pass records it. --explain adds each job's budget (a default one is no amount until its run starts)."""
    table = Table(title=f"{_things(len(jobs), 'job')}, in scheduling order")
    table.add_column("job", no_wrap=True)
    table.add_column("name", no_wrap=_whole(j.name for j in jobs))
    table.add_column("priority", justify="right")
    for column in ("status", "decision"):
        table.add_column(column, no_wrap=True)
    table.add_column("run")  # the run's own status folds under its id
    for j in jobs:
        run = f"{j.run_id} ({runs[j.run_id].status.value})" if j.run_id in runs else j.run_id or "-"
        table.add_row(*map(esc, (j.job_id, j.name, str(j.priority), j.status.value, j.decision or "-", run)))
    console.print(table)
    if explain:  # a line a job, below: a why column beside six others got a word or two a line
        for j in jobs:
            budget = _queued_budget(j, runs.get(j.run_id))
            why = j.reason or NOT_DECIDED  # a bare `-` said nothing of what comes next
            labelled(f"{esc(j.job_id)}:", f"budget {esc(budget)}{_deadline_text(j.deadline_at)}; {esc(why)}")


def _deadline_text(deadline_at: float | None) -> str:
    """A job's deadline as the local time it falls at (submitted as hours from then, shown nowhere before)."""
    if deadline_at is None:
        return ""
    passed = " (passed)" if deadline_at < time.time() else ""
    return f", deadline {time.strftime('%Y-%m-%d %H:%M', time.localtime(deadline_at))}{passed}"


def show_simulation(summaries: dict[str, dict]) -> None:
    """One row a policy. Every policy runs the same trace, so the job count goes in the title; short headers keep
    the policy names whole in 80 columns."""
    table = Table(title=f"{_things(next(iter(summaries.values()))['jobs'], 'job')} under each policy",
                  caption="local $: the owned GPUs' power, and their purchase over the span; late: past its "
                          "deadline; wait h: mean wait; util: owned GPUs busy")
    table.add_column("policy", min_width=max(len(name) for name in summaries))
    for column in ("rejected", "total $", "local $", "cloud $", "late", "wait h", "util", "preempted"):
        table.add_column(column, justify="right")
    for name, s in summaries.items():
        table.add_row(esc(name), str(s["rejected"]), f"{s['total_cost_usd']:,.0f}", f"{s['local_cost_usd']:,.0f}",
                      f"{s['cloud_cost_usd']:,.0f}", str(s["deadline_misses"]), f"{s['mean_wait_h']:.2f}",
                      f"{s['local_utilization']:.0%}", str(s["preemptions"]))
    console.print(table)


def show_import(job_text: str | None, out, not_carried: list[tuple[str, str]]) -> None:
    """The imported job (printed, or where it was written), then every key left behind on stderr."""
    if job_text is not None:
        sys.stdout.write(job_text)
    else:
        console.print(f"wrote {esc(str(out))}", highlight=False)
    if not_carried:
        err_console.print(f"[bold]{len(not_carried)} key(s) not carried over:[/]", highlight=False)
        for key, why in not_carried[:MOST_KEYS_LISTED]:  # folded at spaces: the terminal cut words (`se|q_len`)
            say(f"  {_on_one_line(key)}: {_on_one_line(why)}", err=True)
        if len(not_carried) > MOST_KEYS_LISTED:  # a config of 75,000 unknown keys printed 75,000 lines
            err_console.print(f"  and {len(not_carried) - MOST_KEYS_LISTED:,} more: `--json` lists them all",
                              highlight=False)


def show_data_size(data: dict | None, dataset_named: bool = True) -> None:
    """One line: the dataset's tokens, where the number came from, and the epochs the plan trains; or that the job
    names no data, which a plan needs not but a run does."""
    if not dataset_named:
        labelled("data:", "none named: the plan stands, but `orch launch` and `orch train` need `dataset: PATH` (or a "
                 "hub id) in the job")
        return
    if data is None:
        return
    tokens = f"{data['tokens']:,} tokens per epoch" if data["tokens"] else "size unknown"
    if padding_worth_saying(data):  # the plan prices the padding
        tokens += f", {data['row_fill']:.0%} of its rows (the rest is padding, trained and priced too)"
    epochs = f", {data['epochs']:.2f} epochs" if data["epochs"] else ""
    source = "" if data["source"] == "unknown" else f"{esc(data['source'])}: "  # "size unknown (unknown: ...)"
    labelled("data:", f"{tokens}{epochs} [dim]({source}{esc(data['detail'])})[/]")


def show_lines(lines: list[str]) -> None:
    """Plain sentences (a report's summary), printed as written."""
    for line in lines:
        say(line)
