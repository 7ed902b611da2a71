"""A jobs row changed by hand is checked as a runs row is (store.record_from_row): its ids must be ones orch makes and
its counts not below 0, else every command that reads the queue says, in one line, the row, the column and the fix."""

import sqlite3
from contextlib import closing

import pytest
from typer.testing import CliRunner

from gpu_catalog.errors import UserError
from orchestrator.cli.main import app
from orchestrator.schedule.queue import JOB_ID, JobQueue, new_job_id

runner = CliRunner()


def queue_with_one_job(tmp_path, sql: str) -> JobQueue:
    """A queue holding one job, then `sql` run on runs.db by hand (sqlite3 stores whatever it is given)."""
    queue = JobQueue(tmp_path / "runs.db")
    queue.submit("j", "x.yaml", "{}", None, None, 0)
    with closing(sqlite3.connect(tmp_path / "runs.db")) as db, db:
        db.execute(sql)
    return queue


def test_new_job_ids_are_of_the_form_the_reader_accepts():
    assert all(JOB_ID.fullmatch(new_job_id()) for _ in range(50))


@pytest.mark.parametrize(("sql", "said"), [
    ("UPDATE jobs SET job_id = '../x'",
     "the jobs row '../x' is damaged: job_id is '../x', not an id orch makes (j- and 8 hex digits)"),
    ("UPDATE jobs SET job_id = 'j-1234567'", "job_id is 'j-1234567', not an id orch makes"),
    ("UPDATE jobs SET job_id = 'J-0000000A'", "job_id is 'J-0000000A', not an id orch makes"),
    ("UPDATE jobs SET run_id = '../../r'", "run_id is '../../r', not an id orch makes (r- and 8 hex digits)"),
    ("UPDATE jobs SET attempts = -3", "attempts is -3, not a whole number from 0"),
    ("UPDATE jobs SET preemptions = -1", "preemptions is -1, not a whole number from 0"),
    ("UPDATE jobs SET priority = 99999999999999",
     "priority is 99999999999999, not a whole number from -1,000,000 to 1,000,000"),  # as --priority refuses it
])
def test_a_hand_edited_jobs_row_is_refused_naming_its_column(tmp_path, sql, said):
    """job_id '../x' was listed and cancelled; attempts -3 gave a job three more retries than MAX_ATTEMPTS."""
    queue = queue_with_one_job(tmp_path, sql)
    job_id = sqlite3.connect(tmp_path / "runs.db").execute("SELECT job_id FROM jobs").fetchone()[0]
    try:  # an id orch reads in one case (`J-0000000A`) is named by no id given
        assert queue.find(job_id) == []
    except UserError as error:
        assert "is damaged" in str(error)
    for read in (queue.all, lambda: queue.get(job_id)):
        with pytest.raises(UserError, match="is damaged") as error:
            read()
        message = str(error.value)
        assert message.startswith(f"{tmp_path / 'runs.db'}: the jobs row ") and said in message, message
        assert "Fix or delete that row with sqlite3" in message


def test_a_good_row_with_a_run_and_counts_still_reads(tmp_path):
    queue = queue_with_one_job(tmp_path, "UPDATE jobs SET run_id = 'r-0000cafe', attempts = 2, preemptions = 5")
    [job] = queue.all()
    assert (job.run_id, job.attempts, job.preemptions) == ("r-0000cafe", 2, 5)
    old = queue_with_one_job(tmp_path / "old", "UPDATE jobs SET run_id = 'r-20261122-112849-76524c'")
    assert old.all()[0].run_id == "r-20261122-112849-76524c"  # a version-1 run id, as the runs reader takes


def test_a_damaged_id_is_shown_escaped_once(tmp_path):
    """The runs reader showed `the runs row 'r-\\\\x1b[31mx' is damaged: run_id is 'r-\\x1b[31mx'`."""
    queue = queue_with_one_job(tmp_path, "UPDATE jobs SET job_id = 'j-' || char(27) || '[31mx'")
    with pytest.raises(UserError) as error:
        queue.all()
    message = str(error.value)
    assert "the jobs row 'j-\\x1b[31mx' is damaged: job_id is 'j-\\x1b[31mx', not an id" in message, message
    assert "\x1b" not in message and "\\\\" not in message


def test_queue_and_cancel_refuse_a_job_id_that_names_a_path(tmp_path, monkeypatch):
    """`orch queue` listed '../x' (exit 0) and `orch cancel ../x` said `cancelled ../x`."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    queue_with_one_job(tmp_path, "UPDATE jobs SET job_id = '../x'")
    for command in (["queue", "--explain"], ["queue", "--json"], ["cancel", "../x"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, (command, result.output)
        assert "the jobs row '../x' is damaged: job_id is '../x'" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "cancelled" not in result.stdout
    status = sqlite3.connect(tmp_path / "runs.db").execute("SELECT status FROM jobs").fetchone()[0]
    assert status == "queued"


@pytest.mark.parametrize(("sql", "said"), [
    ("UPDATE jobs SET attempts = -3", "attempts is -3, not a whole number from 0"),
    ("UPDATE jobs SET status = 'zz'", "status is 'zz', not one of queued")])
def test_the_scheduler_refuses_a_damaged_row(tmp_path, monkeypatch, sql, said):
    """A status no orch writes was refused by `orch queue`, and passed over by the scheduler: "no queued jobs"."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    queue_with_one_job(tmp_path, sql)
    result = runner.invoke(app, ["scheduler", "run", "--once", "--cpu-slots", "0"])
    assert result.exit_code == 2, result.output
    assert "the jobs row 'j-" in result.stderr and said in result.stderr, result.stderr


def test_a_damaged_row_keeps_no_command_from_another_job(tmp_path, monkeypatch):
    """`orch cancel` of a healthy job was refused for another job's hand-edited row."""
    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    queue = queue_with_one_job(tmp_path, "UPDATE jobs SET attempts = -3")
    healthy = queue.submit("k", "y.yaml", "{}", None, None, 0).job_id
    result = runner.invoke(app, ["cancel", healthy])
    assert result.exit_code == 0 and "is damaged" not in result.output, result.output
    assert runner.invoke(app, ["queue"]).exit_code == 2


@pytest.mark.parametrize("sql", ["UPDATE jobs SET status = 'done', attempts = -3",
                                 "UPDATE jobs SET status = 'done', job_path = '/home/me/job.yaml'"])
def test_a_damaged_row_of_an_ended_job_keeps_submit_and_the_scheduler_going(tmp_path, monkeypatch, sql):
    """Every row was read for the open ones: a done job's hand-edited row stopped every submit and every scheduler
    pass of the home; an ended job's file is read no more, and an older orch could leave its row naming the user's."""
    from tests.conftest import REPO

    monkeypatch.setenv("ORCH_HOME", str(tmp_path))
    queue_with_one_job(tmp_path, sql)
    submitted = runner.invoke(app, ["submit", str(REPO / "examples" / "tiny.yaml"), "--budget", "1"])
    assert submitted.exit_code == 0, submitted.output
    assert runner.invoke(app, ["scheduler", "run", "--once", "--cpu-slots", "0"]).exit_code == 0
