"""Checks a release package as its users would. Called by tests/it/catalog.rs:
    check_package.py PACKAGE_ZIP
`frictionless validate` must pass on the package (the CSV resources against their Table
Schemas: types, enums, required fields, primary keys, foreign keys to the regions), and DuckDB
must read each Parquet file with the types the schema declares. Prints "package ok".
"""

import json
import os
import sys
import tempfile
import zipfile

import duckdb
from frictionless import Package, validate

# A Table Schema type and the DuckDB types a Parquet column of it may have.
EXPECTED = {
    "integer": ("BIGINT",),
    "number": ("DOUBLE", "DECIMAL(18,2)"),
    "date": ("DATE",),
    "boolean": ("BOOLEAN",),
    "string": ("VARCHAR", "VARCHAR[]"),
}

work = tempfile.mkdtemp(prefix="jiazheng-package-")
with zipfile.ZipFile(sys.argv[1]) as z:
    z.extractall(work)
descriptor = os.path.join(work, "datapackage.json")
with open(descriptor, encoding="utf-8") as f:
    package = json.load(f)

# The tabular resources (CSV) through frictionless; Parquet is checked by DuckDB below.
csv_only = dict(package, resources=[r for r in package["resources"] if r["format"] == "csv"])
csv_descriptor = os.path.join(work, "csv.datapackage.json")
with open(csv_descriptor, "w", encoding="utf-8") as f:
    json.dump(csv_only, f, ensure_ascii=False)
report = validate(csv_descriptor)
if not report.valid:
    print(report.to_summary())
    for task in report.tasks:
        for error in task.errors[:5]:
            print(task.name, error.type, error.message)
    sys.exit(1)
Package(descriptor)  # the whole descriptor, Parquet resources included, is a valid package

for resource in package["resources"]:
    if resource["format"] != "parquet":
        continue
    path = os.path.join(work, resource["path"])
    described = {
        row[0]: row[1] for row in duckdb.sql(f"DESCRIBE SELECT * FROM '{path}'").fetchall()
    }
    for field in resource["schema"]["fields"]:
        got = described.get(field["name"])
        assert got in EXPECTED[field["type"]], (resource["name"], field["name"], field["type"], got)
    rows = duckdb.sql(f"SELECT count(*) FROM '{path}'").fetchone()[0]
    print(f"{resource['name']}: {rows} rows, types as declared")
print("package ok")
