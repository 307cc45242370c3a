"""`python -m dgemma_app fill` end to end with the tiny model.

Two real subprocesses (started together, each pays the torch import once) cover the full program:
many inputs in one run with `--json --trace`, and stdin with `--lang` in plain-text mode. The
remaining user errors go through the same `cli.main` in this process, which is the same code minus
the interpreter start, so the file stays fast on a busy machine.
"""
from __future__ import annotations

import io
import re
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dgemma_app import cli, gaps
from dgemma_app.gaps import Limits, MarkerError
from dgemma_app.results import Position

ROOT = Path(__file__).resolve().parent.parent

GOOD_PY = "def add(a, b):\n    return <FILL:4>\n"
GOOD_JS = "function f() {\n  return <FILL>;\n}\n"
STDIN_PY = "import json\n\nprint(json.<FILL:3>)\n"

BAD_INPUTS = {  # name -> (bytes, words the one-line message must contain)
    "binary.py": (b"\x00\x01\x02ELF\x7f<FILL>\x00", "binary"),
    "latin1.py": ('x = "caf\xe9" + <FILL>\n'.encode("latin-1"), "not UTF-8"),
    "empty.py": (b"", "empty"),
    "blank.py": (b"  \n\t\n", "empty"),
    "nomarker.py": (b"x = 1\n", "No gaps found"),
    "unbalanced.py": (b"x = <EDIT>1\n", "never closed"),
    "stray_close.py": (b"x = 1</EDIT>\n<FILL>\n", "no matching <EDIT>"),
    "nested.py": (b"<EDIT>a <FILL> b</EDIT>\n", "cannot be nested"),
    "badsize.py": (b"x = <FILL:0>\n", "whole number"),
    "big.py": (b"x = 1\n" * 100 + b"<FILL>\n", "over the limit of 500 bytes"),
    "markers.py": (b"x = <FILL:1>\n" * 5, "more than 4 markers"),
}


def subprocess_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DGEMMA_", "HF_HUB_OFFLINE"))}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_model_dir):
    """One real subprocess: stdin plus files, good and bad, `--json --trace`."""
    folder = tmp_path_factory.mktemp("inputs")
    (folder / "good.py").write_text(GOOD_PY)
    for name, (data, _) in BAD_INPUTS.items():
        (folder / name).write_bytes(data)
    (folder / "adir.py").mkdir()
    order = ["-", "good.py", *BAD_INPUTS, "adir.py", "missing.py", "good.py"]
    proc = subprocess.run(
        [sys.executable, "-m", "dgemma_app", "fill", "--json", "--trace", "--lang", "python",
         "--max-passes", "2", "--seed", "3", "--max-input-bytes", "500", "--max-markers", "4",
         *["-" if n == "-" else str(folder / n) for n in order]],
        # the model from the environment, to prove DGEMMA_* reach `fill`
        cwd=ROOT, env=subprocess_env(DGEMMA_MODEL=str(tiny_model_dir), DGEMMA_DEVICE_MAP="cpu"),
        input=STDIN_PY.encode(), capture_output=True, timeout=300,
    )
    return {"folder": folder, "order": order, "code": proc.returncode,
            "out": proc.stdout.decode("utf-8"), "err": proc.stderr.decode("utf-8")}


def split_known(marked: str, fill_text: str) -> tuple[str, str]:
    """Prefix and suffix around the single marker of `marked`."""
    segments = gaps.parse_markers(marked)
    assert len(segments) == 3
    return segments[0].text, segments[2].text


# ----------------------------------------------------------------------------- subprocess: many inputs


@pytest.mark.slow
def test_many_inputs_one_bad_exit_2_others_printed(run):
    assert run["code"] == 2, run["err"]
    assert "Traceback" not in run["err"]
    records = [json.loads(line) for line in run["out"].splitlines()]
    assert len(records) == 3  # stdin, good.py, good.py again after all the bad ones
    assert [r["language"] for r in records] == ["python"] * 3
    assert records[1]["text"] == records[2]["text"]  # same seed, same input, same fill


@pytest.mark.slow
def test_each_bad_input_is_one_line_naming_it(run):
    lines = run["err"].splitlines()
    folder = run["folder"]
    expected = {name: words for name, (_, words) in BAD_INPUTS.items()}
    expected.update({"adir.py": "folder", "missing.py": "no such file"})
    assert len(lines) == len(expected), run["err"]
    for line, name in zip(lines, [n for n in run["order"] if n in expected]):
        assert line.startswith(f"dgemma_app: {folder / name}: "), line
        assert expected[name] in line, (name, line)


@pytest.mark.slow
def test_json_contract(run):
    for record, marked in zip([json.loads(line) for line in run["out"].splitlines()], [STDIN_PY, GOOD_PY, GOOD_PY]):
        assert {"text", "fills", "language", "parses", "errors", "candidates", "stats", "trace"} <= set(record)
        assert isinstance(record["parses"], bool)
        for error in record["errors"]:
            assert set(error) >= {"line", "column", "kind", "in_fill"}
            assert isinstance(error["line"], int) and error["line"] >= 1 and error["column"] >= 1
            assert isinstance(error["in_fill"], bool)
            assert error["kind"] in ("ERROR", "MISSING") or error["kind"].endswith("Error")  # CPython's verdict
        assert record["parses"] == (record["errors"] == [])
        stats = record["stats"]
        assert set(stats) >= {"seconds", "passes", "tokens", "tokens_per_pass", "tokens_per_second"}
        assert stats["seconds"] > 0 and 1 <= stats["passes"] <= 2 * max(1, stats.get("windows", 1))
        assert stats["tokens"] >= 1 and stats["tokens_per_second"] > 0
        assert record["candidates"] and record["candidates"][0]["text"] == record["text"]
        # known text is kept exactly around the fill
        prefix, suffix = split_known(marked, record["fills"][0])
        assert len(record["fills"]) == 1
        assert record["text"] == prefix + record["fills"][0] + suffix


@pytest.mark.slow
def test_trace_has_every_pass(run):
    record = json.loads(run["out"].splitlines()[1])
    trace = record["trace"]
    assert trace[0]["step"] == 0  # the starting canvas, then one entry per pass
    assert len(trace) == record["stats"]["passes"] + 1
    for item in trace:
        n = len(item["token_ids"])
        assert n == 16  # the tiny model's canvas
        for key in ("pieces", "state", "changed", "confidence", "entropy"):
            assert len(item[key]) == n, key
        assert set(item["state"]) <= {str(p) for p in Position}


def test_without_trace_flag_there_is_no_trace(tiny_model_dir, tmp_path, capsys):
    source = tmp_path / "a.py"
    source.write_text(GOOD_PY)
    assert cli.main(["fill", "--json", str(source), "--model", str(tiny_model_dir), "--max-passes", "1"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert "trace" not in record and "trace" not in record["candidates"][0]


# ----------------------------------------------------------------------------- in-process: same main()


def one_line_error(capsys, argv, *words) -> str:
    code = cli.main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dgemma_app: "), captured.err
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def test_plain_text_mode_with_headers(tiny_model_dir, tmp_path, monkeypatch, capsys):
    source = tmp_path / "good.py"
    source.write_text(GOOD_PY)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(STDIN_PY.encode())))
    code = cli.main(["fill", "-", str(source), "--lang", "python", "--max-passes", "2", "--model", str(tiny_model_dir)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    blocks = captured.out.split("==> ")
    assert blocks[0] == ""
    assert blocks[1].startswith("stdin <==\n") and blocks[2].startswith(f"{source} <==\n")
    for block, marked in zip(blocks[1:], [STDIN_PY, GOOD_PY]):
        text = block.split("\n", 1)[1]
        prefix, suffix = split_known(marked, "")
        assert text.startswith(prefix) and text.endswith(suffix) and "<FILL" not in text
    summaries = [line for line in captured.err.splitlines() if "tokens in" in line]
    assert len(summaries) == 2 and summaries[0].startswith("dgemma_app: stdin: ")
    assert re.search(r"; \d+ tokens in [12] passes, [\d.]+ s \([\d.]+ tokens/s\)$", summaries[0]), summaries[0]  # rate(): 1 decimal below 10


EMPTY_BODY = "def f():\n    <EDIT># todo</EDIT>\n"  # strength 0 keeps "# todo": tree-sitter accepts it, CPython does not


def test_empty_python_block_body_does_not_parse(tiny_model_dir, tmp_path, capsys):
    source = tmp_path / "empty_body.py"
    source.write_text(EMPTY_BODY)
    argv = ["fill", str(source), "--strength", "0", "--max-passes", "1", "--model", str(tiny_model_dir)]
    assert cli.main([*argv, "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["text"] == "def f():\n    # todo\n" and record["parses"] is False
    assert record["errors"] == [{"line": 2, "column": 11, "kind": "IndentationError", "in_fill": True}]
    assert record["candidates"][0]["parses"] is False
    assert cli.main([*argv, "--trace"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "dgemma_app: --trace only applies with --json; ignored"
    assert err[-1].startswith(f"dgemma_app: {source}: 1 parse error(s) (tree-sitter's python grammar, then CPython's compile(), never run); ")


def test_unknown_extension(tiny_model_dir, tmp_path, capsys):
    source = tmp_path / "code.weird"
    source.write_text(GOOD_PY)
    one_line_error(capsys, ["fill", str(source), "--model", str(tiny_model_dir)], "Cannot tell the language", "--lang auto")


def test_unknown_extension_with_lang_auto_detects(tiny_model_dir, tmp_path, capsys):
    source = tmp_path / "code.weird"
    source.write_text(GOOD_JS)
    assert cli.main(["fill", str(source), "--lang", "AUTO", "--json", "--max-passes", "1", "--model", str(tiny_model_dir)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["language"] == "javascript"
    assert f"dgemma_app: {source}: detected javascript (parses as JavaScript with no errors)" in captured.err.splitlines()


def test_unknown_language(tiny_model_dir, tmp_path, capsys):
    source = tmp_path / "a.py"
    source.write_text(GOOD_PY)
    one_line_error(capsys, ["fill", str(source), "--lang", "cobol", "--model", str(tiny_model_dir)], "Unknown language 'cobol'", "python")


@pytest.mark.parametrize(
    ("text", "lang", "language"),
    [
        ("for i in range(3):\n    print(<FILL>)\n", None, "python"),  # plain Python, no def/class/import
        ("The function of a map is to show the way. <FILL> It fits in a pocket.\n", "auto", "text"),
    ],
)
def test_stdin_without_lang_detects_it_and_says_so(tiny_model_dir, monkeypatch, capsys, text, lang, language):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    argv = ["fill", "-", "--json", "--max-passes", "1", "--model", str(tiny_model_dir)] + (["--lang", lang] if lang else [])
    assert cli.main(argv) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["language"] == language
    assert captured.err.splitlines()[0].startswith(f"dgemma_app: stdin: detected {language} (")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("x1 <FILL> y2\n", ["Could not tell the language from the text (no language fits;", "Pick it with --lang."]),
        ("<FILL>\n", ["Could not tell the language from the text (there is no text)", "Pick it with --lang."]),
        ("", ["empty"]),  # markers are checked first: an empty input says so
    ],
)
def test_stdin_that_nothing_fits_is_one_line_naming_the_way_out(tiny_model_dir, monkeypatch, capsys, text, words):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(text.encode())))
    line = one_line_error(capsys, ["fill", "-", "--model", str(tiny_model_dir)], *words)
    assert line.startswith("dgemma_app: stdin: ")


def test_a_named_language_is_not_detected(tiny_model_dir, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(GOOD_PY.encode())))
    assert cli.main(["fill", "-", "--lang", "python", "--json", "--max-passes", "1", "--model", str(tiny_model_dir)]) == 0
    assert "detected" not in capsys.readouterr().err


@pytest.mark.parametrize(
    "flags, words",
    [
        (["--max-passes", "0"], "max passes"),
        (["--max-passes", "100000"], "max passes"),
        (["--entropy-bound", "-1"], "entropy bound"),
        (["--entropy-bound", "nan"], "entropy bound"),
        (["--t-max", "0.2", "--t-min", "0.5"], "t_max"),
        (["--t-max", "inf"], "t_max"),
        (["--stability", "-1"], "stability"),
        (["--confidence", "0"], "confidence"),
        (["--seed", "-5"], "seed"),
        (["--candidates", "0"], "candidates"),
        (["--candidates", "99"], "candidates"),
        (["--slot-budget", "0"], "slot budget"),
        (["--strength", "1.5"], "edit strength"),
    ],
)
def test_out_of_range_settings(tiny_model_dir, tmp_path, capsys, flags, words):
    source = tmp_path / "a.py"
    source.write_text(GOOD_PY)
    one_line_error(capsys, ["fill", str(source), "--model", str(tiny_model_dir), *flags], words)


def test_malformed_flag_is_argparse_exit_2(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["fill", "x.py", "--max-passes", "many"])
    assert info.value.code == 2 and "invalid int value" in capsys.readouterr().err


def test_default_limits_are_1_mib_and_256_markers(tiny_model_dir, tmp_path, capsys):
    big = tmp_path / "big.py"
    big.write_bytes(b"x = <FILL>\n" + b"#" * gaps.MAX_INPUT_BYTES)
    one_line_error(capsys, ["fill", str(big), "--model", str(tiny_model_dir)], "over the limit of 1,048,576 bytes")
    many = tmp_path / "many.py"
    many.write_text("x = <FILL:1>\n" * (gaps.MAX_MARKERS + 1))
    one_line_error(capsys, ["fill", str(many), "--model", str(tiny_model_dir)], "more than 256 markers")


def test_limits_stop_before_any_generation(engine, tiny_loaded):
    """Over a limit, the engine raises before a single denoising pass."""
    passes = []
    settings = engine.settings(max_passes=2)
    with pytest.raises(MarkerError, match="over the limit of 100 bytes"):
        engine.fill("x = <FILL>\n" + "#" * 200, "python", settings, on_pass=passes.append, limits=Limits(max_bytes=100))
    with pytest.raises(MarkerError, match="more than 3 markers"):
        engine.fill("<FILL:1>\n" * 4, "python", settings, on_pass=passes.append, limits=Limits(max_markers=3))
    assert passes == []
    # the same text under raised limits does run
    engine.fill("x = <FILL:1>\n" * 4, "python", settings, on_pass=passes.append, limits=Limits(max_markers=4))
    assert passes


# ----------------------------------------------------------------------------- the container's command line
# Docker cannot run on our machines; these check what can be checked without it. The file's pip line
# was also run by hand in a clean venv (docs/deploy.md says how and what it gave).


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, with continuation lines joined and comments dropped."""
    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        current += raw.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        if current.strip():
            word, _, rest = current.strip().partition(" ")
            lines.append((word.upper(), rest.strip()))
        current = ""
    return lines


def dockerignore_patterns() -> list[str]:
    return [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines() if line.strip() and not line.startswith("#")]


def test_dockerfile_layout():
    steps = dockerfile_instructions()
    kinds = [k for k, _ in steps]
    assert steps[0] == ("ARG", "BASE_IMAGE=python:3.11-slim")  # slim Python base, overridable (CUDA)
    assert steps[1] == ("FROM", "${BASE_IMAGE}")
    env = " ".join(rest for k, rest in steps if k == "ENV")
    assert "GRADIO_SERVER_NAME=0.0.0.0" in env and "HF_HUB_OFFLINE=1" in env
    assert ("EXPOSE", "7860") in steps
    assert steps[-1] == ("CMD", '["python", "app.py"]')
    # requirements layer before the code
    copies = [(i, rest.split()[0]) for i, (k, rest) in enumerate(steps) if k == "COPY"]
    pip = next(i for i, (k, rest) in enumerate(steps) if k == "RUN" and "pip install" in rest)
    req = next(i for i, src in copies if src == "requirements.txt")
    code = [i for i, src in copies if src != "requirements.txt"]
    assert req < pip < min(code)
    assert {"app.py", "dgemma_app/", "static/", "models/"} <= {src for _, src in copies}
    assert "--extra-index-url" in steps[pip][1] and "download.pytorch.org/whl/cpu" in (ROOT / "Dockerfile").read_text()
    # non-root from before the code runs to the end
    users = [(i, rest) for i, (k, rest) in enumerate(steps) if k == "USER"]
    assert users and users[-1][1] not in ("root", "0") and users[-1][0] > max(code)
    assert kinds.index("USER") > pip


def test_dockerfile_healthcheck_is_valid_python():
    check = next(rest for k, rest in dockerfile_instructions() if k == "HEALTHCHECK")
    assert "--start-period=" in check
    command = json.loads(check[check.index("CMD") + 3 :].strip())
    assert command[:2] == ["python", "-c"]
    compile(command[2], "<healthcheck>", "exec")
    assert "urllib.request.urlopen" in command[2] and "http://127.0.0.1:{port}/" in command[2] and "'7860'" in command[2]


def test_docker_copies_exist_and_are_not_ignored():
    import fnmatch

    patterns = dockerignore_patterns()
    for must in (".git", "runs", "**/__pycache__", "tests"):
        assert must in patterns
    for kind, rest in dockerfile_instructions():
        if kind != "COPY":
            continue
        source = rest.split()[0].rstrip("/")
        assert (ROOT / source).exists(), f"COPY {source}: missing"
        assert not any(fnmatch.fnmatch(source, p) or source.startswith(p.rstrip("/") + "/") for p in patterns), source
    # the embedded default is baked in: a loadable checkpoint folder under models/
    assert (ROOT / "models" / "dgemma-code-tiny" / "config.json").is_file()


def test_docker_pip_line_keeps_runtime_and_drops_test_tools():
    """Run the Dockerfile's own `sed` on requirements.txt: runtime pins stay, test tools go."""
    run = next(rest for k, rest in dockerfile_instructions() if k == "RUN" and "requirements.txt" in rest)
    sed = re.search(r"sed '([^']*)' requirements.txt", run).group(1)
    kept = subprocess.run(["sed", sed, str(ROOT / "requirements.txt")], capture_output=True, text=True, check=True).stdout
    names = {re.split(r"[=<>\[ ]", line)[0].lower() for line in kept.splitlines() if line and not line.startswith("#")}
    assert {"torch", "transformers", "accelerate", "gradio", "gradio-client", "tree-sitter", "tree-sitter-python"} <= names
    assert not names & {"pytest", "hypothesis", "playwright", "pytest-timeout"}
