"""Reads /v1/catalog as a data portal harvesting it would: parsed as JSON-LD by rdflib, then
queried with the DCAT vocabulary. Called by tests/it/catalog.rs:
    check_catalog.py CATALOG_FILE EXPECTED_DATASET_IDS
Checks the catalogue and every dataset (titles in Chinese and English, licence, publisher,
contact, temporal coverage, modified, at least three distributions) and prints each
distribution's URL on its own line for the caller to fetch, then "catalog ok".
"""

import sys

from rdflib import Graph
from rdflib.namespace import DCAT, DCTERMS, FOAF, RDF

path, expected = sys.argv[1], sorted(sys.argv[2].split(","))
graph = Graph().parse(path, format="json-ld")
catalogs = list(graph.subjects(RDF.type, DCAT.Catalog))
assert len(catalogs) == 1, catalogs
catalog = catalogs[0]
assert graph.value(catalog, DCTERMS.license) is not None, "the catalogue has no licence"
assert graph.value(graph.value(catalog, DCTERMS.publisher), FOAF.name), "no publisher"

datasets = {
    str(graph.value(d, DCTERMS.identifier)): d for d in graph.objects(catalog, DCAT.dataset)
}
assert sorted(datasets) == expected, (sorted(datasets), expected)
urls = []
for name, dataset in datasets.items():
    assert (dataset, RDF.type, DCAT.Dataset) in graph, name
    titles = {t.language: str(t) for t in graph.objects(dataset, DCTERMS.title)}
    assert titles.get("zh") and titles.get("en"), (name, titles)
    assert graph.value(dataset, DCTERMS.license) is not None, name
    publisher = graph.value(dataset, DCTERMS.publisher)
    assert publisher is not None and graph.value(publisher, FOAF.name), name
    assert graph.value(dataset, DCAT.contactPoint) is not None, name
    temporal = graph.value(dataset, DCTERMS.temporal)
    assert temporal is not None, name
    start, end = graph.value(temporal, DCAT.startDate), graph.value(temporal, DCAT.endDate)
    assert start is not None and end is not None and start.toPython() < end.toPython(), name
    assert graph.value(dataset, DCTERMS.modified) is not None, name
    keywords = {k.language for k in graph.objects(dataset, DCAT.keyword)}
    assert keywords == {"zh", "en"}, (name, keywords)
    distributions = list(graph.objects(dataset, DCAT.distribution))
    assert len(distributions) >= 3, (name, len(distributions))
    for distribution in distributions:
        assert graph.value(distribution, DCTERMS.format) is not None, distribution
        assert graph.value(distribution, DCAT.mediaType) is not None, distribution
        urls.append(str(graph.value(distribution, DCAT.downloadURL)))
        # The SDMX-CSV names the structure it conforms to; it is fetched as well.
        structure = graph.value(distribution, DCTERMS.conformsTo)
        if structure is not None:
            urls.append(str(structure))
    if name == "indicator_values":
        media = {str(graph.value(d, DCAT.mediaType)) for d in distributions}
        assert any(m.endswith("vnd.sdmx.data+csv") for m in media), media
print("\n".join(urls))
print("catalog ok")
