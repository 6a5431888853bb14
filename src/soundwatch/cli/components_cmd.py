"""The ``components`` command: every registry (front-ends, encoders, objectives, scorers...)."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from soundwatch.cli.app import app
from soundwatch.errors import ConfigError

__all__ = ["components", "registries"]

KINDS = ("frontends", "encoders", "objectives", "poolings", "scorers", "detectors")


def registries() -> dict[str, Any]:
    """Kind -> registry, for every kind of part (imports the registries, not their entries).

    The built-in kinds, then each part kind added with ``register_part`` (its entries).
    """
    from soundwatch.detectors import DETECTORS
    from soundwatch.detectors.encoders import ENCODERS
    from soundwatch.detectors.objectives import OBJECTIVES
    from soundwatch.detectors.parts import PARTS, added_kinds
    from soundwatch.detectors.pooling import POOLINGS
    from soundwatch.detectors.scorers import SCORERS
    from soundwatch.features.frontends import FRONTENDS

    regs = {"frontends": FRONTENDS, "encoders": ENCODERS, "objectives": OBJECTIVES,
            "poolings": POOLINGS, "scorers": SCORERS, "detectors": DETECTORS}
    for kind in added_kinds():
        regs[f"{kind}s"] = PARTS[kind].entries
    return regs


def _describe(kind: str, registry: Any, with_params: bool) -> dict[str, Any]:
    import inspect

    out: dict[str, Any] = {}
    described = registry.describe()
    if kind == "frontends":
        from soundwatch.features import describe_frontends

        described = describe_frontends()
    for name, text in described.items():
        entry: dict[str, Any] = {"description": text}
        if with_params and name in registry:
            if kind == "frontends":
                import dataclasses

                cls = registry.get(name)
                entry["layout"] = cls.layout
                entry["params"] = {f.name: repr(f.default) for f in
                                   dataclasses.fields(cls.config_class)}
            elif kind != "detectors":
                params = registry.params(name)
                params.pop("spec", None)
                params.pop("items", None)
                entry["params"] = {k: (None if v is inspect.Parameter.empty else repr(v))
                                   for k, v in params.items()}
            obj = registry.get(name)
            for attr in ("requires", "layout", "views", "supervised", "trainable"):
                if hasattr(obj, attr) and not callable(getattr(obj, attr)):
                    value = getattr(obj, attr)
                    entry[attr] = list(value) if isinstance(value, tuple) else value
        out[name] = entry
    return out


@app.command()
def components(
    kind: Annotated[
        str | None,
        typer.Argument(help=f"One kind: {', '.join(KINDS)} or an added part kind "
                       "(default: all).",
                       show_default=False),
    ] = None,
    params: Annotated[
        bool, typer.Option("--params", help="Show each entry's parameters and defaults.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List the registered parts detectors are composed of, with one-line descriptions.

    A detector is front-end + (encoder + objective) + pooling + scorer; any of them can be
    chosen with -p (e.g. ``soundwatch train DATA -d ae -p scorer=knn``).
    """
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    regs = registries()
    if kind is not None and kind.rstrip("s") + "s" not in regs:
        raise ConfigError("KIND", f"{kind!r} is not one of {', '.join(regs)}")
    chosen = [kind.rstrip("s") + "s"] if kind else list(regs)
    data = {k: _describe(k, regs[k], params) for k in chosen}
    if as_json:
        typer.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    console = Console(highlight=False)
    for k in chosen:
        table = Table(title=k, title_justify="left")
        table.add_column("name", style="bold")
        table.add_column("description")
        if params:
            table.add_column("parameters")
        for name, entry in data[k].items():
            # descriptions are plain text: "[pretrained]" is not rich markup
            row = [escape(name), escape(entry["description"])]
            if params:
                row.append(escape(", ".join(f"{p}={v}"
                                            for p, v in entry.get("params", {}).items())))
            table.add_row(*row)
        console.print(table)
