"""Options written as Hugging Face's argument parser takes them are read as orch's own spelling."""

import json

import pytest
from typer.testing import CliRunner

from orchestrator.cli.main import app
from tests.conftest import REPO

runner = CliRunner()
BASE = ["estimate", "Llama-3.1-8B", "--method", "qlora", "--gpu", "A100", "--json"]


def settings(*args: str) -> dict:
    result = runner.invoke(app, [*BASE, *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["settings"]


@pytest.mark.parametrize("given, same_as", [
    (["--gradient_checkpointing", "true"], ["--gradient-checkpointing"]),
    (["--grad-ckpt", "False"], ["--no-grad-ckpt"]),
    (["--double-quant=false"], ["--no-double-quant"]),
    (["--no-compile", "true"], ["--no-compile"]),
    (["--compile", "yes"], ["--compile"]),
    (["--lora_r", "8", "--seq_len", "512"], ["--lora-r", "8", "--seq-len", "512"]),
])
def test_hugging_face_spellings_read_as_orchs(given, same_as):
    assert settings(*given) == settings(*same_as)


def test_a_flag_given_true_is_on():
    assert settings("--compile", "true")["compile"] and not settings("--compile", "false")["compile"]


def test_a_plain_flag_given_false_is_left_out_and_a_word_that_is_no_boolean_is_still_refused():
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--json", "false"])
    assert result.exit_code == 0 and not result.stdout.lstrip().startswith("{")
    result = runner.invoke(app, [*BASE, "--compile", "maybe"])
    assert result.exit_code == 2 and "maybe" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("args", [["--spot=false"], ["--spot", "false"], ["--no_spot"], ["--no-spot", "true"]])
def test_orch_plans_own_parser_reads_the_same_forms(args):
    """`orch plan` has a parser of its own (argparse, for speed): `--spot=false` was "ignored explicit argument"."""
    from orchestrator.cli.plan import run

    job = str(REPO / "examples" / "llama31-8b-qlora.yaml")
    assert run([job, "--budget", "50", "--json", *args]) == 0


def test_a_negative_amount_with_a_unit_is_refused_as_a_value_and_a_flag_set_on_and_off_is_refused(capsys):
    from orchestrator.cli.plan import run

    job = str(REPO / "examples" / "llama31-8b-qlora.yaml")
    assert run([job, "--budget", "-5usd"]) == 2  # one error line, exit 2
    assert "--budget must be above 0" in capsys.readouterr().err
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--json", "true", "--json", "false"])
    assert result.exit_code == 2 and "--json given twice, as on and off" in result.stderr


def test_an_option_in_another_spelling_is_no_value_and_help_stays_help():
    """`--budget --max_usd_per_hour 2` took the next option, underscored, as the budget."""
    from orchestrator.cli.argv_forms import argparse_options, spelled_as_orch
    from orchestrator.cli.plan import parser

    options = argparse_options(parser())
    assert spelled_as_orch(options, ["--budget", "--max_usd_per_hour", "2"]) == \
        ["--budget", "--max-usd-per-hour", "2"]
    assert spelled_as_orch(options, ["--help", "false"]) == ["--help", "false"]
    assert "--no-such" not in options and "--such" not in options


@pytest.mark.parametrize("given, same_as", [
    (["--cutoff-len", "1024"], ["--seq-len", "1024"]),  # LLaMA-Factory
    (["--max_length=1024"], ["--seq-len", "1024"]),  # TRL
    (["--optim", "paged_adamw_8bit"], ["--optimizer", "paged_adamw_8bit"]),  # transformers
    (["--attn-implementation", "flash_attention_2"], ["--attention", "flash_attention_2"]),
    (["--torch_dtype", "float16"], ["--precision", "fp16"]),
    (["--fp16"], ["--precision", "fp16"]),
    (["--fp16", "true"], ["--precision", "fp16"]),  # not A100's default, bf16
    (["--fp16", "1"], ["--precision", "fp16"]),  # 1 is a yes word to a switch (1 == True lost the True)
    (["--load-in-4bit", "1"], ["--load-in-4bit"]),
    (["--quantization-bit", "4.0"], ["--quantization-bit", "4"]),  # a number as typed, never "quoted"
    (["--bf16", "false", "--fp16"], ["--precision", "fp16"]),
    (["--model.lora-dropout=0"], ["--lora-dropout", "0"]),
    (["--use-liger-kernel"], ["--loss", "fused"]),
    (["--torch-compile", "true"], ["--compile"]),
    (["--lora-target", "q_proj,v_proj"], ["--target-modules", "q_proj,v_proj"]),
    (["--use-bnb-nested-quant", "false"], ["--no-double-quant"]),
    (["--quantize", "bnb.nf4"], ["--quantization", "bnb.nf4"]),  # LitGPT
])
def test_other_trainers_options_read_as_orchs(given, same_as):
    assert settings(*given) == settings(*same_as)


def test_a_yes_word_after_another_trainers_number_option_is_its_number():
    """`--cutoff-len 1` is seq_len 1 (refused as a length), not a switch set true."""
    result = runner.invoke(app, [*BASE, "--cutoff-len", "1"])
    assert result.exit_code == 2 and "--seq-len must be at least 2" in result.stderr, result.output


@pytest.mark.parametrize("given", [["--load-in-4bit"], ["--quantization-bit", "4"], ["--finetuning-type", "lora",
                                   "--quantization-bit", "4"], ["--use-peft", "--load-in-4bit"]])
def test_lora_on_weights_another_trainer_quantizes_is_qlora(given):
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--method", "lora", *given, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["method"] == "qlora"


@pytest.mark.parametrize("command", [["runs"], ["catalog", "gpus"], ["spend"]])
@pytest.mark.parametrize("given", [["--bf16", "false"], ["--load-in-4bit=0"], ["--wandb-project="]])
def test_a_foreign_option_a_command_has_no_setting_for_is_refused_whatever_its_value(command, given):
    """Set off or empty it made no flag, so `orch runs --bf16 false` passed unsaid."""
    result = runner.invoke(app, [*command, *given])
    assert result.exit_code == 2 and "is no option of this command" in result.stderr, result.output


def test_a_switch_before_the_model_leaves_the_model_alone():
    result = runner.invoke(app, ["estimate", "--load-in-8bit", "Llama-3.1-8B", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["settings"]["quant_bits"] == 8


@pytest.mark.parametrize("given, said", [
    (["--optim", "sgd"], "--optim: orch has no optimizer 'sgd'"),
    (["--quantization-bit", "3"], "orch quantizes to 4 or 8 bits"),
    (["--bnb-4bit-quant-type", "fp4"], "quantizes to NF4"),
    (["--cutoff-len"], "--cutoff-len takes a value"),
    (["--fp16", "false"], "--fp16 false says what `precision` is not"),  # auto could pick what it denies
    (["--bf16", "--bf16", "false"], "--bf16 given as on and off"),
    (["--bf16", "false", "--precision", "bf16"], "--bf16 false and --precision bf16 say opposite things"),
    (["--precision=BF16", "--bf16=no"], "--bf16 false and --precision BF16 say opposite things"),
    (["--load-in-4bit=maybe"], "--load-in-4bit is on or off: give true or false"),
    (["--optim", "--bf16"], "--optim takes a value"),
    (["--lora-target-modules=yes"], "--target-modules"),
])
def test_another_trainers_option_orch_cannot_take_is_one_line(given, said):
    result = runner.invoke(app, [*BASE, *given])
    assert result.exit_code == 2 and said in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_a_job_setting_the_estimate_does_not_read_is_checked_and_said_not_refused():
    """A published point's `--lora_alpha 16 --learning-rate 2e-4`, copied from its training command line, was refused
    as "a job-file setting this command takes no option for": the estimate takes any job setting, checked as a job
    file's, and says the ones that change nothing in it."""
    plain = runner.invoke(app, [*BASE, "--json"])
    given = runner.invoke(app, [*BASE, "--lora_alpha", "16", "--learning-rate=2e-4", "--set", "warmup_ratio=0.03",
                                "--num-train-epochs", "3", "--json"])
    assert given.exit_code == 0, given.output
    estimate = json.loads(given.stdout)
    assert estimate["vram_gib"] == json.loads(plain.stdout)["vram_gib"]
    assert "`epochs`, `learning_rate`, `lora_alpha`, `warmup_ratio` change neither the memory nor the speed" in \
        " ".join(estimate["notes"])


@pytest.mark.parametrize("given, said", [
    (["--lora-alpha", "-3"], "`lora_alpha` must be above 0, got -3"),
    (["--set", "seq_len=512"], "give --seq-len instead"),
    (["--dataset", "data.jsonl"], "an estimate is of one training step, whatever the data"),
    (["--num-train-epochs", "-3"], "`epochs` must be above 0, got -3"),
    (["--set", "bogus=1"], "unknown key `bogus`"),
])
def test_a_job_setting_given_to_the_estimate_is_checked_as_a_job_files(given, said):
    result = runner.invoke(app, [*BASE, *given])
    assert result.exit_code == 2 and said in result.stderr and len(result.stderr.strip().splitlines()) == 1, \
        result.output


def test_a_quantization_type_alone_quantizes_nothing():
    """TRL's bnb_4bit_quant_type only picks load_in_4bit's type: read as QLoRA it turned a LoRA into one."""
    result = runner.invoke(app, ["estimate", "Llama-3.1-8B", "--method", "lora", "--bnb-4bit-quant-type", "nf4",
                                 "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["settings"]["method"] == "lora", result.output


@pytest.mark.parametrize("args, said", [
    (["launch", "examples/tiny.yaml", "--budget-usd", "5"], "use --budget"),
    (["plan", "examples/tiny.yaml", "--cutoff-len", "64"], "set it in the job file"),
])
def test_a_setting_a_command_takes_another_way_says_how(args, said):
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and said in result.stderr, result.output


def test_a_path_that_spells_a_job_key_is_no_option():
    """`./tokenizer` was read as the job key `tokenizer` and refused as an option."""
    result = runner.invoke(app, ["estimate", "./tokenizer"])
    assert result.exit_code == 2 and "model folder './tokenizer' does not exist" in result.stderr, result.output


def test_a_switchs_word_and_a_negative_number_are_its_values():
    assert settings("--bf16", "auto") == settings("--precision", "auto")
    result = runner.invoke(app, [*BASE, "--max-length", "-5"])
    assert result.exit_code == 2 and "--seq-len must be above 0, got -5" in result.stderr, result.output


def test_orch_plans_help_states_the_defaults_it_plans_with():
    """`--top` and `--objective` said no default (10 rows, which drops a column at 80; cost), as launch's help does."""
    from orchestrator.cli.plan import parser

    help_text = " ".join(parser().format_help().split())
    assert "Rank by cost or time (default: cost)" in help_text and "each table (default: 10)" in help_text


@pytest.mark.parametrize("dashed", ["\u2014seq-len", "\u2013seq-len", "\u2212\u2212seq-len=512"])
def test_an_option_typed_with_a_long_dash_is_named_with_its_hyphens(dashed, capsys, tmp_path, monkeypatch):
    """`—seq-len`, as a word processor writes `--seq-len`, was an "unexpected extra argument", and on plan a missing
    --budget; a file of that name is still a file."""
    from orchestrator.cli.plan import run

    result = runner.invoke(app, [*BASE, dashed, "512"])
    assert result.exit_code == 2 and "write --seq-len;" in result.stderr, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert run([str(REPO / "examples" / "tiny.yaml"), "\u2014budget", "20"]) == 2
    assert "the option budget is typed with U+2014 (em dash), not the keyboard's hyphen-minus" in \
        capsys.readouterr().err
    short = runner.invoke(app, ["runs", "\u2013h"])  # a short option: one hyphen
    assert short.exit_code == 2 and "write -h;" in short.stderr, short.output
    monkeypatch.chdir(tmp_path)
    (tmp_path / "\u2014job.yaml").write_text("x: 1\n")
    assert run(["\u2014job.yaml", "--budget", "20"]) == 2
    assert "long dash" not in capsys.readouterr().err
