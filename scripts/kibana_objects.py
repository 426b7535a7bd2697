"""Kibana saved objects of the FinSentinel dashboard, written to docker/kibana/finsentinel.ndjson.

Usage: .venv/bin/python scripts/kibana_objects.py [--check]

The file is what ``POST /api/saved_objects/_import?overwrite=true`` takes (one object a line); the
compose service ``kibana-setup`` imports it. Object ids are fixed, so a second import overwrites the
first. Index names are the defaults of ``alerting.index`` (``es_index``, ``es_alerts_index``): a
cluster configured with other names needs the data view titles edited.

Format, as found in Kibana's own 9.x sources and exports (nothing here was imported into a live
Kibana): Lens visualizations (``formBased`` datasource) embedded in the dashboard by reference
(``panelRefName`` ``panel_<panelIndex>``, reference ``<panelIndex>:panel_<panelIndex>``), saved
searches with ``indexRefName``. ``typeMigrationVersion`` is, per type, a version at or below the
latest migration of Kibana 9.1, so Kibana migrates each object forward instead of refusing it.
``--check`` exits 1 when the committed file differs from what this script writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from finsentinel.settings import IndexSettings

OUT = Path(__file__).resolve().parents[1] / "docker" / "kibana" / "finsentinel.ndjson"
CORE_VERSION = "8.8.0"
TYPE_VERSION = {"index-pattern": "8.0.0", "lens": "8.9.0", "search": "7.9.3", "dashboard": "8.7.0"}
PANEL_VERSION = "8.11.0"

ITEMS_VIEW = "finsentinel-items-data-view"
ALERTS_VIEW = "finsentinel-alerts-data-view"
DASHBOARD = "finsentinel-news-sentiment"
RECORDS = "___records___"  # Lens' pseudo-field of count()
NEGATIVE = "sentiment : negative"
SEARCH_INDEX_REF = "kibanaSavedObjectMeta.searchSourceJSON.index"


def _saved(type_: str, id_: str, attributes: dict[str, Any], references: list[dict[str, str]]) -> dict[str, Any]:
    return {"attributes": attributes, "coreMigrationVersion": CORE_VERSION, "id": id_, "references": references,
            "type": type_, "typeMigrationVersion": TYPE_VERSION[type_]}


def _ref(type_: str, id_: str, name: str) -> dict[str, str]:
    return {"id": id_, "name": name, "type": type_}


def data_view(id_: str, title: str, name: str, time_field: str) -> dict[str, Any]:
    return _saved("index-pattern", id_, {
        "title": title, "name": name, "timeFieldName": time_field, "allowHidden": False,
        "fields": "[]", "fieldAttrs": "{}", "fieldFormatMap": "{}", "runtimeFieldMap": "{}", "sourceFilters": "[]",
    }, [])


# Lens columns (formBased datasource).
def _date_histogram() -> dict[str, Any]:
    return {"label": "@timestamp", "dataType": "date", "operationType": "date_histogram", "sourceField": "@timestamp",
            "isBucketed": True, "scale": "interval",
            "params": {"interval": "auto", "includeEmptyRows": True, "dropPartials": False}}


def _terms(field: str, label: str, size: int, order_by: str, other: bool) -> dict[str, Any]:
    return {"label": label, "customLabel": True, "dataType": "string", "operationType": "terms", "sourceField": field,
            "isBucketed": True, "scale": "ordinal",
            "params": {"size": size, "orderBy": {"type": "column", "columnId": order_by}, "orderDirection": "desc",
                       "otherBucket": other, "missingBucket": False, "parentFormat": {"id": "terms"}}}


def _count(label: str, kql: str | None = None, empty_as_null: bool = True) -> dict[str, Any]:
    column: dict[str, Any] = {"label": label, "customLabel": True, "dataType": "number", "operationType": "count",
                              "sourceField": RECORDS, "isBucketed": False, "scale": "ratio",
                              "params": {"emptyAsNull": empty_as_null}}
    if kql is not None:
        column["filter"] = {"language": "kuery", "query": kql}
    return column


def _negative_share(column_id: str, label: str) -> dict[str, dict[str, Any]]:
    """count(kql='sentiment : negative') / count(), stored as Lens stores a formula: the formula
    column, and the hidden columns it compiles to (X0, X1: the counts, X2: their quotient)."""
    formula = f"count(kql='{NEGATIVE}') / count()"
    part = f"Part of {label}"
    x0, x1, x2 = (f"{column_id}X{i}" for i in range(3))
    return {
        column_id: {"label": label, "customLabel": True, "dataType": "number", "operationType": "formula",
                    "isBucketed": False, "scale": "ratio", "references": [x2],
                    "params": {"formula": formula, "isFormulaBroken": False,
                               "format": {"id": "percent", "params": {"decimals": 0}}}},
        x0: _count(part, NEGATIVE, empty_as_null=False),
        x1: _count(part, empty_as_null=False),
        x2: {"label": part, "customLabel": True, "dataType": "number", "operationType": "math", "isBucketed": False,
             "scale": "ratio", "references": [x0, x1],
             "params": {"tinymathAst": {"type": "function", "name": "divide", "args": [x0, x1],
                                        "location": {"min": 0, "max": len(formula)}, "text": formula}}},
    }


def _xy(layer: str, series: str, x: str, accessors: list[str], split: str | None = None) -> dict[str, Any]:
    layer_state: dict[str, Any] = {"layerId": layer, "layerType": "data", "seriesType": series, "xAccessor": x,
                                   "accessors": accessors, "position": "top", "showGridlines": False}
    if split is not None:
        layer_state["splitAccessor"] = split
    axes = {"x": True, "yLeft": True, "yRight": True}
    return {"legend": {"isVisible": True, "position": "right"}, "valueLabels": "hide", "fittingFunction": "None",
            "axisTitlesVisibilitySettings": dict(axes), "tickLabelsVisibilitySettings": dict(axes),
            "gridlinesVisibilitySettings": dict(axes), "preferredSeriesType": series, "layers": [layer_state],
            "yLeftExtent": {"mode": "full"}, "yRightExtent": {"mode": "full"}}


def lens(id_: str, title: str, description: str, columns: dict[str, dict[str, Any]], order: list[str],
         visualization: dict[str, Any], query: str = "", view: str = ITEMS_VIEW) -> dict[str, Any]:
    layer = visualization["layers"][0]["layerId"]
    state = {
        "visualization": visualization,
        "query": {"language": "kuery", "query": query},
        "filters": [],
        "datasourceStates": {"formBased": {"layers": {layer: {
            "columns": columns, "columnOrder": order, "incompleteColumns": {}}}}},
        "internalReferences": [],
        "adHocDataViews": {},
    }
    attributes = {"title": title, "description": description, "visualizationType": "lnsXY", "state": state}
    return _saved("lens", id_, attributes, [_ref("index-pattern", view, f"indexpattern-datasource-layer-{layer}")])


def saved_search(id_: str, title: str, description: str, view: str, columns: list[str], sort_field: str,
                 query: str = "") -> dict[str, Any]:
    source = {"query": {"query": query, "language": "kuery"}, "filter": [], "indexRefName": SEARCH_INDEX_REF}
    return _saved("search", id_, {
        "title": title, "description": description, "columns": columns, "sort": [[sort_field, "desc"]],
        "grid": {}, "hideChart": False, "isTextBasedQuery": False, "timeRestore": False,
        "kibanaSavedObjectMeta": {"searchSourceJSON": json.dumps(source, separators=(",", ":"))},
    }, [_ref("index-pattern", view, SEARCH_INDEX_REF)])


def dashboard(panels: list[tuple[dict[str, Any], tuple[int, int, int, int]]]) -> dict[str, Any]:
    """The dashboard, each panel (object, (x, y, w, h) on the 48-column grid) embedded by reference."""
    entries, references = [], []
    for n, (obj, (x, y, w, h)) in enumerate(panels, start=1):
        index = f"p{n}"
        entries.append({"version": PANEL_VERSION, "type": obj["type"], "panelIndex": index,
                        "gridData": {"x": x, "y": y, "w": w, "h": h, "i": index},
                        "embeddableConfig": {"enhancements": {}}, "panelRefName": f"panel_{index}"})
        references.append(_ref(obj["type"], obj["id"], f"{index}:panel_{index}"))
    options = {"useMargins": True, "syncColors": False, "syncCursor": True, "syncTooltips": False,
               "hidePanelTitles": False}
    return _saved("dashboard", DASHBOARD, {
        "title": "FinSentinel — news sentiment",
        "description": "Scored news items by sentiment, company and topic, the latest negative headlines and alerts",
        "panelsJSON": json.dumps(entries, separators=(",", ":")),
        "optionsJSON": json.dumps(options, separators=(",", ":")),
        "timeRestore": True, "timeFrom": "now-7d", "timeTo": "now",
        "refreshInterval": {"pause": False, "value": 60000},
        "kibanaSavedObjectMeta": {"searchSourceJSON": '{"query":{"query":"","language":"kuery"},"filter":[]}'},
    }, references)


def build(settings: IndexSettings | None = None) -> list[dict[str, Any]]:
    """Every saved object, data views first (the order of an export: referenced before referencing)."""
    s = settings or IndexSettings()
    items = data_view(ITEMS_VIEW, f"{s.es_index}-*", "FinSentinel news items", "@timestamp")
    alerts = data_view(ALERTS_VIEW, s.es_alerts_index, "FinSentinel alerts", "start")

    over_time = lens(
        "finsentinel-lens-items-by-sentiment", "Items over time by sentiment",
        "Scored items per interval, stacked by sentiment",
        {"sentiment": _terms("sentiment", "Sentiment", 3, "items", other=False), "when": _date_histogram(),
         "items": _count("Items")},
        ["sentiment", "when", "items"],
        _xy("items-over-time", "bar_stacked", "when", ["items"], split="sentiment"))
    share = lens(
        "finsentinel-lens-negative-share", "Negative share over time",
        "Negative items / all items per interval",
        {"when": _date_histogram(), **_negative_share("share", "Negative share")},
        ["when", "share", "shareX0", "shareX1", "shareX2"],
        _xy("negative-share", "line", "when", ["share"]))
    companies = lens(
        "finsentinel-lens-top-negative-companies", "Companies with the most negative items",
        "Top 10 linked companies (entities) by negative item count",
        {"company": _terms("entities", "Company", 10, "negatives", other=False), "negatives": _count("Negative items")},
        ["company", "negatives"],
        _xy("top-companies", "bar_horizontal", "company", ["negatives"]), query=NEGATIVE)
    topics = lens(
        "finsentinel-lens-topics-by-sentiment", "Items by topic and sentiment",
        "Items per topic, stacked by sentiment",
        {"topic": _terms("topic", "Topic", 20, "items", other=True),
         "sentiment": _terms("sentiment", "Sentiment", 3, "items", other=False), "items": _count("Items")},
        ["topic", "sentiment", "items"],
        _xy("topics", "bar_horizontal_stacked", "topic", ["items"], split="sentiment"))
    headlines = saved_search(
        "finsentinel-search-negative-headlines", "FinSentinel — latest negative headlines",
        "Negative items, newest first", ITEMS_VIEW, ["title", "source", "entities", "topic"], "@timestamp",
        query=NEGATIVE)
    latest_alerts = saved_search(
        "finsentinel-search-latest-alerts", "FinSentinel — latest alerts", "Alert episodes, latest start first",
        ALERTS_VIEW, ["scope", "key", "severity", "status", "observed", "expected", "share"], "start")

    board = dashboard([(over_time, (0, 0, 24, 12)), (share, (24, 0, 24, 12)),
                       (companies, (0, 12, 24, 14)), (topics, (24, 12, 24, 14)),
                       (headlines, (0, 26, 48, 15)), (latest_alerts, (0, 41, 48, 12))])
    return [items, alerts, over_time, share, companies, topics, headlines, latest_alerts, board]


def render(objects: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(o, ensure_ascii=False, sort_keys=True, separators=(",", ":")) + "\n" for o in objects)


def main(argv: list[str]) -> int:
    text = render(build())
    if argv == ["--check"]:
        current = OUT.read_text(encoding="utf-8") if OUT.exists() else ""
        if current != text:
            print(f"{OUT} is out of date: run {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    if argv:
        print(__doc__, file=sys.stderr)
        return 2
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {len(text.splitlines())} objects to {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
