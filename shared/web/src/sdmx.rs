//! SDMX, the way statistical offices exchange statistics: indicator values as SDMX-CSV 2.0
//! (`format=sdmx-csv` on every indicator endpoint) and their structure — the dataflow, the data
//! structure definition and its codelists — as an SDMX-ML 3.0 structure message
//! (`GET /v1/sdmx/structure`). The components are declared once in [`COMPONENTS`]: the DSD and
//! every CSV row follow that list, and the codelists come from the declarations (indicators,
//! units, breakdown values, reporting states) and the region tree.

use std::io;

use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use quick_xml::Writer;
use quick_xml::events::BytesText;

use super::{ApiError, AppState, Source, Stamp};
use jiazheng_core::indicators::snapshot::Row;
use jiazheng_core::indicators::{CATALOGUE, Quality, ReportingState, Unit};
use jiazheng_core::periods::Period;
use jiazheng_core::regions::{COUNTRY_CODE, Level, RegionTree};

pub const AGENCY: &str = "JIAZHENG";
pub const VERSION: &str = "1.0";
/// The dataflow every row names in its `STRUCTURE_ID`.
pub const DATAFLOW_ID: &str = "DF_INDICATORS";
const DSD_ID: &str = "DSD_INDICATORS";
const CONCEPTS_ID: &str = "CS_JIAZHENG";
pub const CSV_TYPE: &str = "application/vnd.sdmx.data+csv; version=2.0.0; charset=utf-8";
pub const STRUCTURE_TYPE: &str = "application/vnd.sdmx.structure+xml; version=3.0.0";

/// The value a dimension takes where it does not apply (SDMX's `_Z`): a value without breakdown.
const NOT_APPLICABLE: &str = "_Z";

#[derive(Clone, Copy, PartialEq)]
enum Role {
    Dimension,
    Time,
    Measure,
    Attribute { mandatory: bool },
}

#[derive(Clone, Copy)]
enum Representation {
    Codes(&'static str),
    Period,
    Double,
    Integer,
}

/// A component of the data structure: a concept, its role and how its values are written.
struct Component {
    id: &'static str,
    zh: &'static str,
    en: &'static str,
    role: Role,
    representation: Representation,
    /// Its cell in a row.
    cell: fn(&Row) -> String,
}

/// The components in the order the DSD declares them and a CSV row carries them.
const COMPONENTS: [Component; 11] = [
    Component {
        id: "INDICATOR",
        zh: "指标",
        en: "Indicator",
        role: Role::Dimension,
        representation: Representation::Codes("CL_INDICATOR"),
        cell: |r| r.indicator.id.to_string(),
    },
    Component {
        id: "REF_AREA",
        zh: "地区",
        en: "Reference area",
        role: Role::Dimension,
        representation: Representation::Codes("CL_REGION"),
        cell: |r| ref_area(&r.region).to_string(),
    },
    Component {
        id: "BREAKDOWN",
        zh: "分组",
        en: "Breakdown",
        role: Role::Dimension,
        representation: Representation::Codes("CL_BREAKDOWN"),
        cell: |r| r.breakdown.clone().unwrap_or_else(|| NOT_APPLICABLE.into()),
    },
    Component {
        id: "TIME_PERIOD",
        zh: "时期",
        en: "Time period",
        role: Role::Time,
        representation: Representation::Period,
        cell: |r| time_period(r.period),
    },
    Component {
        id: "OBS_VALUE",
        zh: "数值",
        en: "Observation value",
        role: Role::Measure,
        representation: Representation::Double,
        cell: |r| r.value.map(|v| v.to_string()).unwrap_or_default(),
    },
    Component {
        id: "UNIT_MEASURE",
        zh: "单位",
        en: "Unit of measure",
        role: Role::Attribute { mandatory: true },
        representation: Representation::Codes("CL_UNIT"),
        cell: |r| unit_code(r.indicator.unit).to_string(),
    },
    Component {
        id: "REPORTING_STATE",
        zh: "报送状态",
        en: "Reporting state",
        role: Role::Attribute { mandatory: true },
        representation: Representation::Codes("CL_REPORTING_STATE"),
        cell: |r| r.status.as_str().to_string(),
    },
    Component {
        id: "CONF_STATUS",
        zh: "保密状态",
        en: "Confidentiality status",
        role: Role::Attribute { mandatory: true },
        representation: Representation::Codes("CL_CONF_STATUS"),
        cell: |r| if r.suppressed { "C" } else { "F" }.to_string(),
    },
    Component {
        id: "QUALITY",
        zh: "核实状态",
        en: "Plausibility check",
        role: Role::Attribute { mandatory: false },
        representation: Representation::Codes("CL_QUALITY"),
        cell: |r| {
            r.quality
                .map(Quality::as_str)
                .unwrap_or_default()
                .to_string()
        },
    },
    Component {
        id: "COUNTIES_REPORTED",
        zh: "已报送县数",
        en: "Counties reported",
        role: Role::Attribute { mandatory: true },
        representation: Representation::Integer,
        cell: |r| r.counties_reported.to_string(),
    },
    Component {
        id: "COUNTIES_DUE",
        zh: "应报送县数",
        en: "Counties due",
        role: Role::Attribute { mandatory: true },
        representation: Representation::Integer,
        cell: |r| r.counties_due.to_string(),
    },
];

/// The country is `CN` (ISO 3166, as SDMX data name countries) rather than `000000`, which
/// readers that guess column types turn into `0`; every other region keeps its NBS code.
pub fn ref_area(code: &str) -> &str {
    if code == COUNTRY_CODE { "CN" } else { code }
}

/// SDMX writes a half-year as `2023-S2`.
pub fn time_period(period: Period) -> String {
    format!("{}-S{}", period.year, period.half)
}

fn unit_code(unit: Unit) -> &'static str {
    match unit {
        Unit::Count => "count",
        Unit::Percent => "percent",
        Unit::PerHundred => "per_hundred",
    }
}

/// A code: its id, Chinese and English names. Regions carry no `Parent`: SDMX-ML 3.0 wants a
/// parent reference to start with a letter, and a region's parent is its code's leading digits.
struct Code {
    id: String,
    zh: String,
    en: Option<String>,
}

impl Code {
    fn new(id: &str, zh: &str, en: &str) -> Code {
        Code {
            id: id.to_string(),
            zh: zh.to_string(),
            en: Some(en.to_string()),
        }
    }
}

/// Every codelist the DSD refers to, from the declarations and the tree.
fn codelists(tree: &RegionTree) -> Vec<(&'static str, &'static str, &'static str, Vec<Code>)> {
    let indicators = CATALOGUE
        .iter()
        .map(|i| Code::new(i.id, i.zh, i.en))
        .collect();
    // A city without counties (东莞市) has a county of the same code: one code for both.
    let mut seen = std::collections::HashSet::new();
    let regions = tree
        .iter()
        .filter(|r| Level::PUBLISHED.contains(&r.level))
        .map(|r| Code {
            id: ref_area(&r.code()).to_string(),
            zh: r.name.clone(),
            en: None,
        })
        .filter(|code| seen.insert(code.id.clone()))
        .collect();
    let mut breakdowns = vec![Code::new(NOT_APPLICABLE, "不分组", "Not applicable")];
    for indicator in CATALOGUE {
        let field = indicator
            .breakdown
            .and_then(|b| indicator.dataset()?.field(b));
        for choice in field.map(|f| f.kind.choices()).unwrap_or_default() {
            if !breakdowns.iter().any(|c| c.id == choice.code) {
                breakdowns.push(Code::new(choice.code, choice.zh, choice.code));
            }
        }
    }
    let units = [Unit::Count, Unit::Percent, Unit::PerHundred]
        .into_iter()
        .map(|u| {
            let (zh, en) = match u {
                Unit::Count => ("个数", "Count"),
                Unit::Percent => ("百分比", "Percent"),
                Unit::PerHundred => ("每百", "Per hundred"),
            };
            Code::new(unit_code(u), zh, en)
        })
        .collect();
    let states = ReportingState::ALL
        .into_iter()
        .map(|s| Code::new(s.as_str(), s.zh(), s.en()))
        .collect();
    let quality = Quality::ALL
        .into_iter()
        .map(|q| Code::new(q.as_str(), q.zh(), q.en()))
        .collect();
    let confidentiality = vec![
        Code::new("F", "公开", "Free"),
        Code::new(
            "C",
            "因人数过少不予公布",
            "Confidential: too few people behind the value",
        ),
    ];
    vec![
        ("CL_INDICATOR", "指标", "Indicators", indicators),
        (
            "CL_REGION",
            "行政区划",
            "Regions (NBS division codes)",
            regions,
        ),
        ("CL_BREAKDOWN", "分组", "Breakdowns", breakdowns),
        ("CL_UNIT", "单位", "Units", units),
        ("CL_REPORTING_STATE", "报送状态", "Reporting states", states),
        (
            "CL_QUALITY",
            "核实状态",
            "Plausibility check states",
            quality,
        ),
        (
            "CL_CONF_STATUS",
            "保密状态",
            "Confidentiality status",
            confidentiality,
        ),
    ]
}

/// Rows as SDMX-CSV 2.0: `STRUCTURE`, `STRUCTURE_ID`, `ACTION`, then the components. A value
/// nobody reported, or withheld, has an empty `OBS_VALUE` and says why in its attributes.
pub fn csv(rows: &[Row]) -> Result<Vec<u8>, ApiError> {
    let internal = |e: csv::Error| ApiError::Internal(e.to_string());
    let mut out = csv::Writer::from_writer(Vec::new());
    let header = ["STRUCTURE", "STRUCTURE_ID", "ACTION"]
        .into_iter()
        .chain(COMPONENTS.iter().map(|c| c.id));
    out.write_record(header).map_err(internal)?;
    let flow = format!("{AGENCY}:{DATAFLOW_ID}({VERSION})");
    for row in rows {
        let cells = ["dataflow".to_string(), flow.clone(), "I".to_string()]
            .into_iter()
            .chain(COMPONENTS.iter().map(|c| (c.cell)(row)));
        out.write_record(cells).map_err(internal)?;
    }
    out.into_inner()
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// The structure of the indicator values as an SDMX-ML 3.0 structure message.
#[utoipa::path(get, path = "/v1/sdmx/structure", tag = "indicators",
    responses((status = 200, description = "The dataflow, its data structure definition and codelists (SDMX-ML 3.0)",
        content((String = "application/vnd.sdmx.structure+xml; version=3.0.0")))))]
pub async fn structure(State(state): State<AppState>) -> Result<Response, ApiError> {
    let tree = state.regions().await?;
    let xml = structure_message(&tree, chrono::Utc::now())
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let stamp = Stamp::of([Source::Regions(tree.version)]);
    Ok((
        Extension(stamp),
        [(header::CONTENT_TYPE, STRUCTURE_TYPE)],
        xml,
    )
        .into_response())
}

const MESSAGE: &str = "http://www.sdmx.org/resources/sdmxml/schemas/v3_0/message";
const STRUCTURE: &str = "http://www.sdmx.org/resources/sdmxml/schemas/v3_0/structure";
const COMMON: &str = "http://www.sdmx.org/resources/sdmxml/schemas/v3_0/common";

fn urn(class: &str, id: &str) -> String {
    format!("urn:sdmx:org.sdmx.infomodel.{class}={AGENCY}:{id}({VERSION})")
}

/// `<com:Name>` in Chinese and, where there is one, English.
fn names<W: io::Write>(w: &mut Writer<W>, zh: &str, en: Option<&str>) -> io::Result<()> {
    w.create_element("com:Name")
        .with_attribute(("xml:lang", "zh"))
        .write_text_content(BytesText::new(zh))?;
    if let Some(en) = en {
        w.create_element("com:Name")
            .with_attribute(("xml:lang", "en"))
            .write_text_content(BytesText::new(en))?;
    }
    Ok(())
}

fn artefact<'a, W: io::Write>(
    w: &'a mut Writer<W>,
    element: &'a str,
    id: &'a str,
) -> quick_xml::writer::ElementWriter<'a, W> {
    w.create_element(element)
        .with_attribute(("id", id))
        .with_attribute(("agencyID", AGENCY))
        .with_attribute(("version", VERSION))
        .with_attribute(("isExternalReference", "false"))
}

fn structure_message(
    tree: &RegionTree,
    prepared: chrono::DateTime<chrono::Utc>,
) -> io::Result<String> {
    let mut w = Writer::new_with_indent(Vec::new(), b' ', 1);
    w.write_event(quick_xml::events::Event::Decl(
        quick_xml::events::BytesDecl::new("1.0", Some("UTF-8"), None),
    ))?;
    w.create_element("mes:Structure")
        .with_attribute(("xmlns:mes", MESSAGE))
        .with_attribute(("xmlns:str", STRUCTURE))
        .with_attribute(("xmlns:com", COMMON))
        .write_inner_content(|w| {
            w.create_element("mes:Header").write_inner_content(|w| {
                let id = format!("JIAZHENG_STRUCTURE_{}", prepared.timestamp());
                w.create_element("mes:ID")
                    .write_text_content(BytesText::new(&id))?;
                w.create_element("mes:Test")
                    .write_text_content(BytesText::new("false"))?;
                let at = prepared.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                w.create_element("mes:Prepared")
                    .write_text_content(BytesText::new(&at))?;
                w.create_element("mes:Sender")
                    .with_attribute(("id", AGENCY))
                    .write_empty()?;
                Ok(())
            })?;
            w.create_element("mes:Structures")
                .write_inner_content(|w| {
                    dataflows(w)?;
                    codelist_elements(w, tree)?;
                    concepts(w)?;
                    data_structure(w)
                })?;
            Ok(())
        })?;
    String::from_utf8(w.into_inner()).map_err(io::Error::other)
}

fn dataflows<W: io::Write>(w: &mut Writer<W>) -> io::Result<()> {
    w.create_element("str:Dataflows").write_inner_content(|w| {
        artefact(w, "str:Dataflow", DATAFLOW_ID).write_inner_content(|w| {
            names(
                w,
                "家政进社区政策指标",
                Some("Indicators of the home services in communities policy"),
            )?;
            w.create_element("str:Structure")
                .write_text_content(BytesText::new(&urn("datastructure.DataStructure", DSD_ID)))?;
            Ok(())
        })?;
        Ok(())
    })?;
    Ok(())
}

fn codelist_elements<W: io::Write>(w: &mut Writer<W>, tree: &RegionTree) -> io::Result<()> {
    w.create_element("str:Codelists").write_inner_content(|w| {
        for (id, zh, en, codes) in codelists(tree) {
            artefact(w, "str:Codelist", id)
                .with_attribute(("isPartial", "false"))
                .write_inner_content(|w| {
                    names(w, zh, Some(en))?;
                    for code in &codes {
                        w.create_element("str:Code")
                            .with_attribute(("id", code.id.as_str()))
                            .write_inner_content(|w| names(w, &code.zh, code.en.as_deref()))?;
                    }
                    Ok(())
                })?;
        }
        Ok(())
    })?;
    Ok(())
}

fn concepts<W: io::Write>(w: &mut Writer<W>) -> io::Result<()> {
    w.create_element("str:ConceptSchemes")
        .write_inner_content(|w| {
            artefact(w, "str:ConceptScheme", CONCEPTS_ID)
                .with_attribute(("isPartial", "false"))
                .write_inner_content(|w| {
                    names(w, "家政进社区概念", Some("Concepts of jiazheng"))?;
                    for c in &COMPONENTS {
                        w.create_element("str:Concept")
                            .with_attribute(("id", c.id))
                            .write_inner_content(|w| names(w, c.zh, Some(c.en)))?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    Ok(())
}

fn data_structure<W: io::Write>(w: &mut Writer<W>) -> io::Result<()> {
    w.create_element("str:DataStructures")
        .write_inner_content(|w| {
            artefact(w, "str:DataStructure", DSD_ID).write_inner_content(|w| {
                names(
                    w,
                    "家政进社区政策指标的数据结构",
                    Some("Data structure of the policy's indicators"),
                )?;
                w.create_element("str:DataStructureComponents")
                    .write_inner_content(|w| {
                        let of = |role: fn(Role) -> bool| {
                            COMPONENTS.iter().filter(move |c| role(c.role))
                        };
                        w.create_element("str:DimensionList")
                            .write_inner_content(|w| {
                                for (position, c) in of(|r| r == Role::Dimension).enumerate() {
                                    let position = (position + 1).to_string();
                                    w.create_element("str:Dimension")
                                        .with_attribute(("id", c.id))
                                        .with_attribute(("position", position.as_str()))
                                        .write_inner_content(|w| component_body(w, c))?;
                                }
                                for c in of(|r| r == Role::Time) {
                                    w.create_element("str:TimeDimension")
                                        .with_attribute(("id", c.id))
                                        .write_inner_content(|w| component_body(w, c))?;
                                }
                                Ok(())
                            })?;
                        w.create_element("str:AttributeList")
                            .write_inner_content(|w| {
                                for c in of(|r| matches!(r, Role::Attribute { .. })) {
                                    let usage = match c.role {
                                        Role::Attribute { mandatory: true } => "mandatory",
                                        _ => "optional",
                                    };
                                    w.create_element("str:Attribute")
                                        .with_attribute(("id", c.id))
                                        .with_attribute(("usage", usage))
                                        .write_inner_content(|w| {
                                            component_body(w, c)?;
                                            w.create_element("str:AttributeRelationship")
                                                .write_inner_content(|w| {
                                                    w.create_element("str:Observation")
                                                        .write_empty()?;
                                                    Ok(())
                                                })?;
                                            Ok(())
                                        })?;
                                }
                                Ok(())
                            })?;
                        w.create_element("str:MeasureList")
                            .write_inner_content(|w| {
                                for c in of(|r| r == Role::Measure) {
                                    w.create_element("str:Measure")
                                        .with_attribute(("id", c.id))
                                        .write_inner_content(|w| component_body(w, c))?;
                                }
                                Ok(())
                            })?;
                        Ok(())
                    })?;
                Ok(())
            })?;
            Ok(())
        })?;
    Ok(())
}

/// A component's concept and representation.
fn component_body<W: io::Write>(w: &mut Writer<W>, c: &Component) -> io::Result<()> {
    let concept = format!(
        "urn:sdmx:org.sdmx.infomodel.conceptscheme.Concept={AGENCY}:{CONCEPTS_ID}({VERSION}).{}",
        c.id
    );
    w.create_element("str:ConceptIdentity")
        .write_text_content(BytesText::new(&concept))?;
    w.create_element("str:LocalRepresentation")
        .write_inner_content(|w| {
            let text_type = match c.representation {
                Representation::Codes(list) => {
                    w.create_element("str:Enumeration")
                        .write_text_content(BytesText::new(&urn("codelist.Codelist", list)))?;
                    return Ok(());
                }
                Representation::Period => "ObservationalTimePeriod",
                Representation::Double => "Double",
                Representation::Integer => "Integer",
            };
            w.create_element("str:TextFormat")
                .with_attribute(("textType", text_type))
                .write_empty()?;
            Ok(())
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_years_are_sdmx_semesters() {
        assert_eq!(time_period(Period::new(2023, 2).unwrap()), "2023-S2");
    }

    #[test]
    fn every_coded_component_has_its_codelist() {
        let tree = RegionTree::from_regions([]);
        let lists = codelists(&tree);
        for c in &COMPONENTS {
            if let Representation::Codes(id) = c.representation {
                assert!(lists.iter().any(|(l, ..)| *l == id), "{}", c.id);
            }
        }
        let xml = structure_message(&tree, chrono::Utc::now()).unwrap();
        let first = &CATALOGUE[0];
        let code = format!("<str:Code id=\"{}\">", first.id);
        assert!(xml.contains(&code), "{xml}");
        assert!(xml.contains(&format!(
            "<com:Name xml:lang=\"zh\">{}</com:Name>",
            first.zh
        )));
    }
}
