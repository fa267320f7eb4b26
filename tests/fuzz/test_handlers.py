"""Fuzz (bounded, in `make test`): mutated inputs through the real handlers, as deployed.
`make fuzz` runs the same with 10,000 inputs per entry point."""

from __future__ import annotations

from tests.fuzz.run import fuzz, report


def test_no_mutated_input_raises_out_of_a_handler(aws: None) -> None:
    tallies = fuzz(count=80, seed=11)
    assert set(tallies) == {
        "change event",
        "grace body",
        "acceptance event",
        "schedule event",
        "flow schedule event",
    }
    for name, tally in tallies.items():
        assert tally.inputs == 80
        assert not tally.unhandled, "\n".join(report(tallies))
        # The mutations reach both sides of the edge: refused, and let through to the work
        # (a grace body is judged inside its batch, which is answered either way).
        assert name == "grace body" or tally.outcomes["malformed"] > 0, name
        assert sum(tally.outcomes.values()) - tally.outcomes["malformed"] > 0, name
