"""Progress: tqdm on a terminal, whole lines (no carriage returns) in a file or a pipe."""

import io

from lowprec._progress import LineProgress, progress_bar


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_file_gets_plain_lines_without_carriage_returns():
    out = io.StringIO()
    bar = progress_bar(total=50, desc="epoch 1/2 [full]", unit="step", file=out, interval=0.0)
    assert isinstance(bar, LineProgress)
    for _ in range(50):
        bar.update(1)
        bar.set_postfix(loss="0.1234", refresh=False)
    bar.write("epoch   1 [full] loss=0.1234", file=out)
    bar.close()
    text = out.getvalue()
    assert "\r" not in text and text.endswith("\n")
    assert "epoch 1/2 [full]: 50/50 step (100%)" in text and "loss=0.1234" in text


def test_lines_are_occasional():
    out = io.StringIO()
    with progress_bar(range(1000), desc="darcy", file=out, interval=3600.0) as bar:
        assert sum(1 for _ in bar) == 1000
    assert out.getvalue().count("\n") == 1  # only the closing line


def test_inner_bars_and_disabled_bars_stay_quiet():
    out = io.StringIO()
    assert list(progress_bar(range(3), file=out, leave=False)) == [0, 1, 2]
    bar = progress_bar(total=3, file=out, disable=True, interval=0.0)
    bar.update(3)
    bar.close()
    assert out.getvalue() == ""


def test_a_terminal_gets_tqdm():
    from tqdm import tqdm

    bar = progress_bar(total=3, file=Terminal())
    assert isinstance(bar, tqdm)
    bar.close()
