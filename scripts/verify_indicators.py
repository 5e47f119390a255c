#!/usr/bin/env python3
"""Recomputes every jiazheng indicator with DuckDB, independently, and compares.

The inputs are the files that were submitted (as listed in a manifest: path, dataset, period,
region), the NBS region files, and jiazheng's published values (JSON). Nothing here reuses
jiazheng's code or SQL: the definitions are written again from DESIGN.md, in DuckDB's dialect,
over the raw CSV files (English headers and codes, raw ID numbers).

Exit status 0 when every value agrees exactly (numerators and denominators equal, values within
1e-9), 1 otherwise, with the differences listed.
"""

import argparse
import csv
import json
import sys

import duckdb

LEVELS = [("country", 0), ("province", 2), ("city", 4), ("county", 6), ("street", 9)]
DATASETS = ["enterprises", "outlets", "trainings", "workers", "shops", "complaints"]
MODES = ["standalone", "embedded", "partnership", "online"]


def has(service):
    return f"list_contains(string_split(services, ';'), '{service}')"


# id: (dataset, numerator, denominator, unit, breakdown, people-based)
# denominator: None | 'communities' | ('rows', sql) | ('indicator', id)
INDICATORS = {
    "outlet_coverage": ("outlets", "count(DISTINCT community_code)", "communities", "percent", None, False),
    "outlets": ("outlets", "count(*)", None, "count", None, False),
    "outlets_by_mode": ("outlets", "count(*)", None, "count", "mode", False),
    "meal_outlets": ("outlets", f"count(*) FILTER (WHERE {has('meal')})", None, "count", None, False),
    "childcare_outlets": ("outlets", f"count(*) FILTER (WHERE {has('childcare')} OR {has('maternity')})", None, "count", None, False),
    "elderly_outlets": ("outlets", f"count(*) FILTER (WHERE {has('elderly_care')})", None, "count", None, False),
    "rent_reduced_share": ("outlets", "count(*) FILTER (WHERE rent_reduced = 'true')", ("rows", "count(*)"), "percent", None, False),
    "residential_utility_share": ("outlets", "count(*) FILTER (WHERE residential_utility = 'true')", ("rows", "count(*)"), "percent", None, False),
    "industry_education_enterprises": ("enterprises", "count(DISTINCT credit_code) FILTER (WHERE industry_education IN ('cultivation', 'certified'))", None, "count", None, False),
    "key_contact_enterprises": ("enterprises", "count(DISTINCT credit_code) FILTER (WHERE key_contact = 'true')", None, "count", None, False),
    "employee_based_share": ("enterprises", "count(DISTINCT credit_code) FILTER (WHERE employee_based = 'true')", ("rows", "count(DISTINCT credit_code)"), "percent", None, False),
    "credential_rate": ("workers", "count(DISTINCT id_number) FILTER (WHERE has_service_card = 'true')", ("rows", "count(DISTINCT id_number)"), "percent", None, True),
    "skill_certificate_rate": ("workers", "count(DISTINCT id_number) FILTER (WHERE skill_level <> 'none')", ("rows", "count(DISTINCT id_number)"), "percent", None, True),
    "resident_workers": ("workers", "count(DISTINCT id_number) FILTER (WHERE origin = 'resident')", None, "count", None, True),
    "rural_workers": ("workers", "count(DISTINCT id_number) FILTER (WHERE origin IN ('rural_migrant', 'poverty_alleviated'))", None, "count", None, True),
    "trainings": ("trainings", "count(*)", None, "count", None, False),
    "caravan_trainings": ("trainings", "count(*) FILTER (WHERE organizer = 'caravan')", None, "count", None, False),
    "trainees": ("trainings", "sum(CAST(trainees AS BIGINT))", None, "count", None, False),
    "certificates": ("trainings", "sum(CAST(certified_primary AS BIGINT) + CAST(certified_intermediate AS BIGINT) + CAST(certified_advanced AS BIGINT))", None, "count", None, False),
    "graduate_shops": ("shops", "count(*) FILTER (WHERE owner_graduate = 'true')", None, "count", None, False),
    "complaints_per_100_outlets": ("complaints", "count(*)", ("indicator", "outlets"), "per_hundred", None, False),
    "complaint_resolution_rate": ("complaints", "count(*) FILTER (WHERE resolved = 'true')", ("rows", "count(*)"), "percent", None, False),
}

REGION_FIELD = {"enterprises": "county_code"}


def region_prefix(code):
    """The significant digits of a submitting region's code: 152200 -> 1522, 150000 -> 15."""
    if code == "000000":
        return ""
    while len(code) > 2 and len(code) <= 6 and code.endswith("00"):
        code = code[:-2]
    return code


def load(con, regions_dir, manifest):
    for name in ["provinces", "cities", "areas", "streets", "villages"]:
        con.execute(
            f"CREATE TABLE {name} AS SELECT * FROM read_csv('{regions_dir}/{name}.csv.gz', all_varchar = true, header = true)"
        )
    con.execute(
        """CREATE TABLE units AS
           SELECT '' AS prefix, 'country' AS level
           UNION ALL SELECT code, 'province' FROM provinces
           UNION ALL SELECT code, 'city' FROM cities
           UNION ALL SELECT code, 'county' FROM areas
           UNION ALL SELECT code, 'street' FROM streets"""
    )
    con.execute(
        "CREATE TABLE communities AS SELECT code FROM villages WHERE CAST(substr(code, 10, 3) AS INTEGER) BETWEEN 1 AND 199"
    )
    by_dataset = {d: [] for d in DATASETS}
    for row in manifest:
        by_dataset[row["dataset"]].append(row)
    for dataset, rows in by_dataset.items():
        if not rows:
            continue
        field = REGION_FIELD.get(dataset, "community_code")
        selects = [
            f"SELECT *, {field} AS code, '{r['period']}' AS period FROM read_csv('{r['path']}', all_varchar = true, header = true)"
            for r in rows
        ]
        con.execute(f"CREATE TABLE {dataset} AS " + " UNION ALL BY NAME ".join(selects))


def levels_of(dataset):
    return LEVELS[:4] if dataset == "enterprises" else LEVELS


def compute(con, period, manifest):
    """{(indicator, prefix, breakdown): (numerator, denominator, value, suppressed)}"""
    out = {}
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    for ind, (dataset, num, den, unit, breakdown, people) in INDICATORS.items():
        for level, n in levels_of(dataset):
            dims = [breakdown] if breakdown else []
            if dataset in tables:
                den_sql = den[1] if isinstance(den, tuple) and den[0] == "rows" else "0"
                pop_sql = "count(DISTINCT id_number)" if people else "0"
                group = ", ".join(["prefix"] + dims)
                rows = con.execute(
                    f"""SELECT substr(code, 1, {n}) AS prefix, {''.join(d + ', ' for d in dims)}
                               {num} AS n, {den_sql} AS d, {pop_sql} AS pop
                        FROM {dataset} WHERE period = ? GROUP BY {group}""",
                    [period],
                ).fetchall()
            else:
                rows = []
            measured = {}
            for r in rows:
                key = (r[0], r[1] if breakdown else "")
                measured[key] = r[-3:]
            prefixes = [p for (p,) in con.execute("SELECT prefix FROM units WHERE level = ?", [level]).fetchall()]
            communities = dict(
                con.execute(
                    f"SELECT substr(code, 1, {n}), count(*) FROM communities GROUP BY 1"
                ).fetchall()
            )
            for prefix in prefixes:
                for b in (MODES if breakdown else [""]):
                    numerator, rows_den, pop = measured.get((prefix, b), (0, 0, 0))
                    numerator = float(numerator or 0)
                    if den is None:
                        denominator = None
                    elif den == "communities":
                        denominator = float(communities.get(prefix, 0))
                    elif den[0] == "rows":
                        denominator = float(rows_den or 0)
                    else:
                        other = out.get((den[1], prefix, ""))
                        denominator = other[0] if other else 0.0
                    if denominator is None:
                        value = numerator
                    elif denominator > 0:
                        value = numerator / denominator * (1 if unit == "count" else 100)
                    else:
                        value = None
                    suppressed = people and (pop or 0) < 5
                    out[(ind, prefix, b)] = (numerator, denominator, value, suppressed)
    # report_rate: counties with streets, covered for every dataset by a submitted file.
    counties = [c for (c,) in con.execute(
        "SELECT code FROM areas WHERE code IN (SELECT areaCode FROM streets)"
    ).fetchall()]
    covered = {d: [region_prefix(r["region"]) for r in manifest if r["dataset"] == d and r["period"] == period] for d in DATASETS}
    complete = {c for c in counties if all(any(c.startswith(p) for p in covered[d]) for d in DATASETS)}
    for level, n in LEVELS[:4]:
        for (prefix,) in con.execute("SELECT prefix FROM units WHERE level = ?", [level]).fetchall():
            inside = [c for c in counties if c.startswith(prefix)]
            done = [c for c in inside if c in complete]
            value = len(done) / len(inside) * 100 if inside else None
            out[("report_rate", prefix, "")] = (float(len(done)), float(len(inside)), value, False)
    return out


def prefix_of(level, code):
    return {"country": "", "province": code[:2], "city": code[:4], "county": code[:6], "street": code[:9]}[level]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--regions", required=True)
    parser.add_argument("--manifest", required=True)
    parser.add_argument("--jiazheng", required=True)
    args = parser.parse_args()

    with open(args.manifest, newline="", encoding="utf-8") as f:
        manifest = list(csv.DictReader(f))
    with open(args.jiazheng, encoding="utf-8") as f:
        published = json.load(f)

    con = duckdb.connect()
    load(con, args.regions, manifest)
    periods = sorted({r["period"] for r in manifest})
    expected = {p: compute(con, p, manifest) for p in periods}

    problems = []
    seen = set()
    for row in published:
        period = row["period"]
        key = (row["indicator"], prefix_of(row["level"], row["region"]), row.get("breakdown") or "")
        seen.add((period,) + key)
        want = expected[period].get(key)
        if want is None:
            problems.append(f"{period} {key}: published but not expected")
            continue
        numerator, denominator, value, suppressed = want
        if bool(row["suppressed"]) != suppressed:
            problems.append(f"{period} {key}: suppressed {row['suppressed']} != {suppressed}")
            continue
        if suppressed:
            if row["value"] is not None or row["numerator"] is not None:
                problems.append(f"{period} {key}: suppressed value published")
            continue
        if row["numerator"] != numerator or row["denominator"] != denominator:
            problems.append(f"{period} {key}: {row['numerator']}/{row['denominator']} != {numerator}/{denominator}")
        if (row["value"] is None) != (value is None) or (value is not None and abs(row["value"] - value) > 1e-9):
            problems.append(f"{period} {key}: value {row['value']} != {value}")
        previous = expected.get(periods[periods.index(period) - 1]) if periods.index(period) > 0 else None
        if previous is not None:
            before = previous.get(key)
            change = None
            if before and not before[3] and before[2] is not None and value is not None:
                change = value - before[2]
            got = row.get("change")
            if (got is None) != (change is None) or (change is not None and abs(got - change) > 1e-9):
                problems.append(f"{period} {key}: change {got} != {change}")
    missing = [(p,) + k for p in periods for k in expected[p] if (p,) + k not in seen]
    problems += [f"{m}: expected but not published" for m in missing[:20]]

    print(f"checked {len(published)} published values of {len(INDICATORS) + 1} indicators "
          f"over {len(periods)} periods: {len(problems)} differences")
    for p in problems[:40]:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
