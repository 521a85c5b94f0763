"""The house rules of the tree, checked so they cannot drift: the core knows no domain, the product imports no
evaluation code, and no two modules import each other (directly or round a loop)."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import networkx as nx

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ROOT / "src" / "streamdesk"
RETAIL_LITERALS = re.compile(
    r"cancel_pending_order|get_order_details|get_user_details|find_user_id_by|modify_pending|exchange_delivered"
    r"|return_delivered|transfer_to_human|list_all_product_types|get_product_details|get_item_details"
    r"|modify_user_address|#W"
)
RETAIL_HOMES = (PRODUCT / "domains" / "retail", PRODUCT / "seed" / "data")


def product_modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(PRODUCT.rglob("*.py")):
        parts = path.relative_to(PRODUCT.parent).with_suffix("").parts
        yield ".".join(parts).removesuffix(".__init__"), path


def imported_names(path: Path) -> Iterator[str]:
    """Every absolute import in the module, at any depth (a lazy import inside a function counts too)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def test_no_retail_tool_name_or_order_id_pattern_outside_the_retail_pack() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in PRODUCT.rglob("*")
        if path.is_file()
        and path.suffix in {".py", ".yaml", ".md", ".html"}
        and not any(home in path.parents for home in RETAIL_HOMES)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if RETAIL_LITERALS.search(line)
    ]
    assert offenders == []


def test_the_product_imports_nothing_from_evals() -> None:
    offenders = [
        f"{module} imports {name}"
        for module, path in product_modules()
        for name in imported_names(path)
        if name == "evals" or name.startswith("evals.")
    ]
    assert offenders == []


def test_no_import_cycle_between_modules() -> None:
    modules = dict(product_modules())
    graph = nx.DiGraph()
    graph.add_nodes_from(modules)
    for module, path in modules.items():
        for name in imported_names(path):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module and not module.startswith(f"{name}."):
                graph.add_edge(module, name)
    cycles = [sorted(component) for component in nx.strongly_connected_components(graph) if len(component) > 1]
    assert cycles == []


def test_no_import_cycle_between_packages() -> None:
    """The packages form layers: settings and contracts at the bottom, then the stream runtime and the stores,
    audit, policy, the agent, feedback and training, the runtime supervisor, and on top the two places that
    gather every package's routes and commands (`api.app`, `cli.main`); the HTTP plumbing (`web`) imports none."""
    graph = nx.DiGraph()
    for module, path in product_modules():
        if module == "streamdesk":
            continue
        package = module.split(".")[1]
        for name in imported_names(path):
            target = name.split(".")
            if target[0] == "streamdesk" and len(target) > 1 and target[1] != package:
                graph.add_edge(package, target[1])
    cycles = [sorted(component) for component in nx.strongly_connected_components(graph) if len(component) > 1]
    assert cycles == []
