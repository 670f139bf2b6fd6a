"""The bench's service and prompt-to-keys tables: the batching ratio and each target's verdict come out right."""

from demo.first_generate import Click
from demo.first_generate import table as clicks_table
from engine.bench_service import Round
from engine.bench_service import table as service_table


def test_the_service_table_gives_what_batching_buys():
    rounds = [Round(8, 1, 4, 2.0), Round(8, 8, 32, 4.0), Round(1, 8, 32, 12.0)]
    table = service_table(rounds)
    assert "| batches up to 8 (--max-batch 8) | 8 | 32 | 4.00 | 8.00 | 0.125 |" in table
    assert "batching: 3.00x the throughput of one job at a time" in table


def test_the_prompt_to_keys_table_says_which_target_is_met():
    clicks = [Click("cold", 20.0, 19.0, None), Click("first", 3.5, 3.2, 3.0), Click("second", 0.4, 0.25, 0.5)]
    table = clicks_table(clicks, loaded_s=None)
    assert "| cold | 20.00 | 19.00 | 1.00 | - |" in table
    assert (
        "| first | 3.50 | 3.20 | 0.30 | 3 (MISSED) |" in table
        and "| second | 0.40 | 0.25 | 0.15 | 0.5 (met) |" in table
    )
    assert "not yet 10 s after" in table
