"""Tests for the ontology (jiceng.ttl), the SHACL shapes and kg.validate."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from rdflib import BNode, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, OWL, PROV, RDF, RDFS, SKOS

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the package may not be installed (pip install -e .)
    sys.path.insert(0, str(ROOT))

from kg.validate import ONTOLOGY_PATH, SHAPES_PATH, validate  # noqa: E402

FIXTURE = ROOT / "tests" / "fixtures" / "sample.ttl"
README = ROOT / "ontology" / "README.md"

JC = Namespace("https://w3id.org/jiceng/ontology#")
RES = Namespace("https://w3id.org/jiceng/resource/")
XSD = Namespace("http://www.w3.org/2001/XMLSchema#")  # plain Namespace: rdflib's XSD upsets pytest
ONTOLOGY_IRI = URIRef("https://w3id.org/jiceng/ontology")

STREET = RES["street/jianshelu-jiedao"]
PERSON = RES["person/zhang-san"]
POST = RES["post/jianshelu-jiedao-danggongwei-shuji"]
STATISTIC = RES["statistic/999_fixture-1"]
DOCUMENT = RES["document/999_fixture"]
SECRETARY_STMT = RES["statement/7827615778cd"]  # 张三 secretaryOf 建设路街道
PARTOF_STMT = RES["statement/08dc4a919938"]  # 建设路街道 partOf 中原区

TERM_TYPES = (OWL.Class, OWL.ObjectProperty, OWL.DatatypeProperty)


# --- helpers -------------------------------------------------------------------


@pytest.fixture(scope="module")
def ontology() -> Graph:
    return Graph().parse(ONTOLOGY_PATH)


@pytest.fixture(scope="module")
def fixture_graph() -> Graph:
    return Graph().parse(FIXTURE)


def declared_terms(g: Graph) -> set[URIRef]:
    """jc: classes and properties declared in the ontology."""
    return {
        s
        for t in TERM_TYPES
        for s in g.subjects(RDF.type, t)
        if isinstance(s, URIRef) and s.startswith(str(JC))
    }


def used_jc_terms(g: Graph) -> set[URIRef]:
    """Every jc: IRI appearing anywhere in a graph."""
    return {
        node
        for triple in g
        for node in triple
        if isinstance(node, URIRef) and node.startswith(str(JC))
    }


def validate_graph(g: Graph, tmp_path: Path) -> tuple[bool, str]:
    path = tmp_path / "data.ttl"
    g.serialize(path, format="turtle")
    return validate(path)


# --- ontology ------------------------------------------------------------------


def test_ontology_header(ontology: Graph) -> None:
    assert (ONTOLOGY_IRI, RDF.type, OWL.Ontology) in ontology
    assert ontology.value(ONTOLOGY_IRI, OWL.versionInfo) == Literal("0.1.0")
    assert ontology.value(ONTOLOGY_IRI, DCTERMS.license) == URIRef(
        "https://creativecommons.org/licenses/by/4.0/"
    )
    vann = Namespace("http://purl.org/vocab/vann/")
    assert str(ontology.value(ONTOLOGY_IRI, vann.preferredNamespacePrefix)) == "jc"
    assert str(ontology.value(ONTOLOGY_IRI, vann.preferredNamespaceUri)) == str(JC)
    assert ontology.value(ONTOLOGY_IRI, DCTERMS.title) is not None
    assert ontology.value(ONTOLOGY_IRI, DCTERMS.description) is not None


def test_every_term_labelled_and_commented(ontology: Graph) -> None:
    terms = declared_terms(ontology)
    assert len(terms) > 50
    problems = []
    for term in sorted(terms):
        langs = {lbl.language for lbl in ontology.objects(term, RDFS.label)}
        comment_langs = {c.language for c in ontology.objects(term, RDFS.comment)}
        if not {"zh", "en"} <= langs:
            problems.append(f"{term}: labels {langs}")
        if "en" not in comment_langs:
            problems.append(f"{term}: no English rdfs:comment")
        if (term, RDFS.isDefinedBy, ONTOLOGY_IRI) not in ontology:
            problems.append(f"{term}: no rdfs:isDefinedBy")
    assert not problems, "\n".join(problems)


def test_no_undeclared_jc_terms(ontology: Graph) -> None:
    """Every jc: IRI used in the ontology itself is declared there."""
    assert used_jc_terms(ontology) <= declared_terms(ontology)


FORBIDDEN = {
    OWL.unionOf,
    OWL.disjointWith,
    OWL.oneOf,
    OWL.complementOf,
    OWL.hasValue,
    OWL.AllDisjointClasses,
    OWL.disjointUnionOf,
    OWL.propertyChainAxiom,
    OWL.propertyDisjointWith,
    OWL.qualifiedCardinality,
    OWL.minQualifiedCardinality,
    OWL.maxQualifiedCardinality,
    OWL.onClass,
    OWL.hasSelf,
    OWL.hasKey,
    OWL.DataRange,
    OWL.ReflexiveProperty,
    OWL.IrreflexiveProperty,
    OWL.AsymmetricProperty,
    OWL.AllDisjointProperties,
    OWL.NegativePropertyAssertion,
}


def test_only_owl_lite_constructs(ontology: Graph) -> None:
    for s, p, o in ontology:
        assert p not in FORBIDDEN, f"non-OWL-Lite predicate {p} on {s}"
        assert o not in FORBIDDEN, f"non-OWL-Lite construct {o} on {s}"
    for prop in (OWL.cardinality, OWL.minCardinality, OWL.maxCardinality):
        for restriction, value in ontology.subject_objects(prop):
            assert int(value) in (0, 1), f"{prop} {value} on {restriction}"
    # Class expressions in domain/range/restrictions must be named classes.
    for prop in (RDFS.domain, RDFS.range, OWL.allValuesFrom, OWL.someValuesFrom):
        for s, o in ontology.subject_objects(prop):
            assert isinstance(o, URIRef), f"anonymous class in {prop} of {s}"
    # Anonymous superclasses may only be restrictions.
    for s, o in ontology.subject_objects(RDFS.subClassOf):
        if isinstance(o, BNode):
            assert (o, RDF.type, OWL.Restriction) in ontology, f"anonymous class under {s}"


def test_required_terms(ontology: Graph) -> None:
    classes = {
        "Person", "Organisation", "PartyOrganisation", "PartyCommittee", "PartyBranch",
        "TemporaryPartyBranch", "PartyGroup", "GovernmentBody", "Enterprise",
        "SocialOrganisation", "Place", "Province", "City", "District", "County",
        "CountyLevelCity", "Street", "Town", "Township", "Community", "Village", "Road",
        "Compound", "Programme", "Post", "Event", "Document", "Statistic", "Sentence",
    }  # fmt: skip
    object_props = {
        "partOf", "locatedIn", "subOrganisationOf", "holds", "postIn", "secretaryOf",
        "establishedBy", "adopts", "mentionedIn", "spokeAt", "about", "inDocument",
        "sentence", "hasPart", "mentions", "heldBy",
    }  # fmt: skip
    datatype_props = {
        "adminCode", "role", "quantity", "unit", "measure", "qualifier", "text", "evidence",
        "startOffset", "endOffset", "index", "rule", "confidence", "byline", "sourceFile",
        "duplicateParagraphs", "sentenceCount",
    }  # fmt: skip
    for names, kind in (
        (classes, OWL.Class),
        (object_props, OWL.ObjectProperty),
        (datatype_props, OWL.DatatypeProperty),
    ):
        for name in names:
            assert (JC[name], RDF.type, kind) in ontology, f"jc:{name} is not a {kind}"


def test_key_axioms(ontology: Graph) -> None:
    sub = RDFS.subClassOf
    assert (JC.partOf, RDF.type, OWL.TransitiveProperty) in ontology
    for p in (JC.adminCode, JC.quantity, JC.inDocument):
        assert (p, RDF.type, OWL.FunctionalProperty) in ontology
    assert (JC.hasPart, OWL.inverseOf, JC.partOf) in ontology
    assert (JC.mentions, OWL.inverseOf, JC.mentionedIn) in ontology
    assert (JC.heldBy, OWL.inverseOf, JC.holds) in ontology
    assert (JC.TemporaryPartyBranch, sub, JC.PartyBranch) in ontology
    assert (JC.PartyBranch, sub, JC.PartyOrganisation) in ontology
    assert (JC.Person, sub, URIRef("http://xmlns.com/foaf/0.1/Person")) in ontology
    assert (JC.Organisation, sub, URIRef("http://www.w3.org/ns/org#Organization")) in ontology
    assert (JC.Document, sub, URIRef("https://schema.org/NewsArticle")) in ontology
    assert ontology.value(JC.adminCode, RDFS.range) == XSD.string
    assert ontology.value(JC.quantity, RDFS.range) == XSD.decimal
    assert ontology.value(JC.confidence, RDFS.range) == XSD.decimal
    assert ontology.value(JC.startOffset, RDFS.range) == XSD.integer


def test_readme_terms_declared(ontology: Graph) -> None:
    """Every jc: term the data contract (README) names is in the ontology."""
    names = set(re.findall(r"\bjc:([A-Za-z]\w*)", README.read_text(encoding="utf-8")))
    assert names, "README mentions no jc: terms?"
    missing = {n for n in names if JC[n] not in declared_terms(ontology)}
    assert not missing, f"README terms missing from the ontology: {sorted(missing)}"


def test_shapes_and_fixture_use_declared_terms(ontology: Graph, fixture_graph: Graph) -> None:
    declared = declared_terms(ontology)
    assert used_jc_terms(Graph().parse(SHAPES_PATH)) <= declared
    assert used_jc_terms(fixture_graph) <= declared


# --- fixture and shapes -------------------------------------------------------------


def test_fixture_conforms_without_warnings() -> None:
    conforms, report = validate(FIXTURE)
    assert conforms, report
    assert "Warning" not in report, report


def test_fixture_size(fixture_graph: Graph) -> None:
    assert 60 <= len(fixture_graph) <= 300
    assert (STREET, JC.adminCode, Literal("410102002000")) in fixture_graph


def test_broken_fixture_fails(fixture_graph: Graph, tmp_path: Path) -> None:
    """The brief's example: several errors at once, each named in the report."""
    g = Graph() + fixture_graph
    g.remove((SECRETARY_STMT, RDF.object, None))
    g.set((STREET, JC.adminCode, Literal("123")))
    g.set((PARTOF_STMT, JC.confidence, Literal(Decimal("1.5"))))
    conforms, report = validate_graph(g, tmp_path)
    assert not conforms
    assert "rdf:object" in report or str(RDF.object) in report
    assert "adminCode" in report and "123" in report
    assert "confidence" in report and "1.5" in report


def _remove(*triples: tuple) -> Callable[[Graph], None]:
    def mutate(g: Graph) -> None:
        for t in triples:
            g.remove(t)

    return mutate


def _set(s: URIRef, p: URIRef, o) -> Callable[[Graph], None]:
    return lambda g: g.set((s, p, o))


def _add(*triples: tuple) -> Callable[[Graph], None]:
    def mutate(g: Graph) -> None:
        for t in triples:
            g.add(t)

    return mutate


def _drop_node(node: URIRef) -> Callable[[Graph], None]:
    return _remove((node, None, None))


BROKEN = {
    "statement without rdf:object": (
        _remove((SECRETARY_STMT, RDF.object, None)),
        "exactly one rdf:object",
    ),
    "statement with two subjects": (
        _add((SECRETARY_STMT, RDF.subject, STREET)),
        "exactly one rdf:subject",
    ),
    "statement without provenance": (
        _remove((SECRETARY_STMT, PROV.wasDerivedFrom, None)),
        "prov:wasDerivedFrom",
    ),
    "admin code too short": (
        _set(STREET, JC.adminCode, Literal("123")),
        "12-digit",
    ),
    "admin code as integer": (
        _set(STREET, JC.adminCode, Literal(410102002000)),
        "12-digit",
    ),
    "confidence above 1": (
        _set(PARTOF_STMT, JC.confidence, Literal(Decimal("1.5"))),
        "jc:confidence",
    ),
    "confidence as double": (
        _set(PARTOF_STMT, JC.confidence, Literal(0.95)),
        "jc:confidence",
    ),
    "statement without rule": (
        _remove((PARTOF_STMT, JC.rule, None)),
        "jc:rule",
    ),
    "evidence start after end": (
        _set(SECRETARY_STMT, JC.startOffset, Literal(80)),
        "start <= end",
    ),
    "evidenced statement without evidence text": (
        _remove((SECRETARY_STMT, JC.evidence, None)),
        "jc:evidence",
    ),
    "evidence outside its sentence": (
        _set(SECRETARY_STMT, JC.endOffset, Literal(120)),
        "ends after the sentence",
    ),
    "evidence sentence from another document": (
        _set(SECRETARY_STMT, PROV.wasDerivedFrom, RES["document/other"]),
        "other than prov:wasDerivedFrom",
    ),
    "negative offset": (
        _set(RES["sentence/999_fixture-0000"], JC.startOffset, Literal(-1)),
        "jc:startOffset",
    ),
    "sentence without document": (
        _remove((RES["sentence/999_fixture-0001"], JC.inDocument, None)),
        "jc:inDocument",
    ),
    "two Chinese labels": (
        _add((STREET, RDFS.label, Literal("建设路办事处", lang="zh"))),
        "rdfs:label",
    ),
    "no Chinese label": (
        _remove((PERSON, RDFS.label, Literal("张三", lang="zh"))),
        "exactly one Chinese rdfs:label",
    ),
    "untagged label": (
        _add((PERSON, RDFS.label, Literal("张三"))),
        "language-tagged",
    ),
    "person not mentioned": (
        _remove((PERSON, JC.mentionedIn, None)),
        "person must be jc:mentionedIn",
    ),
    "programme not mentioned": (
        _remove((RES["programme/hongse-wuye"], JC.mentionedIn, None)),
        "programme must be jc:mentionedIn",
    ),
    "partOf a person": (
        _add((STREET, JC.partOf, PERSON)),
        "jc:partOf must point to a jc:Place",
    ),
    "secretaryOf from a post": (
        _add((POST, JC.secretaryOf, STREET)),
        "subject of jc:secretaryOf must be a jc:Person",
    ),
    "postIn a document": (
        _set(POST, JC.postIn, DOCUMENT),
        "jc:postIn must point to a jc:Place or a jc:Organisation",
    ),
    "adopts a place": (
        _add((STREET, JC.adopts, RES["district/zhongyuan-qu"])),
        "jc:adopts must point to a jc:Programme",
    ),
    "statistic quantity as integer": (
        _set(STATISTIC, JC.quantity, Literal(30)),
        "jc:quantity",
    ),
    "statistic without measure": (
        _remove((STATISTIC, JC.measure, None)),
        "jc:measure",
    ),
    "document without title": (
        _remove((DOCUMENT, DCTERMS.title, None)),
        "dcterms:title",
    ),
    "post without role": (
        _remove((POST, JC.role, None)),
        "jc:role",
    ),
    "fact without evidence node": (
        _drop_node(SECRETARY_STMT),
        "has no rdf:Statement evidence node",
    ),
    "partOf cycle": (
        _add((RES["province/henan-sheng"], JC.partOf, STREET)),
        "cycle",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN), ids=list(BROKEN))
def test_shapes_catch(case: str, fixture_graph: Graph, tmp_path: Path) -> None:
    mutate, expected = BROKEN[case]
    g = Graph() + fixture_graph
    mutate(g)
    conforms, report = validate_graph(g, tmp_path)
    assert not conforms, f"{case}: expected a violation\n{report}"
    assert expected in report, f"{case}: {expected!r} not in report\n{report}"


WARNINGS = {
    "no pinyin label": (
        _remove((PERSON, RDFS.label, Literal("Zhāng Sān", lang="zh-Latn-pinyin"))),
        "pinyin",
    ),
    "no prefLabel": (
        _remove((PERSON, SKOS.prefLabel, None)),
        "skos:prefLabel",
    ),
    "two types": (
        _add((STREET, RDF.type, JC.Place)),
        "single rdf:type",
    ),
    "reified fact not asserted": (
        _remove((STREET, JC.partOf, RES["district/zhongyuan-qu"])),
        "is not asserted",
    ),
    "uncoded place not mentioned": (
        _remove(
            (RES["town/mazhai-zhen"], JC.mentionedIn, None),
            (RES["town/mazhai-zhen"], JC.adminCode, None),
        ),
        "neither mentioned",
    ),
}


@pytest.mark.parametrize("case", list(WARNINGS), ids=list(WARNINGS))
def test_shapes_warn(case: str, fixture_graph: Graph, tmp_path: Path) -> None:
    mutate, expected = WARNINGS[case]
    g = Graph() + fixture_graph
    mutate(g)
    conforms, report = validate_graph(g, tmp_path)
    assert conforms, f"{case}: warnings must not fail validation\n{report}"
    assert "Warning" in report and expected in report, f"{case}\n{report}"


def test_gazetteer_place_needs_no_mention(fixture_graph: Graph) -> None:
    city = RES["city/zhengzhou-shi"]
    assert (city, JC.mentionedIn, None) not in fixture_graph
    assert (city, JC.adminCode, None) in fixture_graph


def test_validate_accepts_str_path() -> None:
    conforms, report = validate(str(FIXTURE), SHAPES_PATH)
    assert conforms and "Conforms: True" in report
