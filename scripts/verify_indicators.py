#!/usr/bin/env python3
"""Recomputes every jiazheng indicator with DuckDB, independently, and compares.

The inputs are the files that were submitted (as listed in a manifest: path, dataset, period,
region), the NBS region files, and jiazheng's published values (JSON). Nothing here reuses
jiazheng's code or SQL: the definitions are written again from DESIGN.md and the issue texts,
in DuckDB's dialect, over the raw CSV files (English headers and codes, raw ID numbers):

- A county is due when it has streets. A file for a region covers every due county inside it
  (a header-only file is a nil return: it covers them with no rows).
- A county counts for an indicator when files cover it for every dataset the indicator reads
  (its own and, for a rate over another indicator, that one's). A region's value is computed
  over its counting counties only, numerator and denominator alike; its state is `reported`
  (all due counties count), `partial` or `not_reported` (no numbers at all).
- Disclosure (values about workers): withheld when the workers it is about, or those without
  the attribute, number fewer than 5; then, in every group of a published parent and its
  reported children, either none is withheld or at least two are and the parent minus the
  published children again has 5 or more on both sides — else the published child with the
  fewest workers (then the lowest code) is withheld too, or the parent when none is left;
  finest groups first, repeated until nothing changes.

Exit status 0 when every value agrees exactly (states, county counts, numerators and
denominators equal, values within 1e-9), 1 otherwise, with the differences listed.
"""

import argparse
import csv
import json
import sys

import duckdb

LEVELS = [("country", 0), ("province", 2), ("city", 4), ("county", 6), ("street", 9)]
DATASETS = ["enterprises", "outlets", "trainings", "workers", "shops", "complaints"]
MODES = ["standalone", "embedded", "partnership", "online"]
FEWEST = 5


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


def has_rows(path):
    with open(path, encoding="utf-8-sig") as f:
        return sum(1 for line in f if line.strip()) > 1


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
        if has_rows(row["path"]):
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


def datasets_of(ind):
    dataset, _, den, *_ = INDICATORS[ind]
    out = [dataset]
    if isinstance(den, tuple) and den[0] == "indicator":
        other = INDICATORS[den[1]][0]
        if other not in out:
            out.append(other)
    return out


def due_in(due, prefix, level):
    """The due counties a region answers for: those inside it; a street's own county."""
    if level == "street":
        return {prefix[:6]} & due
    return {c for c in due if c.startswith(prefix)}


def grouped(con, dataset, expr, n, dims, counties):
    """expr per prefix of n digits (and breakdown), over the rows of the given counties."""
    tables = {r[0] for r in con.execute("SHOW TABLES").fetchall()}
    if dataset not in tables or not counties:
        return {}
    con.execute("CREATE OR REPLACE TEMP TABLE counting AS SELECT unnest(?::VARCHAR[]) AS county", [sorted(counties)])
    group = ", ".join(["prefix"] + dims)
    rows = con.execute(
        f"""SELECT substr(code, 1, {n}) AS prefix, {''.join(d + ', ' for d in dims)} {expr} AS x
            FROM {dataset}
            WHERE period = ? AND substr(code, 1, 6) IN (SELECT county FROM counting)
            GROUP BY {group}""",
        [PERIOD[0]],
    ).fetchall()
    return {(r[0], r[1] if dims else ""): float(r[-1] or 0) for r in rows}


PERIOD = [None]


def compute(con, period, manifest, due):
    """{(indicator, prefix, breakdown): dict(status, reported, due, numerator, denominator,
    value, people, suppressed)}"""
    PERIOD[0] = period
    covered = {d: set() for d in DATASETS}
    for r in manifest:
        if r["period"] == period:
            covered[r["dataset"]] |= {c for c in due if c.startswith(region_prefix(r["region"]))}
    out = {}
    for ind, (dataset, num, den, unit, breakdown, people) in INDICATORS.items():
        counting = set(due)
        for d in datasets_of(ind):
            counting &= covered[d]
        dims = [breakdown] if breakdown else []
        for level, n in levels_of(dataset):
            numerators = grouped(con, dataset, num, n, dims, counting)
            rows_den = grouped(con, dataset, den[1], n, dims, counting) if isinstance(den, tuple) and den[0] == "rows" else {}
            other = {}
            if isinstance(den, tuple) and den[0] == "indicator":
                o_dataset, o_num = INDICATORS[den[1]][0], INDICATORS[den[1]][1]
                other = grouped(con, o_dataset, o_num, n, [], counting)
            pops = grouped(con, dataset, "count(DISTINCT id_number)", n, dims, counting) if people else {}
            if counting:
                con.execute("CREATE OR REPLACE TEMP TABLE counting AS SELECT unnest(?::VARCHAR[]) AS county", [sorted(counting)])
                communities = dict(con.execute(
                    f"SELECT substr(code, 1, {n}), count(*) FROM communities WHERE substr(code, 1, 6) IN (SELECT county FROM counting) GROUP BY 1"
                ).fetchall())
            else:
                communities = {}
            for (prefix,) in con.execute("SELECT prefix FROM units WHERE level = ?", [level]).fetchall():
                owed = due_in(due, prefix, level)
                got = owed & counting
                status = "not_reported" if not got else ("reported" if got == owed else "partial")
                for b in (MODES if breakdown else [""]):
                    cell = {"status": status, "reported": len(got), "due": len(owed), "suppressed": False,
                            "numerator": None, "denominator": None, "value": None, "people": 0.0}
                    if status != "not_reported":
                        numerator = numerators.get((prefix, b), 0.0)
                        if den is None:
                            denominator = None
                        elif den == "communities":
                            denominator = float(communities.get(prefix, 0))
                        elif den[0] == "rows":
                            denominator = rows_den.get((prefix, b), 0.0)
                        else:
                            denominator = other.get((prefix, ""), 0.0)
                        if denominator is None:
                            value = numerator
                        elif denominator > 0:
                            value = numerator / denominator * (1 if unit == "count" else 100)
                        else:
                            value = None
                        cell.update(numerator=numerator, denominator=denominator, value=value,
                                    people=pops.get((prefix, b), 0.0))
                    out[(ind, prefix, b)] = cell
        if people:
            withhold(out, ind)
    # report_rate: counties covered for every dataset, of the due counties.
    complete = {c for c in due if all(c in covered[d] for d in DATASETS)}
    for level, n in LEVELS[:4]:
        for (prefix,) in con.execute("SELECT prefix FROM units WHERE level = ?", [level]).fetchall():
            owed = due_in(due, prefix, level)
            done = owed & complete
            value = len(done) / len(owed) * 100 if owed else None
            out[("report_rate", prefix, "")] = {
                "status": "reported", "reported": len(done), "due": len(owed), "suppressed": False,
                "numerator": float(len(done)), "denominator": float(len(owed)), "value": value, "people": 0.0,
            }
    return out


def parent_prefix(prefix):
    """The prefix of the published level above: street 9 -> county 6 -> city 4 -> province 2 -> country."""
    return {9: prefix[:6], 6: prefix[:4], 4: prefix[:2], 2: ""}.get(len(prefix))


def withhold(out, ind):
    cells = {p: c for (i, p, b), c in out.items() if i == ind and c["status"] != "not_reported"}
    hidden = {p for p, c in cells.items() if c["numerator"] < FEWEST or c["people"] - c["numerator"] < FEWEST}
    children = {}
    for p in cells:
        parent = parent_prefix(p)
        if parent is not None and parent in cells:
            children.setdefault(parent, []).append(p)
    parents = sorted(children, key=lambda p: -len(p))
    changed = True
    while changed:
        changed = False
        for parent in parents:
            if parent in hidden:
                continue
            group = children[parent]
            inside = [c for c in group if c in hidden]
            if not inside:
                continue
            shown = [c for c in group if c not in hidden]
            about = cells[parent]["numerator"] - sum(cells[c]["numerator"] for c in shown)
            among = cells[parent]["people"] - sum(cells[c]["people"] for c in shown)
            if len(inside) >= 2 and about >= FEWEST and among - about >= FEWEST:
                continue
            if shown:
                hidden.add(min(shown, key=lambda c: (cells[c]["people"], c)))
            else:
                hidden.add(parent)
            changed = True
    for p in hidden:
        cell = cells[p]
        cell.update(suppressed=True, numerator=None, denominator=None, value=None)


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
    due = {c for (c,) in con.execute("SELECT code FROM areas WHERE code IN (SELECT areaCode FROM streets)").fetchall()}
    periods = sorted({r["period"] for r in manifest})
    expected = {p: compute(con, p, manifest, due) for p in periods}

    problems = []
    seen = set()
    states = {}
    for row in published:
        period = row["period"]
        key = (row["indicator"], prefix_of(row["level"], row["region"]), row.get("breakdown") or "")
        seen.add((period,) + key)
        want = expected[period].get(key)
        if want is None:
            problems.append(f"{period} {key}: published but not expected")
            continue
        states[want["status"]] = states.get(want["status"], 0) + 1
        if (row["status"], row["counties_reported"], row["counties_due"]) != (want["status"], want["reported"], want["due"]):
            problems.append(f"{period} {key}: state {row['status']} {row['counties_reported']}/{row['counties_due']} != "
                            f"{want['status']} {want['reported']}/{want['due']}")
            continue
        if want["status"] != "reported" and row.get("met") is not None:
            problems.append(f"{period} {key}: a {want['status']} value judged against its target")
        if bool(row["suppressed"]) != want["suppressed"]:
            problems.append(f"{period} {key}: suppressed {row['suppressed']} != {want['suppressed']}")
            continue
        if want["status"] == "not_reported" or want["suppressed"]:
            if any(row[f] is not None for f in ("value", "numerator", "denominator")):
                problems.append(f"{period} {key}: numbers published for a {want['status']}/withheld value")
            continue
        if row["numerator"] != want["numerator"] or row["denominator"] != want["denominator"]:
            problems.append(f"{period} {key}: {row['numerator']}/{row['denominator']} != {want['numerator']}/{want['denominator']}")
        value = want["value"]
        if (row["value"] is None) != (value is None) or (value is not None and abs(row["value"] - value) > 1e-9):
            problems.append(f"{period} {key}: value {row['value']} != {value}")
        at = periods.index(period)
        before = expected[periods[at - 1]].get(key) if at > 0 else None
        change = None
        if (before and before["status"] == "reported" and want["status"] == "reported"
                and before["value"] is not None and value is not None):
            change = value - before["value"]
        got = row.get("change")
        if (got is None) != (change is None) or (change is not None and abs(got - change) > 1e-9):
            problems.append(f"{period} {key}: change {got} != {change}")
    missing = [(p,) + k for p in periods for k in expected[p] if (p,) + k not in seen]
    problems += [f"{m}: expected but not published" for m in missing[:20]]

    withheld = sum(1 for p in periods for c in expected[p].values() if c["suppressed"])
    print(f"checked {len(published)} published values of {len(INDICATORS) + 1} indicators "
          f"over {len(periods)} periods ({', '.join(f'{k} {v}' for k, v in sorted(states.items()))}; "
          f"{withheld} withheld): {len(problems)} differences")
    for p in problems[:40]:
        print("  " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
