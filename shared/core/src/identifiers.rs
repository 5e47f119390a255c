//! National identifiers and their check characters: the unified social credit code
//! (GB 32100-2015) and the resident ID number (GB 11643-1999).

use chrono::NaiveDate;

/// The 31 characters of a credit code, in value order (no I, O, S, V, Z).
const CREDIT_ALPHABET: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";
const CREDIT_WEIGHTS: [u32; 17] = [
    1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeError {
    /// Wrong length or characters.
    Format,
    /// Well formed, but the check character does not match.
    Checksum,
}

fn credit_value(b: u8) -> Option<u32> {
    CREDIT_ALPHABET
        .iter()
        .position(|&c| c == b)
        .map(|p| p as u32)
}

/// The check character for the first 17 characters of a credit code.
pub fn credit_check_char(body: &str) -> Option<char> {
    let bytes = body.as_bytes();
    if bytes.len() != 17 {
        return None;
    }
    let mut sum = 0;
    for (b, w) in bytes.iter().zip(CREDIT_WEIGHTS) {
        sum += credit_value(*b)? * w;
    }
    let check = (31 - sum % 31) % 31;
    Some(CREDIT_ALPHABET[check as usize] as char)
}

/// Checks a unified social credit code (already trimmed and upper-cased).
pub fn check_credit_code(code: &str) -> Result<(), CodeError> {
    if code.len() != 18 || !code.bytes().all(|b| credit_value(b).is_some()) {
        return Err(CodeError::Format);
    }
    match credit_check_char(&code[..17]) {
        Some(c) if code.ends_with(c) => Ok(()),
        _ => Err(CodeError::Checksum),
    }
}

const ID_WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const ID_CHECK: &[u8; 11] = b"10X98765432";

/// The check character for the first 17 digits of an ID number.
pub fn id_check_char(body: &str) -> Option<char> {
    let bytes = body.as_bytes();
    if bytes.len() != 17 || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let sum: u32 = bytes
        .iter()
        .zip(ID_WEIGHTS)
        .map(|(b, w)| u32::from(b - b'0') * w)
        .sum();
    Some(ID_CHECK[(sum % 11) as usize] as char)
}

/// Whether eight ASCII digits spell a real date as YYYYMMDD (without chrono's format parser:
/// this runs for every ID number of a file).
fn is_date(digits: &[u8]) -> bool {
    let number = |range: std::ops::Range<usize>| {
        digits.get(range)?.iter().try_fold(0u32, |n, b| {
            b.is_ascii_digit().then(|| n * 10 + u32::from(b - b'0'))
        })
    };
    digits.len() == 8
        && matches!(
            (number(0..4), number(4..6), number(6..8)),
            (Some(y), Some(m), Some(d)) if NaiveDate::from_ymd_opt(y as i32, m, d).is_some()
        )
}

/// Checks an 18-character resident ID number (trimmed, `x` upper-cased): digits, a real
/// birth date and the check character.
pub fn check_id_number(id: &str) -> Result<(), CodeError> {
    let bytes = id.as_bytes();
    if bytes.len() != 18
        || !bytes[..17].iter().all(u8::is_ascii_digit)
        || !(bytes[17].is_ascii_digit() || bytes[17] == b'X')
    {
        return Err(CodeError::Format);
    }
    if !is_date(&bytes[6..14]) {
        return Err(CodeError::Format);
    }
    match id_check_char(&id[..17]) {
        Some(c) if id.ends_with(c) => Ok(()),
        _ => Err(CodeError::Checksum),
    }
}

/// What a report may show of an ID number: the region digits and nothing else.
pub fn mask_id_number(id: &str) -> String {
    let head: String = id.chars().take(6).collect();
    format!("{head}************")
}

/// Where an ID number appears in any text: an 18-character GB 11643 number with a valid
/// birth date and check character, or the old 15-digit form with a valid date, each with a
/// plausible province code. This is the one detector every report, log line, problem, page
/// and stored value passes through. Digits inside a long run of lowercase hex (the digests and
/// ids this system writes), or after a decimal point, are not taken for one.
pub fn find_id_numbers(text: &str) -> Vec<std::ops::Range<usize>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if !bytes[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        // A trailing check character X belongs to the run.
        let end = if i < bytes.len() && matches!(bytes[i], b'X' | b'x') {
            i + 1
        } else {
            i
        };
        // The digits after a decimal point are a fraction, not a number of their own.
        let fraction = start >= 2 && bytes[start - 1] == b'.' && bytes[start - 2].is_ascii_digit();
        if end - start >= 15 && !fraction && !inside_digest(bytes, start, end) {
            scan_run(text, start, end, &mut found);
        }
        i = end.max(start + 1);
    }
    found
}

/// Every 18- and 15-character window of a run of digits that reads as an ID number.
fn scan_run(text: &str, start: usize, end: usize, found: &mut Vec<std::ops::Range<usize>>) {
    let mut at = start;
    while at < end {
        let hit = [18, 15].into_iter().find(|&len| {
            at + len <= end && {
                let candidate = &text[at..at + len];
                match len {
                    18 => check_id_number(&candidate.to_ascii_uppercase()).is_ok(),
                    _ => old_id_number(candidate),
                }
            }
        });
        match hit {
            Some(len) => {
                found.push(at..at + len);
                at += len;
            }
            None => at += 1,
        }
    }
}

/// The first-generation 15-digit ID number: region, `YYMMDD` birth date, sequence; no check
/// character.
fn old_id_number(candidate: &str) -> bool {
    candidate.bytes().all(|b| b.is_ascii_digit())
        && plausible_province(candidate)
        && is_date(&[b"19", &candidate.as_bytes()[6..12]].concat())
}

/// Province-level codes run from 11 (Beijing) to 82 (Macau).
fn plausible_province(candidate: &str) -> bool {
    candidate
        .get(..2)
        .and_then(|p| p.parse::<u8>().ok())
        .is_some_and(|p| (11..=82).contains(&p))
}

/// Whether the digits at `start..end` sit inside a run of 20 or more lowercase hex
/// characters that also holds a letter: a digest, not something a person typed.
fn inside_digest(bytes: &[u8], start: usize, end: usize) -> bool {
    let hex = |b: &u8| b.is_ascii_digit() || (b'a'..=b'f').contains(b);
    let before = bytes[..start].iter().rev().take_while(|b| hex(b)).count();
    let after = bytes[end..].iter().take_while(|b| hex(b)).count();
    (before > 0 || after > 0)
        && before + (end - start) + after >= 20
        && bytes[end - 1].is_ascii_digit()
}

/// The text with every ID number in it masked as [`mask_id_number`] does; borrowed when
/// there is none.
pub fn mask_id_numbers(text: &str) -> std::borrow::Cow<'_, str> {
    let found = find_id_numbers(text);
    if found.is_empty() {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for range in found {
        out.push_str(&text[last..range.start]);
        out.push_str(&text[range.start..range.start + 6]);
        out.extend(std::iter::repeat_n('*', range.len() - 6));
        last = range.end;
    }
    out.push_str(&text[last..]);
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credit_codes() {
        // Published codes of real companies.
        for code in [
            "91110000100017643K",
            "91440300708461136T",
            "91350100M000100Y43",
        ] {
            assert_eq!(check_credit_code(code), Ok(()), "{code}");
        }
        assert_eq!(
            check_credit_code("91110000100017643A"),
            Err(CodeError::Checksum)
        );
        assert_eq!(
            check_credit_code("9111000010001764"),
            Err(CodeError::Format)
        );
        assert_eq!(
            check_credit_code("91110000I00017643K"),
            Err(CodeError::Format)
        );
        assert_eq!(credit_check_char("91110000100017643"), Some('K'));
    }

    #[test]
    fn id_numbers() {
        // The example number of GB 11643 itself.
        assert_eq!(check_id_number("11010519491231002X"), Ok(()));
        assert_eq!(
            check_id_number("110105194912310021"),
            Err(CodeError::Checksum)
        );
        assert_eq!(
            check_id_number("110105194913310021"),
            Err(CodeError::Format)
        );
        assert_eq!(check_id_number("11010519491231002"), Err(CodeError::Format));
        assert_eq!(id_check_char("11010519491231002"), Some('X'));
        assert_eq!(mask_id_number("11010519491231002X"), "110105************");
    }

    #[test]
    fn id_numbers_are_found_anywhere_and_masked() {
        let text = "员工11010519491231002X，旧证110105491231002，x:110105194912310021 end";
        assert_eq!(
            mask_id_numbers(text),
            "员工110105************，旧证110105*********，x:110105194912310021 end"
        );
        // Lower-case x, two numbers run together, inside a CSV line, as a float's digits.
        assert_eq!(mask_id_numbers("11010519491231002x"), "110105************");
        assert_eq!(
            mask_id_numbers("11010519491231002X11010519491231002X"),
            "110105************110105************"
        );
        assert_eq!(
            mask_id_numbers("a,11010519491231002X,b"),
            "a,110105************,b"
        );
        // Not ID numbers: a credit code, a 13-digit timestamp, a digest holding digits, a
        // 15-digit number without a date, an 18-digit number with a wrong check character.
        for text in [
            "91110000100017643K",
            "1701234567890",
            "9f110105199003071239af3b5c0d",
            "123456789012345",
            "110105194912310021",
            "0.111111111111111140",
        ] {
            assert_eq!(mask_id_numbers(text), text, "{text}");
        }
        assert_eq!(mask_id_numbers("110105199003071239"), "110105************");
        // Upper-case hex is not ours: a number in it is still caught.
        assert_eq!(
            mask_id_numbers("ID11010519491231002X"),
            "ID110105************"
        );
    }
}
