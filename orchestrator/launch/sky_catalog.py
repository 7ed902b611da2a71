"""`orch catalog refresh`: bring SkyPilot's price catalog up to date in ~/.sky/catalogs/v8, where both SkyPilot and
orch read it. Online, SkyPilot's own downloader fetches each cloud's CSV (sky is imported only here); offline,
`--from DIR` copies a v8 folder, which SkyPilot then treats as user-edited and never overwrites."""

import contextlib
import csv
import io
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from gpu_catalog import checks
from gpu_catalog.errors import UserError
from gpu_catalog.offers import sky_catalog_dir
from gpu_catalog.skypilot_catalog import CatalogFileError, read_catalog_dir

GPU_CLOUDS = ("aws", "gcp", "azure", "lambda", "runpod", "vast", "nebius", "verda", "fluidstack", "cudo",
              "paperspace", "hyperbolic", "seeweb", "shadeform", "primeintellect")
# SkyPilot's largest catalog file (AWS's vms.csv, every region and instance) is tens of MB
MOST_CATALOG_BYTES = 512 * 10**6


def copy_catalog(from_dir: Path, to_dir: Path) -> list[str]:
    """Copy a v8 folder's catalogs over SkyPilot's, each read and checked first: a broken file copied in would make
    every later plan fail."""
    files = sorted(from_dir.glob("*/vms.csv")) + sorted(from_dir.glob("common/*.csv"))
    if not files:
        raise UserError(f"{from_dir} holds no <cloud>/vms.csv: point --from at a SkyPilot catalog 'v8' folder.")
    try:  # each raises, naming the file (and line), before anything is replaced
        read_catalog_dir(from_dir)
    except CatalogFileError as exc:  # "rerun `orch catalog refresh`" was no way out of a source itself broken
        raise UserError(f"{exc.problem}: fix that file of --from's, or copy from a whole catalog folder.") from None
    for source in files:
        _check_copyable(source)
        _check_landing(to_dir / source.relative_to(from_dir))
    targets = [to_dir / source.relative_to(from_dir) for source in files]
    _copy_beside(files, targets)
    for target in targets:  # once every copy is whole: renames, each atomic
        os.replace(_beside(target), target)
    return [f"copied {source} -> {target}" for source, target in zip(files, targets, strict=True)]


def _beside(target: Path) -> Path:
    return target.with_name(f".{target.name}.orch-new")


def _copy_beside(files: list[Path], targets: list[Path]) -> None:
    """Each file copied next to the one it replaces, under a temporary name: copied straight over it, a full disk cut
    lambda/vms.csv mid-row after the clouds before it were replaced, and every later plan failed on it. On a failure
    the copies go and SkyPilot's catalog is as it was."""
    done = []
    try:
        for source, target in zip(files, targets, strict=True):
            target.parent.mkdir(parents=True, exist_ok=True)
            done.append(_beside(target))
            shutil.copyfile(source, done[-1])
    except OSError as exc:
        for copy in done:
            copy.unlink(missing_ok=True)
        raise UserError(f"cannot write {target} ({exc.strerror or exc}), so no catalog was replaced: free space "
                        "there, or check the folder's permissions.") from None


def _check_copyable(source: Path) -> None:
    """A file fit to replace SkyPilot's: a regular file of at most MOST_CATALOG_BYTES, UTF-8 CSV with a header. Only
    the vms.csv files were read before copying: a common/ file linked to /dev/zero was copied until the disk filled,
    a pipe stopped the copy half done, and a file that was not UTF-8 was copied in silence."""
    what, away = "SkyPilot catalog file", "remove it from the --from folder"
    checks.input_file(source, what, f"put the file itself there, or {away}.")
    if (size := source.stat().st_size) > MOST_CATALOG_BYTES:
        raise UserError(f"{what} '{source}' is {size / 1e6:,.0f} MB, more than any catalog's "
                        f"{MOST_CATALOG_BYTES / 1e6:,.0f} MB: check it, or {away}.")
    reader = csv.reader(io.StringIO(checks.read_text(source, what), newline=""), strict=True)
    try:
        if next(reader, None) is None:
            raise UserError(f"{what} '{source}' is empty, with no header row: fix it, or {away}.")
        for _ in reader:
            pass
    except csv.Error as exc:
        raise UserError(f"{what} '{source}' line {reader.line_num} is not CSV ({checks.csv_error_text(exc)}): fix it, "
                        f"or {away}.") from None


def _check_landing(target: Path) -> None:
    """Where a catalog file lands, checked for every file before the first is copied: a file where a folder goes, a
    folder where the file goes, or a folder that takes no file stopped the copy half done, one cloud's file replaced
    and the next not."""
    for folder in (*reversed(target.parents), target):
        if folder == target and folder.is_dir():
            raise UserError(f"'{target}' is a folder where SkyPilot's catalog file goes: remove it, then refresh.")
        if folder != target and folder.exists() and not folder.is_dir():
            raise UserError(f"'{folder}' is a file where SkyPilot's catalog folder goes: move it away, then refresh.")
    existing = next(folder for folder in target.parents if folder.exists())
    if not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"'{existing}' is not writable, and SkyPilot's catalog goes in it: make it writable, then "
                        "refresh.")


def download_catalog() -> list[str]:
    """Ask SkyPilot to pull each GPU cloud's catalog now; a cloud that fails is reported, not fatal."""
    try:
        from sky import sky_logging
        from sky.catalog import common
    except ImportError:
        raise UserError("SkyPilot is not installed: `pip install skypilot`, or use `--from DIR`.") from None
    lines = []
    for cloud in GPU_CLOUDS:
        path = Path(common.get_catalog_path(f"{cloud}/vms.csv"))
        before = _file_identity(path)
        try:
            # in-process, sky would print its API server's status payloads; silent() keeps ERROR, and offline sky
            # logs "Failed to fetch ... catalog" once per cloud on stdout: the line per cloud below says it once
            with sky_logging.silent(), _sky_loggers_off():
                frame = common.read_catalog(f"{cloud}/vms.csv", pull_frequency_hours=0)
                rows = len(frame.index)  # the frame is lazy: reading it is what downloads
        except Exception as exc:  # noqa: BLE001 - network, rate limit or an unknown cloud: report and go on
            lines.append(f"{cloud}: not refreshed ({type(exc).__name__})")
            continue
        if before is not None and _file_identity(path) == before:  # SkyPilot kept (and touched) the file it had
            lines.append(f"{cloud}: not refreshed (no download; {rows} rows kept in {path})")
        else:
            lines.append(f"{cloud}: {rows} rows in {path}")
    if all("not refreshed" in line for line in lines):
        raise UserError("could not download any catalog (no network?). Offline, use `orch catalog refresh --from "
                        "DIR` with a SkyPilot v8 catalog folder.\n" + "\n".join(lines))
    return lines


def _file_identity(path: Path) -> tuple[int, int] | None:
    """Which file is at `path` now: SkyPilot writes a download to a new file and renames it there. One it could not
    download it keeps, touched, and it was listed as refreshed (`orch catalog refresh` offline said so, exit 0)."""
    try:
        stat = path.stat()
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


@contextlib.contextmanager
def _sky_loggers_off() -> Iterator[None]:
    """No record from SkyPilot's loggers ('sky' and every 'sky.*', some of which have a level of their own) at any
    level, ERROR included, for the block; each logger's level is put back after it."""
    manager = logging.Logger.manager
    names = ["sky"] + [name for name in manager.loggerDict if name.startswith("sky.")]
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def refresh_catalog(from_dir: Path | None) -> list[str]:
    """What the refresh did, a line each, and a last line when ORCH_SKY_CATALOGS is set: orch reads those folders
    then, not the one refreshed, and the refresh was said done while every plan went on reading the old prices."""
    lines = _refreshed(from_dir)
    if named := checks.env_value("ORCH_SKY_CATALOGS"):
        lines.append(f"note: ORCH_SKY_CATALOGS is set ({named}), so orch plans from those folders, not from "
                     f"{sky_catalog_dir()}: unset it to plan from the refreshed catalog.")
    return lines


def _refreshed(from_dir: Path | None) -> list[str]:
    if from_dir is not None:
        checks.fits_the_file_system(from_dir, "--from")  # is_dir() raised the system's bare `File name too long`
        if loop := checks.symlink_loop(from_dir, "--from"):  # a loop of links was said not to exist
            raise loop
        if not from_dir.is_dir():
            what = "is not a folder" if from_dir.exists() else "does not exist"  # /dev/zero is no file either
            raise UserError(f"--from {from_dir} {what}: give a SkyPilot catalog 'v8' folder.")
        if from_dir.resolve() == sky_catalog_dir().resolve():
            raise UserError(f"--from {from_dir} is the catalog being refreshed: give another copy of it.")
        return copy_catalog(from_dir, sky_catalog_dir())
    return download_catalog()
