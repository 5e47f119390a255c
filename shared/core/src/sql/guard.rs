//! What an analyst's statement may be, checked before DataFusion plans it: its size, its
//! shape, and the functions it can call.
//!
//! DataFusion's planner and optimizer recurse over the query tree, so a statement of a few
//! kilobytes (`1+1+…` two thousand times, three thousand `UNION ALL`s) overflows the stack and
//! takes the process down. The tokenizer is iterative: counting operators and nesting on its
//! tokens bounds the depth of the tree before any recursive code sees it. Functions are an
//! allow-list enforced by the registry itself ([`scalar_allowed`], [`aggregate_allowed`]):
//! a name not on it is unknown to the session, so builders such as `repeat`, `lpad`,
//! `array_repeat` or `generate_series` cannot allocate without bound.

use deltalake::datafusion::sql::parser::{DFParserBuilder, Statement as DfStatement};
use deltalake::datafusion::sql::sqlparser::ast::Statement;
use deltalake::datafusion::sql::sqlparser::dialect::GenericDialect;
use deltalake::datafusion::sql::sqlparser::keywords::Keyword;
use deltalake::datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::SqlError;

/// Bytes of SQL text.
pub const MAX_SQL_BYTES: usize = 8 * 1024;
/// Tokens other than whitespace.
pub const MAX_TOKENS: usize = 4_000;
/// Parentheses inside parentheses (subqueries, calls, groupings).
pub const MAX_NESTING: usize = 32;
/// Binary operators, comparisons and `AND`/`OR` in the whole statement: each can add a
/// level to an expression tree.
pub const MAX_OPERATORS: usize = 256;
/// `UNION`, `INTERSECT` and `EXCEPT` in the whole statement.
pub const MAX_SET_OPERATIONS: usize = 32;
/// The parser's own recursion limit.
pub const PARSER_RECURSION: usize = 32;

/// Scalar functions an analyst may call: arithmetic, rounding, comparisons, conversions,
/// dates, and string functions whose output is no longer than their input. Not `repeat`,
/// `lpad`/`rpad`, `replace`, `to_char`, regular expressions or any array or map builder.
#[rustfmt::skip]
const SCALAR: &[&str] = &[
    // core
    "coalesce", "nullif", "nvl", "nvl2", "ifnull", "greatest", "least", "arrow_cast",
    "arrow_typeof", "get_field", "isnan", "iszero", "nanvl",
    // math
    "abs", "ceil", "floor", "round", "trunc", "sqrt", "cbrt", "exp", "ln", "log", "log2",
    "log10", "power", "pow", "signum", "pi", "degrees", "radians", "mod",
    // strings that do not grow
    "lower", "upper", "length", "char_length", "character_length", "octet_length",
    "bit_length", "btrim", "trim", "ltrim", "rtrim", "left", "right", "substr", "substring",
    "substr_index", "substring_index", "strpos", "instr", "position", "starts_with",
    "ends_with", "contains", "initcap", "reverse", "split_part", "translate", "ascii",
    "md5", "sha256", "to_hex",
    // dates
    "now", "current_date", "current_time", "date_part", "datepart", "date_trunc",
    "datetrunc", "date_bin", "to_date", "to_timestamp", "make_date", "extract",
];

/// Aggregates whose state the memory pool accounts for and that build no strings or lists.
#[rustfmt::skip]
const AGGREGATE: &[&str] = &[
    "count", "sum", "avg", "mean", "min", "max", "median", "stddev", "stddev_samp",
    "stddev_pop", "var", "var_samp", "var_pop", "var_population", "var_sample",
    "approx_distinct", "approx_median", "approx_percentile_cont", "percentile_cont",
    "bool_and", "bool_or", "corr", "covar", "covar_samp", "covar_pop", "first_value",
    "last_value", "grouping", "any_value", "regr_slope", "regr_intercept", "regr_count",
    "regr_r2",
];

pub fn scalar_allowed(name: &str) -> bool {
    SCALAR.contains(&name)
}

pub fn aggregate_allowed(name: &str) -> bool {
    AGGREGATE.contains(&name)
}

/// Accepts exactly one query statement within the size and shape limits.
pub fn check(sql: &str) -> Result<(), SqlError> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(SqlError::TooBig(format!(
            "the statement has {} bytes; at most {MAX_SQL_BYTES}",
            sql.len()
        )));
    }
    let tokens = Tokenizer::new(&GenericDialect {}, sql)
        .tokenize()
        .map_err(|e| SqlError::Invalid(e.to_string()))?;
    shape(&tokens)?;
    let statements = DFParserBuilder::new(sql)
        .with_recursion_limit(PARSER_RECURSION)
        .build()
        .and_then(|mut parser| parser.parse_statements())
        .map_err(|e| SqlError::Invalid(e.to_string()))?;
    match statements.iter().collect::<Vec<_>>()[..] {
        [DfStatement::Statement(statement)] if matches!(**statement, Statement::Query(_)) => Ok(()),
        [] => Err(SqlError::NotAQuery("the query is empty".into())),
        [_] => Err(SqlError::NotAQuery("this statement is not a SELECT".into())),
        _ => Err(SqlError::NotAQuery(format!(
            "{} statements",
            statements.len()
        ))),
    }
}

/// Counts what can make the query tree deep or wide, on the flat token list.
fn shape(tokens: &[Token]) -> Result<(), SqlError> {
    let (mut count, mut depth, mut operators, mut sets) = (0, 0usize, 0, 0);
    for token in tokens {
        if matches!(token, Token::Whitespace(_)) {
            continue;
        }
        count += 1;
        match token {
            Token::LParen | Token::LBracket => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(SqlError::TooBig(format!(
                        "parentheses nest deeper than {MAX_NESTING}"
                    )));
                }
            }
            Token::RParen | Token::RBracket => depth = depth.saturating_sub(1),
            Token::Word(word) => match word.keyword {
                Keyword::UNION | Keyword::INTERSECT | Keyword::EXCEPT => sets += 1,
                Keyword::AND | Keyword::OR | Keyword::LIKE | Keyword::ILIKE | Keyword::IS => {
                    operators += 1
                }
                _ => {}
            },
            Token::Plus
            | Token::Minus
            | Token::Mul
            | Token::Div
            | Token::Mod
            | Token::StringConcat
            | Token::Eq
            | Token::DoubleEq
            | Token::Neq
            | Token::Lt
            | Token::Gt
            | Token::LtEq
            | Token::GtEq
            | Token::Spaceship
            | Token::Caret
            | Token::Pipe
            | Token::Ampersand
            | Token::ShiftLeft
            | Token::ShiftRight
            | Token::DoubleColon => operators += 1,
            _ => {}
        }
    }
    if count > MAX_TOKENS {
        return Err(SqlError::TooBig(format!(
            "the statement has {count} tokens; at most {MAX_TOKENS}"
        )));
    }
    if operators > MAX_OPERATORS {
        return Err(SqlError::TooBig(format!(
            "the statement has {operators} operators; at most {MAX_OPERATORS}"
        )));
    }
    if sets > MAX_SET_OPERATIONS {
        return Err(SqlError::TooBig(format!(
            "the statement combines {} queries; at most {}",
            sets + 1,
            MAX_SET_OPERATIONS + 1
        )));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn one_select_within_limits() {
        assert!(check("SELECT 1").is_ok());
        assert!(check("WITH a AS (SELECT 1) SELECT * FROM a").is_ok());
        let terms = vec!["1"; MAX_OPERATORS].join("+");
        assert!(check(&format!("SELECT {terms}")).is_ok());
        for bad in [
            "",
            "SELECT 1; SELECT 2",
            "DROP TABLE outlets",
            "INSERT INTO outlets VALUES (1)",
            "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
            "COPY (SELECT 1) TO '/tmp/x.csv'",
            "SET datafusion.execution.target_partitions = 1",
            "EXPLAIN SELECT 1",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn deep_and_wide_statements_are_refused_before_parsing() {
        let too_long = format!("SELECT {}", vec!["1"; MAX_OPERATORS + 2].join("+"));
        assert!(matches!(check(&too_long), Err(SqlError::TooBig(_))));
        let unions = vec!["SELECT 1"; MAX_SET_OPERATIONS + 2].join(" UNION ALL ");
        assert!(matches!(check(&unions), Err(SqlError::TooBig(_))));
        let nested = format!("SELECT {}1{}", "(".repeat(40), ")".repeat(40));
        assert!(matches!(check(&nested), Err(SqlError::TooBig(_))));
        let huge = format!("SELECT '{}'", "x".repeat(MAX_SQL_BYTES));
        assert!(matches!(check(&huge), Err(SqlError::TooBig(_))));
        // Deep nesting the parser itself refuses.
        let subqueries = format!("SELECT {}1{}", "(SELECT ".repeat(30), ")".repeat(30));
        assert!(check(&subqueries).is_err());
    }

    /// Pieces of SQL, valid and hostile, for the guard fuzzer.
    pub(crate) fn sql_piece() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            proptest::sample::select(vec![
                "SELECT",
                "FROM",
                "WHERE",
                "GROUP BY",
                "ORDER BY",
                "UNION ALL",
                "WITH",
                "AS",
                "(",
                ")",
                ",",
                "+",
                "*",
                "-",
                "/",
                "||",
                "=",
                "<>",
                "AND",
                "OR",
                "NOT",
                "IN",
                "LIKE",
                "CASE WHEN",
                "THEN",
                "ELSE",
                "END",
                "indicator_values",
                "regions",
                "outlets",
                "value",
                "region",
                "count(*)",
                "sum(value)",
                "repeat('x', 9)",
                "generate_series(1, 9)",
                "1",
                "'a'",
                "NULL",
                "[1, 2]",
                "::",
                ";",
                "--",
                "/*",
                "*/",
                "\"",
                "'",
                "EXPLAIN",
                "COPY",
                "DROP TABLE",
                "LIMIT 5",
            ])
            .prop_map(str::to_string),
            "[\\PC]{0,12}",
        ]
    }

    proptest::proptest! {
        #![proptest_config(crate::fuzz_config(2000))]

        /// Any text: the guard answers without panicking.
        #[test]
        fn fuzz_any_text_is_judged(sql in "[\\PC\\s]{0,400}") {
            let _ = check(&sql);
        }

        /// Soups of SQL pieces: judged without panicking, and what passes is within limits.
        #[test]
        fn fuzz_sql_soup_is_judged(pieces in proptest::collection::vec(sql_piece(), 0..80)) {
            let sql = pieces.join(" ");
            if check(&sql).is_ok() {
                proptest::prop_assert!(sql.len() <= MAX_SQL_BYTES);
            }
        }

        /// A chain of n operators passes exactly when n is within the limit.
        #[test]
        fn fuzz_operator_chains_are_cut_at_the_limit(n in 0usize..600) {
            let sql = format!("SELECT 1{}", "+1".repeat(n));
            proptest::prop_assert_eq!(check(&sql).is_ok(), n <= MAX_OPERATORS);
        }
    }
}
