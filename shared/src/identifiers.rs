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
    if NaiveDate::parse_from_str(&id[6..14], "%Y%m%d").is_err() {
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
}
