"""The fitted constants of the estimator: the share of dense peak a long, wide micro-batch reaches per GPU and
method (speed.py), and the memory overheads per device kind (memory.py).

Where they come from, in order: ORCH_CALIBRATION or ORCH_HOME/calibration.json (written by `orch calibrate` from the
user's own runs and the published measurements), else the calibration shipped with orch
(gpu_catalog/data/calibration.json, fitted from gpu_catalog/data/published_measurements.csv; read-only package data),
else the documented defaults below. Every estimate says which: `measured`, `published` or `analytic`.

Defaults: what HF transformers + peft loops reach on Ampere/Ada at long micro-batches (speed.py scales it down for
short or narrow ones); a smaller share of Hopper/Blackwell's much larger peak.
"""

from dataclasses import dataclass, field
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.checks import short_repr
from gpu_catalog.errors import UserError
from gpu_catalog.gpus import DATA_DIR, GPU, cpu_gpu, find_gpu
from gpu_catalog.names import near_hint
from orchestrator.home import orch_home

DEFAULT_EFFICIENCY = {"full": 0.62, "lora": 0.60, "qlora": 0.55}
HOPPER_AND_LATER_FACTOR = 0.8  # compute capability 9.0+: same loop, bigger peak, smaller share of it
# The CPU target's share of its nominal peak (gpu_catalog/gpus.py, 0.1 TFLOPS a core): orch's trainer reached 0.37 on
# this project's 2-core x86 machine (examples/tiny.yaml, 10,497 tok/s, 2026-12-02). Published GPU runs say nothing
# about a CPU, so their per-method fits never stand in for it; `orch calibrate` fits it from the user's own CPU runs.
CPU_EFFICIENCY = 0.35
# The range of a peak share: what `orch calibrate` searches (orchestrator/bench/calibrate.py), so a file it wrote
# always loads, and outside of which a calibration file is refused: a hand-edited 1e-12 planned a job at millions of
# hours, and 5e-324 divided by zero.
EFFICIENCY_BOUNDS = (0.05, 1.0)
PACKAGED_CALIBRATION = DATA_DIR / "calibration.json"
BASES = ("measured", "published", "analytic")  # where a figure comes from: the user's runs, published ones, defaults


@dataclass(frozen=True)
class Calibration:
    """Fitted peak shares by GPU name then method, e.g. {"H100 SXM": {"lora": 0.41}}, with the origin of each
    (`measured` or `published`), per-method fallbacks for GPUs without points of their own (fitted from GPU points
    only) with the origin of each, and memory overheads by device kind, e.g. {"cuda": {"context_gib": 0.9,
    "slack_fraction": 0.12, "headroom_fraction": 0.04}}, with the origin of each kind's."""

    efficiency: dict[str, dict[str, float]] = field(default_factory=dict)
    memory: dict[str, dict[str, float]] = field(default_factory=dict)
    source: str = ""
    efficiency_basis: dict[str, dict[str, str]] = field(default_factory=dict)
    method_efficiency: dict[str, float] = field(default_factory=dict)
    method_basis: dict[str, str] = field(default_factory=dict)  # per method, e.g. {"lora": "published"}
    memory_basis: dict[str, str] = field(default_factory=dict)  # per device kind, e.g. {"cuda": "published"}

    def memory_overheads(self, gpu: GPU) -> dict[str, float] | None:
        """{"context_gib", "slack_fraction"} fitted for this kind of device, or None (use the defaults)."""
        return self.memory.get(device_kind(gpu))

    def memory_basis_for(self, gpu: GPU) -> str:
        """Where this device kind's memory overheads come from: `measured`, `published` or (defaults) `analytic`."""
        kind = device_kind(gpu)
        return self.memory_basis.get(kind, "measured") if kind in self.memory else "analytic"

    def efficiency_for(self, gpu: GPU, method: str) -> tuple[float, str]:
        """(peak share, basis): fitted for this GPU and method, else (GPUs only) the per-method fit, else the
        default."""
        fitted = self.efficiency.get(gpu.name, {}).get(method)
        if fitted is not None:
            return fitted, self.efficiency_basis.get(gpu.name, {}).get(method, "measured")
        if gpu.kind == "cpu":
            return CPU_EFFICIENCY, "analytic"
        factor = HOPPER_AND_LATER_FACTOR if gpu.compute_capability and float(gpu.compute_capability) >= 9 else 1.0
        if method in self.method_efficiency:
            return self.method_efficiency[method] * factor, self.method_basis.get(method, "measured")
        return DEFAULT_EFFICIENCY[method] * factor, "analytic"


def device_kind(gpu: GPU) -> str:
    return "cpu" if gpu.kind == "cpu" else "cuda"


NO_CALIBRATION = Calibration()  # every GPU and method at its documented default


def calibration_file() -> Path:
    """Where `orch calibrate` writes and the estimator reads: ORCH_CALIBRATION, else ORCH_HOME/calibration.json."""
    return checks.env_path("ORCH_CALIBRATION", str(orch_home() / "calibration.json"))


def load_calibration(path: Path | None = None) -> Calibration:
    """The user's calibration file, else the one shipped with orch, else the documented defaults."""
    path = path or calibration_file()
    if checks.env_value("ORCH_CALIBRATION") and path == calibration_file():  # named, so a typo is not a quiet default
        checks.input_file(path, "ORCH_CALIBRATION file", "fix the path, or unset ORCH_CALIBRATION to use "
                          "ORCH_HOME's calibration (`orch calibrate` writes it) or the one shipped with orch.")
    try:
        is_folder, is_file, is_there = path.is_dir(), path.is_file(), path.exists()
    except OSError as exc:  # an ORCH_HOME too long a name for the file system, or under a folder orch may not read
        raise UserError(f"cannot read calibration file {path}: {exc.strerror or exc}. Set ORCH_HOME to a folder orch "
                        "can use.") from None
    # ORCH_HOME's own file here (a named ORCH_CALIBRATION that is no file was refused above): moving it away is the
    # fix; the variable was named as the fix where nobody had set it
    if is_folder:
        raise UserError(f"ORCH_HOME's calibration file {path} is a folder: move it away (`orch calibrate` writes a "
                        "file there), or set ORCH_CALIBRATION to a calibration file.")
    if is_there and not is_file:  # a device or a pipe in ORCH_HOME: not quietly the shipped calibration instead
        raise UserError(f"ORCH_HOME's calibration file {path} is not a regular file (a device or a pipe): move it "
                        "away (`orch calibrate` writes a file there), or set ORCH_CALIBRATION to a calibration file.")
    if not is_file:
        path = PACKAGED_CALIBRATION
        if not path.is_file():
            return NO_CALIBRATION
    try:
        raw = checks.parse_json(checks.read_text(path, "calibration file"), f"calibration file {path}")
    except UserError as exc:  # not JSON, NaN, not UTF-8: every plan stopped on it, with nothing said of the fix
        raise UserError(f"{str(exc).rstrip('.')}; {_FIX}") from None
    try:
        return _parsed(raw, path)
    except (KeyError, ValueError) as exc:
        reason = f"no {exc} key" if isinstance(exc, KeyError) else " ".join(str(exc).split()).rstrip(".")
        raise UserError(f"calibration file {path} is malformed ({reason}); {_FIX}") from None


# a calibrate over it is refused (it replaces only a calibration it can read), so not "rerun `orch calibrate`"
_FIX = "move it away or delete it (`orch calibrate` then writes a new one)."
# what `orch calibrate` writes (orchestrator/bench/calibrate.py calibration_json)
FILE_KEYS = ("fitted_at", "points", "sources", "efficiency", "efficiency_basis", "method_efficiency", "method_basis",
             "memory", "memory_basis")
METHODS = tuple(DEFAULT_EFFICIENCY)
MEMORY_KINDS = ("cpu", "cuda")  # device_kind()
MEMORY_KEYS = ("context_gib", "slack_fraction", "headroom_fraction")  # the last only where enough runs fit it
# The most each overhead may be, well above what `orch calibrate` fits (context 0.3-2.5 GiB, slack 0-0.5, headroom
# 0.02-0.2) so a file it wrote always loads; 1024 let a hand-edited slack of 1000 estimate a 7B job at 68,568 GiB
MEMORY_MAXIMA = {"context_gib": 16.0,  # GiB a process holds before any tensor; the defaults are 0.75 (CUDA), 0.5 (CPU)
                 "slack_fraction": 1.0,  # the allocator's waste as a share of activations and logits: all of them
                 "headroom_fraction": 0.5}  # half the card kept free is already far past any fitted headroom


def _parsed(raw, path: Path) -> Calibration:
    """The file's content, every key known and every value in range: a typo in a hand-edited file is named rather
    than quietly ignored."""
    _known(_mapping(raw, "the file"), FILE_KEYS, "key")
    _said_of_the_fit(raw)
    efficiency = _by_gpu(raw["efficiency"], "efficiency",
                         lambda gpu, methods: {_method(m): _efficiency(v, f"efficiency of {gpu} {m}")
                                               for m, v in _mapping(methods, gpu).items()})
    per_method = _mapping(raw.get("method_efficiency", {}), "method_efficiency")
    method_efficiency = {_method(m): _efficiency(v, f"method_efficiency of {m}") for m, v in per_method.items()}
    memory = {_known(kind, MEMORY_KINDS, "memory kind"): _memory(kind, values)
              for kind, values in _mapping(raw.get("memory", {}), "memory").items()}
    efficiency_basis = _by_gpu(raw.get("efficiency_basis", {}), "efficiency_basis",
                               lambda gpu, methods: {_method(m): _basis(v, f"{gpu} {m}")
                                                     for m, v in _mapping(methods, gpu).items()})
    method_basis = _method_basis(raw.get("method_basis", "measured"), method_efficiency)
    # files written before it was kept fitted memory from the user's runs only: `measured`
    memory_basis = {_known(kind, MEMORY_KINDS, "memory_basis kind"): _basis(value, f"{kind} memory")
                    for kind, value in _mapping(raw.get("memory_basis", {}), "memory_basis").items()}
    _bases_match(efficiency_basis, efficiency, "efficiency")
    _bases_match({"": method_basis}, {"": method_efficiency}, "method_efficiency")
    _bases_match({"": memory_basis}, {"": memory}, "memory")
    return Calibration(efficiency=efficiency, memory=memory, source=str(path), efficiency_basis=efficiency_basis,
                       method_efficiency=method_efficiency, method_basis=method_basis, memory_basis=memory_basis)


def _said_of_the_fit(raw: dict) -> None:
    """What the file says of its fit (when, from how many points, from which files), shown by `orch calibrate` and
    the report: each of its kind, in printable text (`points: -5` and a source holding an escape were taken)."""
    points = raw.get("points", 0)
    if type(points) is not int or points < 0:
        raise ValueError(f"points must be a whole number from 0, got {short_repr(points)}")
    sources = raw.get("sources", [])
    if not isinstance(sources, list) or not all(isinstance(s, str) and checks.printable(s) == s for s in sources):
        raise ValueError(f"sources must be a list of file names, got {short_repr(sources)}")
    fitted_at = raw.get("fitted_at", "")
    if not isinstance(fitted_at, str) or checks.printable(fitted_at) != fitted_at:
        raise ValueError(f"fitted_at must be a time as text, got {short_repr(fitted_at)}")


def _mapping(value, what: str) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, got {checks.json_kind(value)}")
    return value


def _known(value, allowed: tuple[str, ...], what: str):
    """`value` (or each key of a mapping) is one of `allowed`."""
    for name in (value if isinstance(value, dict) else (value,)):
        if name not in allowed:
            raise ValueError(f"unknown {what} {short_repr(name)}{near_hint(name, allowed)}: use {', '.join(allowed)}")
    return value


def _by_gpu(value, what: str, read) -> dict:
    """A mapping keyed by GPU, each key under the GPU's own name (what the estimator looks up): `a100-80gb` was
    accepted and then never read. Two keys for one GPU are refused, as a key given twice is."""
    by_name: dict = {}
    for key, entry in _mapping(value, what).items():
        name = _gpu(key)
        if name in by_name:
            raise ValueError(f"{what} gives {name} twice (as {short_repr(by_name[name][0])} and {short_repr(key)}): "
                             "keep one")
        by_name[name] = (key, read(key, entry))
    return {name: entry for name, (_, entry) in by_name.items()}


def _gpu(name: str) -> str:
    """The GPU's own name for a name or alias (`orch catalog gpus` lists both)."""
    if name == cpu_gpu().name:
        return name
    gpu = find_gpu(name)
    if gpu is None:
        raise ValueError(f"unknown GPU {short_repr(name)} (`orch catalog gpus` lists them)")
    return gpu.name


def _method(name: str) -> str:
    return _known(name, METHODS, "method")


def _memory(kind: str, values) -> dict[str, float]:
    """A device kind's fitted overheads: the context and the slack, and the headroom where it was fitted."""
    _known(_mapping(values, f"{kind} memory"), MEMORY_KEYS, f"{kind} memory key")
    missing = [key for key in MEMORY_KEYS[:2] if key not in values]
    if missing:
        raise ValueError(f"{kind} memory needs {' and '.join(missing)}")
    return {k: checks.number(v, f"{kind} {k}", 0, MEMORY_MAXIMA[k]) for k, v in values.items()}


def _basis(value, what: str) -> str:
    if value not in BASES:
        raise ValueError(f"the basis of {what} must be one of {', '.join(BASES)}, got {short_repr(value)}")
    return value


def _bases_match(bases: dict[str, dict], values: dict[str, dict], what: str) -> None:
    """Each basis names a value beside it, and a fitted value's origin (`measured` or `published`): a basis alone,
    or `analytic` on a fitted value, made an estimate say the wrong origin of its numbers."""
    for group, named in bases.items():
        for key, basis in named.items():
            where = f"{group} {key}".strip()
            if key not in values.get(group, {}):
                raise ValueError(f"the basis of {what} {where} names no fitted value: remove it")
            if basis == "analytic":
                raise ValueError(f"{what} {where} is a fitted value, so its basis is measured or published: "
                                 "analytic is for the documented defaults")


def _method_basis(value, method_efficiency: dict[str, float]) -> dict[str, str]:
    """The origin of each per-method fit: {method: basis}, or one basis for all of them (what files written before
    it was kept per method hold)."""
    if isinstance(value, dict):
        return {_method(m): _basis(v, f"the per-method fit of {m}") for m, v in value.items()}
    basis = _basis(value, "the per-method fits")
    return {m: basis for m in method_efficiency}


def _efficiency(value, what: str) -> float:
    """A share of peak FLOPs within EFFICIENCY_BOUNDS, what `orch calibrate` fits: "above 0" let 5e-324 through,
    which divided by zero in the planner, and 1e-12, which planned a job at millions of hours."""
    return float(checks.number(value, what, *EFFICIENCY_BOUNDS))
