"""What `erasure salesforce check` found: one outcome per step, notes, and the printed table."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table


class Outcome(enum.StrEnum):
    PASS = "pass"  # noqa: S105 -- an outcome, not a password
    FAIL = "fail"
    WARN = "warn"
    SKIP = "skip"


@dataclass(frozen=True)
class Step:
    name: str
    outcome: Outcome
    detail: str
    fix: str | None = None


@dataclass
class CheckReport:
    steps: list[Step] = field(default_factory=list)
    #: Printed after the table: what the check itself cost (the delete probe).
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        # A skipped step fails nothing: steps are skipped after a failure (which counts) or on
        # request (--skip-delete-probe).
        return not any(s.outcome is Outcome.FAIL for s in self.steps)

    def step(self, name: str) -> Step:
        return next(s for s in self.steps if s.name == name)


_STYLE = {
    Outcome.PASS: "green",
    Outcome.FAIL: "bold red",
    Outcome.WARN: "yellow",
    Outcome.SKIP: "dim",
}


def render(report: CheckReport, console: Console) -> None:
    table = Table(title="Salesforce org check", show_lines=False)
    table.add_column("step")
    table.add_column("result")
    table.add_column("detail")
    for step in report.steps:
        table.add_row(step.name, f"[{_STYLE[step.outcome]}]{step.outcome.value}[/]", step.detail)
    console.print(table)
    for step in report.steps:
        if step.fix and step.outcome in (Outcome.FAIL, Outcome.WARN):
            console.print(f"[{_STYLE[step.outcome]}]{step.name}[/]: {step.fix}")
    for note in report.notes:
        console.print(note, markup=False)
    console.print(
        "[green]All checks passed.[/]" if report.ok else "[bold red]Some checks failed.[/]"
    )
