"""A batch video's frame record read for scoring: a damaged line is one error naming the line."""

import pytest

from polyp_rt.core.errors import DataError, InputFileError
from polyp_rt.evaluation.record import read_records

GOOD = '{"frame": 0, "t": 0.0, "area": 0.01, "max_prob": 0.9, "polyp": false}\n'


def test_a_record_cut_short_names_its_last_line(tmp_path):
    path = tmp_path / "frames.jsonl"
    path.write_text(GOOD + "\n" + '{"frame": 1, "t": 0.04, "ar')  # cut inside line 3
    with pytest.raises(DataError, match=r"frames.jsonl:3: not a JSON line"):
        read_records(path)


def test_a_record_with_a_number_that_is_not_finite_names_the_line_and_key(tmp_path):
    path = tmp_path / "frames.jsonl"
    path.write_text(GOOD + '{"frame": 1, "t": 0.04, "area": NaN}\n')
    with pytest.raises(DataError, match=r"frames.jsonl:2: not a frame record \(area is not finite\)"):
        read_records(path)


def test_an_empty_or_missing_record_is_refused(tmp_path):
    path = tmp_path / "frames.jsonl"
    path.write_text("\n\n")
    with pytest.raises(DataError, match="holds no frame records"):
        read_records(path)
    with pytest.raises(InputFileError, match="frame record not found"):
        read_records(tmp_path / "absent.jsonl")


def test_good_lines_come_back_in_order(tmp_path):
    path = tmp_path / "frames.jsonl"
    path.write_text(GOOD + GOOD.replace('"frame": 0', '"frame": 1'))
    assert [r["frame"] for r in read_records(path)] == [0, 1]
