"""Sphinx directives that generate pages from genrekit itself, so that no figure or route is retyped.

``genrekit-openapi``
    The HTTP reference, from the OpenAPI schema of the FastAPI application that ``genrekit serve``
    runs (built in memory, nothing is started).
``genrekit-results FILE``
    The tables of a ``metrics.json`` written by ``genrekit reproduce`` (path relative to the page),
    through the functions that write the report itself.
``genrekit-benchmark FILE``
    The figures of a benchmark's ``--json`` output, with its date, machine, load and command.
``genrekit-shipped-model``
    The shipped model's recipe, cross-validated accuracy and confidence figures, from its
    ``model.json``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import ClassVar

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def _cell(text: object) -> str:
    """One list-table cell on a single line (an empty cell keeps its place)."""
    return " ".join(str(text).split()) or " "


def list_table(header: list[str], rows: list[list[object]], title: str = "") -> list[str]:
    """Return the MyST Markdown lines of a ``list-table`` (the pages that use these directives are MyST)."""
    lines = [f"```{{list-table}} {title}".rstrip(), ":header-rows: 1", ""]
    for row in [header, *rows]:
        lines.append(f"* - {_cell(row[0])}")
        lines += [f"  - {_cell(value)}" for value in row[1:]]
    return [*lines, "```", ""]


class _GeneratedDirective(SphinxDirective):
    """A directive that writes MyST Markdown and parses it in place."""

    def parse(self, lines: list[str]) -> list[nodes.Node]:
        """Parse `lines` (MyST Markdown without section titles) as the content of this directive."""
        container = nodes.Element()
        container.document = self.state.document
        self.state.nested_parse(StringList(lines, source=self.get_source_info()[0]), 0, container)
        return list(container.children)


def _literal(text: str | None) -> str | None:
    """Terminal text (``RawDescriptionHelpFormatter``) as a reStructuredText literal block."""
    if not text:
        return text
    return "::\n\n" + "\n".join(f"    {line}" if line.strip() else "" for line in text.splitlines())


def cli_parser() -> argparse.ArgumentParser:
    """Return the ``genrekit`` parser with every description and epilog kept as written for a terminal.

    The command line's texts are laid out for ``--help`` (columns, examples); on the page they are
    literal blocks, so what the site shows is what ``genrekit COMMAND --help`` prints.
    """
    from genrekit.cli import build_parser

    parser = build_parser()
    pending = [parser]
    while pending:
        current = pending.pop()
        current.description, current.epilog = _literal(current.description), _literal(current.epilog)
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                pending.extend(action.choices.values())
    return parser


def openapi_schema() -> dict:
    """Return the OpenAPI schema of the service, the library view's routes included."""
    from genrekit.serve.app import create_app
    from genrekit.serve.config import ServeConfig
    from genrekit.serve.library import library_router

    app = create_app(ServeConfig(), {}, [library_router(Path("library.db"))])
    return app.openapi()


def _schema_name(schema: dict) -> str:
    """Return a parameter's or body's type in a few words."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " or ".join(_schema_name(option) for option in schema["anyOf"])
    kind = schema.get("type", "any")
    if kind == "array":
        return f"array of {_schema_name(schema.get('items', {}))}"
    return kind


def operation_lines(operation: dict) -> list[str]:
    """Return the reStructuredText of one route's body: summary, description, parameters, answers."""
    lines: list[str] = []
    if operation.get("description"):
        lines += [*operation["description"].strip().splitlines(), ""]
    params = operation.get("parameters", [])
    if params:
        rows = [
            [
                f"``{p['name']}``",
                p["in"],
                _schema_name(p.get("schema", {})),
                "yes" if p.get("required") else "no",
                p.get("description") or p.get("schema", {}).get("description", ""),
            ]
            for p in params
        ]
        lines += list_table(["parameter", "in", "type", "required", "what"], rows)
    body = operation.get("requestBody", {}).get("content", {})
    if body:
        lines += ["Request body: " + ", ".join(f"``{kind}``" for kind in body), ""]
    responses = operation["responses"].items()
    answers = [[f"``{code}``", answer.get("description", "")] for code, answer in responses]
    return lines + list_table(["status", "answer"], answers)


class OpenAPIDirective(_GeneratedDirective):
    """The HTTP reference, generated from the service's OpenAPI schema: one section per route."""

    def run(self) -> list[nodes.Node]:
        """Render every route of the schema, in the schema's order."""
        schema = openapi_schema()
        intro = (
            f"Generated from the OpenAPI {schema['openapi']} schema of genrekit {schema['info']['version']} "
            "(a running service serves it at ``/openapi.json`` and as Swagger UI at ``/docs``)."
        )
        found = self.parse([intro, ""])
        for path, item in schema["paths"].items():
            for method in (m for m in HTTP_METHODS if m in item):
                title = f"{method.upper()} {path}"
                section = nodes.section(ids=[nodes.make_id(f"http-{method}-{path}")], names=[title])
                section += nodes.title(text=title)
                section += self.parse(operation_lines(item[method]))
                self.state.document.note_implicit_target(section)
                found.append(section)
        return found


def _table_lines(table) -> list[str]:
    """Return a report :class:`~genrekit.evaluation.report.Table` as a ``list-table``."""
    return list_table(table.header, table.rows, table.caption)


class ResultsDirective(_GeneratedDirective):
    """The tables of a reproduction's ``metrics.json``, rendered by the report's own functions."""

    required_arguments = 1
    option_spec: ClassVar[dict] = {"tables": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        """Read the JSON next to the page and render the tables named in ``:tables:``."""
        from genrekit.evaluation import report

        source = Path(self.env.doc2path(self.env.docname)).parent / self.arguments[0]
        if not source.is_file():
            raise self.error(f"{source.name}: no such results file next to {self.env.docname}")
        self.env.note_dependency(str(source))
        metrics = json.loads(source.read_text(encoding="utf-8"))
        makers = {
            "accuracy": report.accuracy_table,
            "environment": report.environment_table,
            "headline": report.headline_table,
            "paired": report.paired_table,
        }
        names = (self.options.get("tables") or "environment headline paired").split()
        lines: list[str] = []
        for name in names:
            if name == "findings":
                lines += [item for text in report.findings(metrics) for item in (text, "")]
            else:
                lines += _table_lines(makers[name](metrics))
        return self.parse(lines)


def _flatten(figures: dict, prefix: str = "") -> list[list[str]]:
    """Rows ``[dotted name, value]`` of a nested dict of figures, numbers to 3 significant digits."""
    rows: list[list[str]] = []
    for key, value in figures.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            rows += _flatten(value, name + " / ")
        elif isinstance(value, list):
            rows.append([name, ", ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in value)])
        else:
            rows.append([name, f"{value:.3g}" if isinstance(value, float) else str(value)])
    return rows


class BenchmarkDirective(_GeneratedDirective):
    """The figures of a benchmark's ``--json`` file, with the run's date, machine, load and command."""

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        """Read the JSON next to the page and render the run and its figures."""
        source = Path(self.env.doc2path(self.env.docname)).parent / self.arguments[0]
        if not source.is_file():
            raise self.error(f"{source.name}: no such benchmark file next to {self.env.docname}")
        self.env.note_dependency(str(source))
        result = json.loads(source.read_text(encoding="utf-8"))
        load = result["load_average"]
        run = [
            ["command", f"``{result['command']}``"],
            ["date (UTC)", result["date"]],
            ["machine", "{platform}, {cpu_count} CPUs, Python {python}".format(**result["machine"])],
            ["1-, 5-, 15-min load at start / end", f"{load['start']} / {load['end']}"],
        ]
        lines = list_table(["run", ""], run, f"Benchmark: {result['benchmark']}")
        return self.parse(lines + list_table(["figure", "value"], _flatten(result["figures"])))


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}"


def shipped_model_lines(meta: dict) -> list[str]:
    """Return the shipped model's recipe, cross-validation and confidence figures (its ``model.json``)."""
    from genrekit.evaluation.report import format_summary
    from genrekit.library.catalogue import model_id

    recipe, cv = meta.get("recipe", {}), meta.get("cross_validation", {})
    members = ", ".join(f"``{m['name']}``" for m in recipe.get("members", [])) or "none"
    facts = [
        ["model id", f"``{model_id(meta)}``"],
        ["recipe", f"``{recipe.get('name')}`` ({recipe.get('description', '')})"],
        ["members", members],
        ["protocol", f"``{cv.get('protocol')}``"],
        ["accuracy %, mean ± std [95% t-interval] over folds", format_summary(cv.get("accuracy", {}))],
        ["accuracy % of each fold", ", ".join(_percent(a) for a in cv.get("fold_accuracies", []))],
        ["temperature (probability calibration)", f"{meta.get('calibration', {}).get('temperature', 0):.2f}"],
        ["trained on", "{name} ({rows} rows, SHA-256 {sha256})".format(**meta["data"])],
        ["created (UTC)", meta.get("created", "")],
        ["genrekit version", meta.get("genrekit_version", "")],
    ]
    lines = list_table(["item", "value"], facts, "The shipped model")
    confidence = [
        [f"{c['threshold']:.1f}", _percent(c["coverage"]), _percent(c["accuracy"])]
        for c in cv.get("confidence", [])
    ]
    if confidence:
        lines += list_table(
            ["--min-confidence", "answered % (coverage)", "right % of those answered"],
            confidence,
            "Held-out (out-of-fold) confidence: what each threshold answers and how often it is right",
        )
    return lines


class ShippedModelDirective(_GeneratedDirective):
    """The shipped model's figures, read from the model inside the package."""

    def run(self) -> list[nodes.Node]:
        """Load the shipped model's metadata and render it."""
        import genrekit

        return self.parse(shipped_model_lines(genrekit.load_model().metadata))


def setup(app: Sphinx) -> dict:
    """Register the directives."""
    app.add_directive("genrekit-openapi", OpenAPIDirective)
    app.add_directive("genrekit-results", ResultsDirective)
    app.add_directive("genrekit-shipped-model", ShippedModelDirective)
    app.add_directive("genrekit-benchmark", BenchmarkDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
