"""Reads indicator values as a statistical office's SDMX tooling would. Called by
tests/it/catalog.rs:
    check_sdmx.py STRUCTURE_XML SDMX_CSV VALUES_JSON
pysdmx reads the structure message (validating it against the SDMX-ML 3.0 schemas) and the
SDMX-CSV 2.0 data with it; every coded cell must be a code of its component's codelist, and
every observation must equal the row /v1/values gives for the same query (value to the last
bit, reporting state, suppression, counties). Prints "sdmx ok".
"""

import json
import math
import sys

from pysdmx.io import get_datasets, read_sdmx

structure_path, csv_path, values_path = sys.argv[1:4]
structure = read_sdmx(structure_path, validate=True)
kinds = sorted({type(s).__name__ for s in structure.structures})
print("structures:", ", ".join(kinds))

(dataset,) = get_datasets(csv_path, structure_path, validate=True)
schema = dataset.structure
print("dataflow:", schema.id)
components = {c.id: c for c in schema.components}
dimensions = [c.id for c in schema.components.dimensions]
assert dimensions == ["INDICATOR", "REF_AREA", "BREAKDOWN", "TIME_PERIOD"], dimensions
for name in ["OBS_VALUE", "UNIT_MEASURE", "REPORTING_STATE", "CONF_STATUS"]:
    assert name in components, name

def cell(x):
    """A cell as pysdmx typed it from the structure, with empty and missing as None."""
    if x is None or x == "" or (isinstance(x, float) and math.isnan(x)):
        return None
    return x


frame = dataset.data
for column in frame.columns:
    codes = components[column].enumeration
    if codes is None:
        continue
    allowed = {code.id for code in codes}
    used = {cell(x) for x in frame[column]} - {None}
    assert used <= allowed, f"{column}: {sorted(used - allowed)[:5]} not in {codes.id}"

with open(values_path, encoding="utf-8") as f:
    rows = json.load(f)["data"]
expected = {}
for row in rows:
    year, half = row["period"].split("H")
    # SDMX names the country CN (ISO 3166); every other region keeps its code.
    area = "CN" if row["region"] == "000000" else row["region"]
    key = (row["indicator"], area, row.get("breakdown") or "_Z", f"{year}-S{half}")
    expected[key] = row
assert len(frame) == len(expected) == len(rows), (len(frame), len(expected), len(rows))

reported = withheld = 0
for obs in frame.to_dict("records"):
    obs = {k: cell(v) for k, v in obs.items()}
    key = (obs["INDICATOR"], obs["REF_AREA"], obs["BREAKDOWN"], obs["TIME_PERIOD"])
    row = expected.pop(key)
    value = None if obs["OBS_VALUE"] is None else float(obs["OBS_VALUE"])
    assert value == row["value"], (key, value, row["value"])
    assert obs["REPORTING_STATE"] == row["status"], key
    assert obs["CONF_STATUS"] == ("C" if row["suppressed"] else "F"), key
    assert int(obs["COUNTIES_REPORTED"]) == row["counties_reported"], key
    assert int(obs["COUNTIES_DUE"]) == row["counties_due"], key
    assert obs["QUALITY"] == row.get("quality"), key
    if row["status"] == "not_reported":
        assert value is None, f"{key}: a value nobody reported"
    reported += value is not None
    withheld += row["suppressed"]
assert not expected, f"missing from the SDMX-CSV: {list(expected)[:5]}"
assert reported > 0, "no value to compare"
print(f"observations: {len(rows)}, with a value: {reported}, withheld: {withheld}")
print("sdmx ok")
