"""docker/kibana/finsentinel.ndjson: the Kibana saved objects that compose's kibana-setup imports.

Structural checks only (no Kibana runs here): every line an object, ids unique, references
resolvable inside the file, the dashboard's panel references in the form Kibana injects them,
and every field a chart, saved search or data view names present in the mappings that
alerting.index.elastic_mapping builds (with default settings) under the data view's index.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from alerting.index.elastic_mapping import alert_mappings, index_template, item_mappings
from finsentinel.settings import IndexSettings

ROOT = Path(__file__).resolve().parents[1]
NDJSON = ROOT / "docker" / "kibana" / "finsentinel.ndjson"
COMPOSE = ROOT / "docker" / "compose.yaml"
TYPES = {"index-pattern", "lens", "search", "dashboard"}
RECORDS = "___records___"  # Lens' count() pseudo-field, not a mapped field
AGGREGATABLE = {"keyword", "date", "date_nanos", "short", "integer", "long", "float", "double"}
# Attribute keys Kibana's create schemas accept (dashboard: unknowns forbidden).
DASHBOARD_KEYS = {"title", "description", "kibanaSavedObjectMeta", "timeRestore", "timeFrom", "timeTo",
                  "refreshInterval", "controlGroupInput", "panelsJSON", "optionsJSON", "hits", "version"}
SEARCH_KEYS = {"title", "description", "columns", "sort", "grid", "rowHeight", "rowsPerPage", "hideChart",
               "breakdownField", "kibanaSavedObjectMeta", "isTextBasedQuery", "usesAdHocDataView", "timeRestore",
               "timeRange", "refreshInterval", "viewMode", "hideAggregatedPreview", "hits", "version"}
PANEL_KEYS = {"version", "type", "gridData", "panelIndex", "embeddableConfig", "panelRefName", "title", "id"}


def load(path: Path = NDJSON) -> list[dict[str, Any]]:
    objects = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        obj = json.loads(line)
        assert isinstance(obj, dict), f"line {number} is not a JSON object"
        objects.append(obj)
    return objects


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    return load()


def by_type(objects: list[dict[str, Any]], type_: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["type"] == type_]


def flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Field path -> its mapping, sub-fields (``title.zh``) and object properties included."""
    fields: dict[str, dict[str, Any]] = {}
    for name, spec in mapping.get("properties", {}).items():
        path = prefix + name
        fields[path] = spec
        fields.update(flatten(spec, path + "."))
        for sub, sub_spec in spec.get("fields", {}).items():
            fields[f"{path}.{sub}"] = sub_spec
    return fields


def mappings_by_view(objects: list[dict[str, Any]], settings: IndexSettings) -> dict[str, dict[str, Any]]:
    """Data view id -> the flattened mapping of the indices its title selects."""
    items_pattern = index_template(settings)["index_patterns"][0]
    known = {items_pattern: item_mappings(settings), settings.es_alerts_index: alert_mappings()}
    views = {}
    for view in by_type(objects, "index-pattern"):
        title = view["attributes"]["title"]
        assert title in known, f"data view {view['id']} selects {title!r}, no index the project creates"
        views[view["id"]] = flatten(known[title])
    return views


def kql_fields(query: str) -> list[str]:
    """Field names of a KQL query of ``field : value`` clauses (all these objects use)."""
    return re.findall(r"([\w.@]+)\s*:", query)


def lens_layers(lens: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return dict(lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"])


def view_of(obj: dict[str, Any], ref_name: str) -> str:
    return next(r["id"] for r in obj["references"] if r["name"] == ref_name)


def used_fields(obj: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(data view id, field, use) of every field ``obj`` names; use: aggregate, query, display, time."""
    attributes = obj["attributes"]
    if obj["type"] == "index-pattern":
        yield obj["id"], attributes["timeFieldName"], "time"
    elif obj["type"] == "lens":
        state = attributes["state"]
        for layer_id, layer in lens_layers(obj).items():
            view = view_of(obj, f"indexpattern-datasource-layer-{layer_id}")
            yield from ((view, f, "query") for f in kql_fields(state["query"]["query"]))
            for column in layer["columns"].values():
                if column.get("sourceField", RECORDS) != RECORDS:
                    yield view, column["sourceField"], "aggregate"
                if "filter" in column:
                    yield from ((view, f, "query") for f in kql_fields(column["filter"]["query"]))
                for kql in re.findall(r"kql='([^']*)'", column.get("params", {}).get("formula", "")):
                    yield from ((view, f, "query") for f in kql_fields(kql))
    elif obj["type"] == "search":
        source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
        view = view_of(obj, source["indexRefName"])
        yield from ((view, f, "display") for f in attributes["columns"])
        yield from ((view, f, "aggregate") for f, _direction in attributes["sort"])
        yield from ((view, f, "query") for f in kql_fields(source["query"]["query"]))


def field_problems(objects: list[dict[str, Any]], views: dict[str, dict[str, Any]]) -> list[str]:
    problems = []
    for obj in objects:
        for view, field, use in used_fields(obj):
            spec = views[view].get(field)
            where = f"{obj['type']} {obj['id']}: {field!r} ({use})"
            if spec is None:
                problems.append(f"{where} is not in the mapping of data view {view}")
            elif use in ("aggregate", "time") and (spec.get("type") not in AGGREGATABLE or
                                                   spec.get("doc_values") is False):
                problems.append(f"{where} is mapped as {spec}, which cannot be aggregated or sorted")
            elif use == "time" and spec["type"] not in ("date", "date_nanos"):
                problems.append(f"{where} is not a date")
            elif use == "query" and (spec.get("index") is False or spec.get("enabled") is False):
                problems.append(f"{where} is not indexed")
    return problems


def test_each_line_is_a_saved_object_of_a_known_type_with_versions(objects: list[dict[str, Any]]) -> None:
    text = NDJSON.read_text(encoding="utf-8")
    assert text.endswith("\n") and "\n\n" not in text
    assert len(objects) == len(text.splitlines()) == 9
    for obj in objects:
        assert obj["type"] in TYPES
        assert isinstance(obj["id"], str) and obj["id"] and isinstance(obj["attributes"], dict)
        assert isinstance(obj["references"], list)
        for key in ("coreMigrationVersion", "typeMigrationVersion"):
            assert re.fullmatch(r"\d+\.\d+\.\d+", obj[key]), (obj["id"], key)


def test_ids_are_unique(objects: list[dict[str, Any]]) -> None:
    ids = [o["id"] for o in objects]
    assert len(ids) == len(set(ids))


def test_every_reference_points_at_an_object_in_the_file(objects: list[dict[str, Any]]) -> None:
    present = {(o["type"], o["id"]) for o in objects}
    for obj in objects:
        names = [r["name"] for r in obj["references"]]
        assert len(names) == len(set(names)), obj["id"]
        for ref in obj["references"]:
            assert ref["type"] in TYPES and (ref["type"], ref["id"]) in present, (obj["id"], ref)
    # referenced objects come first, as in an export
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        assert all((r["type"], r["id"]) in seen for r in obj["references"]), obj["id"]
        seen.add((obj["type"], obj["id"]))


def test_the_dashboard_embeds_each_chart_and_search_by_reference(objects: list[dict[str, Any]]) -> None:
    [board] = by_type(objects, "dashboard")
    attributes = board["attributes"]
    assert attributes["title"] == "FinSentinel — news sentiment"
    assert set(attributes) <= DASHBOARD_KEYS
    json.loads(attributes["optionsJSON"])
    json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
    panels = json.loads(attributes["panelsJSON"])
    refs = {r["name"]: r for r in board["references"]}
    assert len(refs) == len(panels) == 6
    cells: set[tuple[int, int]] = set()
    for panel in panels:
        assert set(panel) <= PANEL_KEYS
        index = panel["panelIndex"]
        assert panel["gridData"]["i"] == index and panel["panelRefName"] == f"panel_{index}"
        # Kibana injects a panel's saved object id from the reference "<panelIndex>:<panelRefName>".
        ref = refs[f"{index}:panel_{index}"]
        assert ref["type"] == panel["type"]
        grid = panel["gridData"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 48 and grid["w"] > 0 and grid["h"] > 0
        area = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not cells & area, f"panel {index} overlaps another"
        cells |= area
    assert sorted(r["type"] for r in refs.values()) == ["lens"] * 4 + ["search"] * 2


def test_lens_layers_reference_their_data_view_and_accessors_name_columns(objects: list[dict[str, Any]]) -> None:
    lenses = by_type(objects, "lens")
    assert len(lenses) == 4
    for lens in lenses:
        attributes = lens["attributes"]
        assert attributes["visualizationType"] == "lnsXY" and attributes["title"]
        layers = lens_layers(lens)
        refs = {r["name"]: r for r in lens["references"]}
        for layer_id, layer in layers.items():
            assert refs[f"indexpattern-datasource-layer-{layer_id}"]["type"] == "index-pattern"
            assert sorted(layer["columnOrder"]) == sorted(layer["columns"])
            for column in layer["columns"].values():
                assert set(column.get("references", [])) <= set(layer["columns"])
                order_by = column.get("params", {}).get("orderBy", {})
                assert order_by.get("columnId", next(iter(layer["columns"]))) in layer["columns"]
        for vis_layer in attributes["state"]["visualization"]["layers"]:
            columns = layers[vis_layer["layerId"]]["columns"]
            named = [vis_layer["xAccessor"], *vis_layer["accessors"], vis_layer.get("splitAccessor")]
            assert all(c in columns for c in named if c is not None), lens["id"]
    over_time = next(o for o in lenses if o["id"] == "finsentinel-lens-items-by-sentiment")
    assert over_time["attributes"]["state"]["visualization"]["layers"][0]["seriesType"] == "bar_stacked"


def test_saved_searches_point_at_their_data_view(objects: list[dict[str, Any]]) -> None:
    searches = {o["id"]: o for o in by_type(objects, "search")}
    views = {o["attributes"]["title"]: o["id"] for o in by_type(objects, "index-pattern")}
    settings = IndexSettings()
    for search in searches.values():
        assert set(search["attributes"]) <= SEARCH_KEYS
        source = json.loads(search["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert "index" not in source  # the data view goes through indexRefName and references
    headlines = searches["finsentinel-search-negative-headlines"]["attributes"]
    assert headlines["columns"] == ["title", "source", "entities", "topic"]
    assert "negative" in json.loads(headlines["kibanaSavedObjectMeta"]["searchSourceJSON"])["query"]["query"]
    alerts = searches["finsentinel-search-latest-alerts"]
    assert alerts["references"][0]["id"] == views[settings.es_alerts_index]


def test_data_views_select_the_indices_the_project_creates(objects: list[dict[str, Any]]) -> None:
    settings = IndexSettings()
    titles = {o["attributes"]["title"]: o["attributes"] for o in by_type(objects, "index-pattern")}
    assert set(titles) == {f"{settings.es_index}-*", settings.es_alerts_index}
    assert titles[f"{settings.es_index}-*"]["timeFieldName"] == "@timestamp"
    assert titles[f"{settings.es_index}-*"]["title"] in index_template(settings)["index_patterns"]


def test_every_field_named_exists_in_the_projects_mappings(objects: list[dict[str, Any]]) -> None:
    views = mappings_by_view(objects, IndexSettings())
    used = {(v, f) for o in objects for v, f, _use in used_fields(o)}
    # the walk found the fields of every kind of object
    assert {"@timestamp", "sentiment", "entities", "topic", "title", "source", "start", "severity"} <= {
        f for _v, f in used}
    assert field_problems(objects, views) == []


@pytest.mark.parametrize("field", ["sentiment", "entities", "topic", "@timestamp", "title", "severity"])
def test_the_field_check_fails_when_a_field_is_renamed_in_the_mapping(
    objects: list[dict[str, Any]], field: str
) -> None:
    views = mappings_by_view(objects, IndexSettings())
    for fields in views.values():
        if field in fields:
            fields[field + "_renamed"] = fields.pop(field)
    assert any(repr(field) in p for p in field_problems(objects, views))


def test_the_file_is_what_the_generator_writes() -> None:
    spec = importlib.util.spec_from_file_location("kibana_objects", ROOT / "scripts" / "kibana_objects.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.render(module.build()) == NDJSON.read_text(encoding="utf-8"), \
        "run .venv/bin/python scripts/kibana_objects.py"


def _setup_service() -> dict[str, Any]:
    compose = yaml.safe_load(COMPOSE.read_text())
    service: dict[str, Any] = compose["services"]["kibana-setup"]
    return service


def test_compose_imports_the_objects_once_kibana_is_up() -> None:
    service = _setup_service()
    assert "kibana" in service["depends_on"] and service["restart"] == "no"
    [volume] = service["volumes"]
    host, container, mode = volume.split(":")
    assert (COMPOSE.parent / host).resolve() == NDJSON.parent and mode == "ro"
    script = service["command"][0]
    assert f"file=@{container}/{NDJSON.name}" in script
    assert "/api/saved_objects/_import?overwrite=true" in script and "kbn-xsrf: true" in script
    assert "/app/dashboards" in COMPOSE.read_text().split("\nname:")[0]  # the header says where to look


class _FakeKibana(BaseHTTPRequestHandler):
    """Answers 503 to the first status request (Kibana starting), then 200; records imports."""

    status_calls = 0
    imports: list[tuple[str, dict[str, str], bytes]] = []

    def do_GET(self) -> None:
        type(self).status_calls += 1
        self.send_response(503 if type(self).status_calls == 1 else 200)
        self.end_headers()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).imports.append((self.path, dict(self.headers), body))
        payload = b'{"successCount":9,"success":true,"warnings":[]}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.skipif(shutil.which("sh") is None or shutil.which("curl") is None, reason="needs sh and curl")
def test_the_setup_script_waits_then_imports_the_file(tmp_path: Path) -> None:
    """Runs the service's script against a local fake of Kibana (this checks the script, not Kibana):
    compose's ``$$`` escapes undone, the mount path pointed at the repository, sleeps shortened."""
    script = _setup_service()["command"][0].replace("$$", "$").replace("/kibana/", f"{NDJSON.parent}/")
    script = re.sub(r"sleep \d+", "sleep 0.1", script)
    _FakeKibana.status_calls, _FakeKibana.imports = 0, []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeKibana)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        env = {"PATH": "/usr/bin:/bin", "KIBANA_URL": f"http://127.0.0.1:{server.server_address[1]}"}
        done = subprocess.run(["sh", "-c", script], env=env, capture_output=True, text=True, timeout=30)
    finally:
        server.shutdown()
    assert done.returncode == 0, done.stderr
    assert _FakeKibana.status_calls == 2
    [(path, headers, body)] = _FakeKibana.imports
    assert path == "/api/saved_objects/_import?overwrite=true" and headers["kbn-xsrf"] == "true"
    assert b'filename="finsentinel.ndjson"' in body and NDJSON.read_bytes() in body
