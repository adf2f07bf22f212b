"""The plan editor's step order: positions are places in the saved plan."""

from __future__ import annotations

from signoff.dashboard.plan_form import StepRow, in_order


def rows(*specs: tuple[str, int, str]) -> list[StepRow]:
    return [
        StepRow(description=name, tool_name="llm_response", place=place, position=position)
        for name, place, position in specs
    ]


def names(ordered: list[StepRow]) -> list[str]:
    return [row.description for row in ordered]


def test_two_steps_swap_places() -> None:
    swapped = in_order(rows(("a", 1, "3"), ("b", 2, "2"), ("c", 3, "1")))
    assert names(swapped) == ["c", "b", "a"]


def test_positions_count_in_the_plan_without_the_removed_steps() -> None:
    plan = rows(("a", 1, "1"), ("b", 2, "2"), ("c", 3, "2"))
    plan[1].remove = True
    assert names(in_order(plan)) == ["a", "c"]


def test_an_unchanged_form_keeps_the_order_and_a_new_step_goes_last() -> None:
    plan = rows(("a", 1, "1"), ("b", 2, "2"), ("new", 0, ""), ("blank", 0, ""))
    plan[3].description = plan[3].tool_name = ""  # the "add a step" fieldset left empty
    assert names(in_order(plan)) == ["a", "b", "new"]


def test_a_position_past_the_end_puts_the_step_last() -> None:
    assert names(in_order(rows(("a", 1, "9"), ("b", 2, "2")))) == ["b", "a"]
