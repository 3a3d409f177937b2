"""No import circle anywhere in the project (the layer's package, the local stack and the tools),
and the layer's folders point one way (docs/architecture.md).

Imports inside functions count as edges too: a circle hidden in a function body is a circle."""

import ast
from pathlib import Path

from local.template import ROOT

PACKAGES = {
    "billing_webhooks": ROOT / "layers" / "shared" / "billing_webhooks",
    "local": ROOT / "local",
    "bench": ROOT / "bench",
    "tools": ROOT / "tools",
}


def _module_name(package: str, path: Path) -> str:
    parts = path.relative_to(PACKAGES[package]).with_suffix("").parts
    return ".".join([package, *parts]).removesuffix(".__init__")


def import_graph() -> dict[str, set[str]]:
    modules = {
        _module_name(package, path): path for package, folder in PACKAGES.items() for path in folder.rglob("*.py")
    }
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            graph[name] |= {target for target in targets if target in modules and target != name}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_finder_sees_a_circle_when_there_is_one():
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_of_the_project_imports_itself_back():
    assert circles(import_graph()) == []


# The layer's folders, top to bottom: a module imports its own folder or the folders below it.
# The package's own modules (settings, errors, observability, clock) sit under all of them.
LAYERS = ["http", "jobs", "recovery", "domain", "wire", "data", "models"]


def _rank(module: str) -> int:
    parts = module.split(".")
    if len(parts) >= 2 and parts[1] in LAYERS:
        return len(LAYERS) - LAYERS.index(parts[1])
    return 0


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{module} -> {target}"
        for module, targets in graph.items()
        if module.startswith("billing_webhooks")
        for target in targets
        if target.startswith("billing_webhooks") and _rank(target) > _rank(module)
    )


def test_the_checker_sees_an_import_that_points_up():
    graph = {
        "billing_webhooks.data.notifications": {"billing_webhooks.domain.alerts", "billing_webhooks.settings"},
        "billing_webhooks.settings": {"billing_webhooks.models.base"},
    }
    assert upward_imports(graph) == [
        "billing_webhooks.data.notifications -> billing_webhooks.domain.alerts",
        "billing_webhooks.settings -> billing_webhooks.models.base",
    ]


def test_every_module_of_the_layer_sits_in_a_folder_or_is_a_foundation():
    foundations = {
        "billing_webhooks",
        "billing_webhooks.settings",
        "billing_webhooks.errors",
        "billing_webhooks.observability",
        "billing_webhooks.clock",
    }
    loose = [name for name in import_graph() if name.startswith("billing_webhooks") and _rank(name) == 0]
    assert sorted(loose) == sorted(foundations)


def test_the_layers_imports_only_point_down():
    assert upward_imports(import_graph()) == []


def dangling_imports() -> list[str]:
    """Imports of the project's own packages that name no module or name in them (a module moved)."""
    modules = {
        _module_name(package, path): path for package, folder in PACKAGES.items() for path in folder.rglob("*.py")
    }
    found = []
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module.split(".")[0] not in PACKAGES:
                    continue
                if node.module not in modules:
                    found.append(f"{name}: {node.module}")
                    continue
                defined = _names_defined(modules[node.module])
                found += [
                    f"{name}: {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name not in defined and f"{node.module}.{alias.name}" not in modules
                ]
            elif isinstance(node, ast.Import):
                found += [
                    f"{name}: {alias.name}"
                    for alias in node.names
                    if alias.name.split(".")[0] in PACKAGES and alias.name not in modules
                ]
    return sorted(found)


def _names_defined(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
            names |= {
                element.id
                for target in targets
                if isinstance(target, ast.Tuple)
                for element in target.elts
                if isinstance(element, ast.Name)
            }
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def test_every_import_of_the_project_names_a_module_and_name_that_exist():
    assert dangling_imports() == []


def test_the_architecture_page_counts_the_functions_the_template_declares():
    import re

    from local import template

    declared = len(template.resources("AWS::Serverless::Function"))
    stated = re.search(r"The product is (\d+) small Lambda functions", (ROOT / "docs" / "architecture.md").read_text())
    assert stated and int(stated.group(1)) == declared == len(list((ROOT / "functions").iterdir()))


def _handler_imports(function_name: str) -> set[str]:
    from local import template

    code = template.load()["Resources"][function_name]["Properties"]["CodeUri"]
    tree = ast.parse((ROOT / code / "app.py").read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def _triggers(resource: dict) -> set[str]:
    return {event["Type"] for event in (resource["Properties"].get("Events") or {}).values()}


def test_every_schedule_and_stream_runs_a_job_of_its_own_and_nothing_in_recovery_runs_on_one():
    from local import template

    functions = template.resources("AWS::Serverless::Function")
    timed = {
        name for name, resource in functions.items() if _triggers(resource) & {"Schedule", "ScheduleV2", "DynamoDB"}
    }
    jobs_of = {
        name: {module for module in _handler_imports(name) if module.startswith("billing_webhooks.jobs.")}
        for name in functions
    }
    assert all(len(jobs_of[name]) == 1 for name in timed), {name: jobs_of[name] for name in timed}
    assert not [name for name in timed if any(".recovery" in module for module in _handler_imports(name))]
    job_modules = {
        _module_name("billing_webhooks", path)
        for path in (PACKAGES["billing_webhooks"] / "jobs").glob("*.py")
        if path.stem != "__init__"
    }
    # Each job module is some function's job, and no two functions run the same one.
    run = [module for modules in jobs_of.values() for module in modules]
    assert sorted(run) == sorted(set(run)) and job_modules <= set(run) | _LIBRARY_JOBS


# Job modules another job module builds on, run by no function of their own.
_LIBRARY_JOBS: set[str] = set()


def test_no_function_serves_two_triggers():
    from local import template

    functions = template.resources("AWS::Serverless::Function")
    assert {
        name: sorted(_triggers(resource)) for name, resource in functions.items() if len(_triggers(resource)) > 1
    } == {}
    assert {
        name: list(resource["Properties"]["Events"])
        for name, resource in functions.items()
        if len(resource["Properties"].get("Events") or {}) > 1
        and not {event["Type"] for event in resource["Properties"]["Events"].values()} <= {"HttpApi"}
    } == {}


def _reads_the_time(node: ast.AST) -> bool:
    """`time.time()` or `datetime.now(...)`/`datetime.utcnow()`: a call that reads the wall clock."""
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and (node.func.value.id, node.func.attr) in {("time", "time"), ("datetime", "now"), ("datetime", "utcnow")}
    )


def test_the_product_reads_the_time_only_through_its_clock():
    """One clock (billing_webhooks/clock.py), so that a local test clock moves every function and job."""
    readers = {
        _module_name("billing_webhooks", path)
        for path in PACKAGES["billing_webhooks"].rglob("*.py")
        if any(_reads_the_time(node) for node in ast.walk(ast.parse(path.read_text())))
    }
    functions = {
        str(path.relative_to(ROOT))
        for path in (ROOT / "functions").rglob("*.py")
        if any(_reads_the_time(node) for node in ast.walk(ast.parse(path.read_text())))
    }
    assert readers == set() and functions == set()
