"""bench/sampler_sweep.py's grid: every combination, typed as the FillSettings field."""
import pytest

from bench.sampler_sweep import parse_grid


def test_grid_is_every_combination_typed_as_the_setting():
    rows = parse_grid("entropy_bound=0.5,16 max_passes=16 exact_length=true,false")
    assert len(rows) == 4
    assert rows[0] == {"entropy_bound": 0.5, "max_passes": 16, "exact_length": True}
    assert rows[-1] == {"entropy_bound": 16.0, "max_passes": 16, "exact_length": False}
    assert isinstance(rows[0]["max_passes"], int) and rows[-1]["exact_length"] is False
    assert parse_grid("") == []  # only the defaults' row


@pytest.mark.parametrize(("grid", "message"), [("temperature=1", "unknown setting"), ("left_to_right=yes", "true or false")])
def test_bad_grid_is_named(grid, message):
    with pytest.raises(SystemExit, match=message):
        parse_grid(grid)
