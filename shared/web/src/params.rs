//! Query strings into typed values (`Period`, `Level`, `Format`, an indicator, a dataset):
//! one extractor, and one place that maps a value that does not parse to its problem, so a
//! bad `period` is `bad-period` on every endpoint.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::{DeserializeOwned, IntoDeserializer};

use super::ApiError;

/// The query string as `T`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parse(parts.uri.query().unwrap_or("")).map(Params)
    }
}

/// A query string as `T`; a value that does not parse is the problem its parameter names.
pub fn parse<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let pairs = form_urlencoded::parse(query.as_bytes());
    serde_path_to_error::deserialize(serde_urlencoded::Deserializer::new(pairs)).map_err(|e| {
        let field = e.path().to_string();
        let value = form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| *k == field)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default();
        problem(&field, value, e.inner())
    })
}

/// One parameter's value (from a path segment, a page's form) as the extractor reads it.
pub fn value<T: DeserializeOwned>(field: &str, value: &str) -> Result<T, ApiError> {
    T::deserialize(value.into_deserializer())
        .map_err(|e: serde::de::value::Error| problem(field, value.to_string(), &e))
}

/// The problem of a parameter whose value does not parse.
fn problem(field: &str, value: String, error: &impl std::fmt::Display) -> ApiError {
    match field {
        "period" => ApiError::BadPeriod(value),
        "level" => ApiError::BadLevel(value),
        "format" => ApiError::BadFormat(value),
        "indicator" => ApiError::UnknownIndicator(value),
        "dataset" => ApiError::UnknownDataset(value),
        _ => ApiError::BadQuery(format!("{field}: {error}")),
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;
    use crate::tabular::Format;
    use jiazheng_core::periods::Period;
    use jiazheng_core::regions::Level;

    #[derive(Debug, Deserialize)]
    struct Query {
        period: Option<Period>,
        level: Option<Level>,
        format: Option<Format>,
        limit: Option<u32>,
    }

    #[test]
    fn each_bad_value_is_its_own_problem() {
        let ok: Query = parse("period=2023H2&level=county&format=csv&limit=5").unwrap();
        assert_eq!(ok.period, Some("2023H2".parse().unwrap()));
        assert_eq!(ok.level, Some(Level::County));
        assert_eq!(ok.format, Some(Format::Csv));
        assert_eq!(ok.limit, Some(5));
        let kind = |q: &str| parse::<Query>(q).unwrap_err().kind();
        assert_eq!(kind("period=2100H2"), "bad-period");
        assert_eq!(kind("level=%E5%8E%BF"), "bad-level");
        assert_eq!(kind("format=xls"), "bad-format");
        assert_eq!(kind("limit=-1"), "bad-query");
        match parse::<Query>("period=2023H9").unwrap_err() {
            ApiError::BadPeriod(v) => assert_eq!(v, "2023H9"),
            other => panic!("{other:?}"),
        }
        assert_eq!(value::<Level>("level", "street").unwrap(), Level::Street);
        assert_eq!(
            value::<Period>("period", "2023H").unwrap_err().kind(),
            "bad-period"
        );
    }
}
