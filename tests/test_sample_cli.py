"""`rnntui sample` end to end: temperature lists, --num-samples, --stop and --beam on a run trained here, the
sections' labels and log-probabilities, and every bad input (one line, exit 2)."""

import io
import math
import re
from pathlib import Path

import pytest

from rnntui.cli import main
from rnntui.core.decode import BeamSearch, Sampling
from rnntui.inference import open_stepper

WORDS = ("the quick brown fox jumps over the lazy dog while the cat sleeps in the warm sun and "
         "a bird sings softly to the morning light ").split()
TEXT = "\n".join(" ".join(WORDS[(i * 7) % len(WORDS):] + WORDS[: (i * 7) % len(WORDS)]) for i in range(200)) + "\n"
TRAIN = ["--layers", "2", "--hidden", "32", "--embed", "16", "--batch-size", "8", "--seq-len", "32", "--lr", "0.02",
         "--eval-every", "40", "--sample-every", "1000", "--threads", "1", "--quiet"]
FOOTER = re.compile(r"^--- (\d+) characters(?:, stopped at '(.*)')?, log-probability (-?[\d.]+): (-?[\d.]+) per "
                    r"character \(([\d.]+) bits\)$", re.M)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    base = tmp_path_factory.mktemp("sample-cli")
    corpus = base / "text.txt"
    corpus.write_text(TEXT)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNNTUI_HOME", str(base / "home"))
        assert main(["train", str(corpus), *TRAIN, "--max-steps", "40", "--run-dir", str(base / "run")]) == 0
    return base / "run"


def sample(capsys, run_dir, *args):
    capsys.readouterr()
    assert main(["sample", str(run_dir), "--prime", "the ", *map(str, args)]) == 0
    return capsys.readouterr()


def sections(out):
    """'=== label ===' sections -> [(label, body, footer match)]."""
    parts = re.split(r"^=== (.*) ===\n", out, flags=re.M)[1:]
    result = []
    for label, chunk in zip(parts[::2], parts[1::2]):
        footer = FOOTER.search(chunk)
        result.append((label, chunk[: footer.start()].removesuffix("\n"), footer))
    return result


def api_texts(run_dir, temperatures, seeds, stops=(), length=60):
    stepper, vocab, _ = open_stepper(Path(run_dir))
    sampling = Sampling(stepper, vocab, "the ", temperatures, seeds, stops=stops)
    out = [""] * len(seeds)
    for stream, piece in sampling.run(length):
        out[stream] += piece
    return out


def test_temperature_list_gives_labelled_sections_with_log_probabilities(run_dir, capsys):
    out = sample(capsys, run_dir, "--temperature", "0.2,0.5,1.0", "--length", "60", "--seed", "5").out
    found = sections(out)
    assert [label for label, _, _ in found] == ["temperature 0.2, seed 5", "temperature 0.5, seed 5",
                                                "temperature 1, seed 5"]
    assert [body for _, body, _ in found] == ["the " + t for t in api_texts(run_dir, [0.2, 0.5, 1.0], [5, 5, 5])]
    means = []
    for _, _, footer in found:
        n, total, mean, bits = int(footer[1]), float(footer[3]), float(footer[4]), float(footer[5])
        assert n == 60 and mean == pytest.approx(total / 60, abs=2e-3) and bits == pytest.approx(-mean / math.log(2),
                                                                                                abs=2e-3)
        means.append(mean)
    assert means[0] > means[2]  # cold samples are the model's likelier text
    assert sample(capsys, run_dir, "--temperature", "0.2,0.5,1.0", "--length", "60", "--seed", "5").out == out


def test_num_samples_per_temperature_use_consecutive_seeds(run_dir, capsys):
    found = sections(sample(capsys, run_dir, "--temperature", "0.5,1", "--num-samples", "2", "--length", "60",
                            "--seed", "10").out)
    assert [label for label, _, _ in found] == [
        "temperature 0.5, sample 1 of 2, seed 10", "temperature 0.5, sample 2 of 2, seed 11",
        "temperature 1, sample 1 of 2, seed 10", "temperature 1, sample 2 of 2, seed 11"]
    assert [body for _, body, _ in found] == ["the " + t for t in api_texts(run_dir, [0.5, 0.5, 1, 1], [10, 11] * 2)]
    assert len({body for _, body, _ in found}) == 4


def test_stop_ends_each_continuation_before_the_stop_text(run_dir, capsys):
    single = sample(capsys, run_dir, "--stop", "\\n", "--length", "300", "--seed", "3", "--temperature", "1.5")
    continuation = single.out.removeprefix("the ").removesuffix("\n")
    unstopped = api_texts(run_dir, [1.5], [3], length=300)[0]
    assert "\n" not in continuation and unstopped.startswith(continuation + "\n")
    assert "stopped at '\\n'" in single.err and f"rnntui: {len(continuation) + 1} characters" in single.err
    found = sections(sample(capsys, run_dir, "--stop", "\\n", "--num-samples", "3", "--length", "300",
                            "--seed", "3").out)
    for _, body, footer in found:
        assert footer[2] == "\\n" and int(footer[1]) == len(body) - len("the ") + 1 and "\n" not in body


def test_beam_sections_are_deterministic_descending_and_a_beam_of_one_is_greedy(run_dir, capsys):
    out = sample(capsys, run_dir, "--beam", "3", "--length", "40").out
    found = sections(out)
    assert [label for label, _, _ in found] == ["beam 1 of 3 (written as the beams agree)", "beam 2 of 3",
                                                "beam 3 of 3"]
    totals = [float(footer[3]) for _, _, footer in found]
    assert totals == sorted(totals, reverse=True) and len({body for _, body, _ in found}) == 3
    stepper, vocab, _ = open_stepper(run_dir)
    search = BeamSearch(stepper, vocab, "the ", 3)
    list(search.run(40))
    assert [body for _, body, _ in found] == ["the " + r.text for r in search.results]
    assert sample(capsys, run_dir, "--beam", "3", "--length", "40").out == out
    beam_one = sample(capsys, run_dir, "--beam", "1", "--length", "80")
    greedy = sample(capsys, run_dir, "--temperature", "0.0001", "--length", "80")
    assert beam_one.out == greedy.out
    logprob = re.compile(r"log-probability (-?[\d.]+)")
    assert logprob.search(beam_one.err)[1] == logprob.search(greedy.err)[1]


def test_a_plugin_cell_samples_through_torch(tmp_path, capsys):
    corpus = tmp_path / "text.txt"
    corpus.write_text(TEXT)
    assert main(["train", str(corpus), *TRAIN, "--cell", "mgu", "--max-steps", "10", "--run-dir",
                 str(tmp_path / "run")]) == 0
    first = sample(capsys, tmp_path / "run", "--num-samples", "2", "--length", "50", "--seed", "1").out
    assert len(sections(first)) == 2
    assert sample(capsys, tmp_path / "run", "--num-samples", "2", "--length", "50", "--seed", "1").out == first


@pytest.mark.parametrize("args,match", [
    (["--beam", "0"], "--beam must be at least 1"),
    (["--beam", "500"], r"wider than the model's vocabulary \(\d+ characters\)"),
    (["--temperature", ""], "at least one temperature"),
    (["--temperature", ","], "at least one temperature"),
    (["--temperature", "0.5,0"], "positive"),
    (["--temperature", "-1"], "positive"),
    (["--temperature", "0.2,hot"], "numbers separated by commas"),
    (["--num-samples", "0"], "--num-samples must be at least 1"),
    (["--stop", ""], "non-empty"),
    (["--length", "0", "--num-samples", "2"], "one sampled stream"),
    (["--length", "0", "--beam", "1"], "one sampled stream"),
    (["--threads", "0"], "--threads must be at least 1"),
    (["--beam", "2", "--temperature", "0.5"], "drop --temperature"),
    (["--length-norm", "1"], "use it with --beam"),
    (["--beam", "2", "--length-norm", "-1"], "0 or more"),
])
def test_bad_sampling_options(run_dir, capsys, args, match):
    capsys.readouterr()
    code = main(["sample", str(run_dir), *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("rnntui: error: ") and err.count("\n") == 1, err
    assert re.search(match, err), err


class CountingStream(io.StringIO):
    flushes = 0

    def flush(self):
        self.flushes += 1

    def isatty(self):
        return False


def test_output_is_flushed_in_chunks_and_the_first_character_at_once():
    from rnntui.commands.sample import ChunkedOutput

    stream = CountingStream()
    out = ChunkedOutput(stream, interval=math.inf)  # no time-based flushes: only the ones asked for
    out.write("prompt")
    out.flush_next()
    for ch in "x" * 1000:
        out.write(ch)
    assert stream.flushes == 2 and stream.getvalue() == "prompt" + "x" * 1000
