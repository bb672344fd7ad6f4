"""``llm-adapters plugins``: what is installed and what each plugin provides."""

from __future__ import annotations

import json

import click

from .errors import PluginConflictError
from .plugins import get_plugin_manager
from .registry import get_registry


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list, one object per plugin.")
def command(as_json: bool) -> None:
    """List installed plugins: distribution, version, entry point, hooks, what each registered, errors."""
    pm = get_plugin_manager()
    reg = get_registry(allow_conflicts=True)
    records = [r for r in pm.records.values()]
    rows = [r.as_dict() for r in records]
    for row in rows:
        row["model_types"] = {
            fam: list(reg.families[fam].value.model_types) for fam in row["model_families"] if fam in reg.families
        }
        row["descriptions"] = {
            name: getattr(reg.adapters[name].value, "description", "")
            for name in row["adapters"]
            if name in reg.adapters
        }
        row["models"] = {
            src: list(reg.model_sources[src].value.models) for src in row["model_sources"] if src in reg.model_sources
        }
    if reg.conflicts:
        for row in rows:
            clash = [c for c in reg.conflicts if repr(row["name"]) in c]
            if clash and row["error"] is None:
                row["error"] = "; ".join(clash)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    else:
        _table(rows)
    if reg.conflicts:
        raise click.ClickException(str(PluginConflictError("; ".join(reg.conflicts))))


def _table(rows: list[dict]) -> None:
    if not rows:
        click.echo("No plugins installed (or none allowed by LLM_ADAPTERS_PLUGINS). Adapter types, model families,")
        click.echo("tasks, templates, model sources and commands come from plugin packages (see the README).")
        return
    for row in rows:
        status = click.style("error", fg="red") if row["error"] else click.style("ok", fg="green")
        click.echo(f"{click.style(row['name'], bold=True)} {row['version'] or ''}  [{status}]")
        click.echo(f"  entry point : {row['entry_point']}")
        click.echo(f"  hooks       : {', '.join(row['hooks']) or '-'}")
        for name in row["adapters"]:
            text = row["descriptions"].get(name) or ""
            click.echo(f"  adapter     : {name}" + (f": {text}" if text else ""))
        for fam, types in row["model_types"].items():
            click.echo(f"  family      : {fam} ({', '.join(types)})")
        if row["tasks"]:
            click.echo(f"  tasks       : {', '.join(row['tasks'])}")
        if row["templates"]:
            click.echo(f"  templates   : {', '.join(row['templates'])}")
        for src in row["model_sources"]:
            models = row["models"].get(src) or []
            click.echo(f"  model source: {src}" + (f" ({', '.join(models)})" if models else ""))
        if row["commands"]:
            click.echo(f"  commands    : {', '.join(row['commands'])}")
        if row["error"]:
            click.echo(f"  error       : {row['error']}")
