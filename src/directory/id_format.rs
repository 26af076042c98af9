//! Text forms of the directory's binary ids: Active Directory's objectGUID and objectSid, and the
//! entryUUIDs a syncrepl feed sends as 16 bytes.

use std::fmt::Write;

/// Formats a 16-byte objectGUID the way Active Directory shows it: the first three fields are
/// little-endian, the rest in byte order (`{b3b2b1b0-b5b4-b7b6-b8b9-b10..b15}`, lower case).
pub fn guid_to_string(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    let order = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    uuid_to_string(&order.map(|i| b[i]))
}

/// Formats a 16-byte UUID (RFC 4122) the way entryUUID is written: byte order, lower case.
pub fn uuid_to_string(bytes: &[u8]) -> Option<String> {
    let b: &[u8; 16] = bytes.try_into().ok()?;
    let hex = |range: std::ops::Range<usize>| {
        b[range].iter().fold(String::new(), |mut s, byte| {
            let _ = write!(s, "{byte:02x}");
            s
        })
    };
    Some(format!(
        "{}-{}-{}-{}-{}",
        hex(0..4),
        hex(4..6),
        hex(6..8),
        hex(8..10),
        hex(10..16)
    ))
}

/// Formats a binary objectSid as `S-1-5-21-…`: revision, 48-bit big-endian identifier authority,
/// then the sub-authorities, each 32-bit little-endian.
pub fn sid_to_string(bytes: &[u8]) -> Option<String> {
    let (&revision, rest) = bytes.split_first()?;
    let (&count, rest) = rest.split_first()?;
    let (authority, subs) = rest.split_at_checked(6)?;
    if subs.len() != usize::from(count) * 4 {
        return None;
    }
    let authority = authority
        .iter()
        .fold(0u64, |acc, &b| (acc << 8) | u64::from(b));
    let mut s = format!("S-{revision}-{authority}");
    for sub in subs.chunks_exact(4) {
        let value = u32::from_le_bytes([sub[0], sub[1], sub[2], sub[3]]);
        let _ = write!(s, "-{value}");
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_written_in_byte_order() {
        let bytes = [
            0x75, 0xb2, 0xd9, 0xac, 0x7d, 0x8d, 0x10, 0x41, 0x99, 0x7f, 0x55, 0xe4, 0x14, 0xbf,
            0x63, 0x64,
        ];
        assert_eq!(
            uuid_to_string(&bytes).as_deref(),
            Some("75b2d9ac-7d8d-1041-997f-55e414bf6364")
        );
        assert_eq!(uuid_to_string(&bytes[..15]), None);
    }

    #[test]
    fn guid_uses_active_directory_byte_order() {
        // Known pair: the bytes of {fe1b8a21-7c9e-4a5f-8b6d-0123456789ab} as stored in objectGUID.
        let bytes = [
            0x21, 0x8a, 0x1b, 0xfe, 0x9e, 0x7c, 0x5f, 0x4a, 0x8b, 0x6d, 0x01, 0x23, 0x45, 0x67,
            0x89, 0xab,
        ];
        assert_eq!(
            guid_to_string(&bytes).as_deref(),
            Some("fe1b8a21-7c9e-4a5f-8b6d-0123456789ab")
        );
    }

    #[test]
    fn guid_of_wrong_length_is_rejected() {
        assert_eq!(guid_to_string(&[0; 15]), None);
        assert_eq!(guid_to_string(&[0; 17]), None);
    }

    #[test]
    fn sid_of_a_domain_user() {
        // S-1-5-21-2597295369-660084033-526266127-1104
        let mut bytes = vec![1, 5, 0, 0, 0, 0, 0, 5];
        for sub in [21u32, 2597295369, 660084033, 526266127, 1104] {
            bytes.extend_from_slice(&sub.to_le_bytes());
        }
        assert_eq!(
            sid_to_string(&bytes).as_deref(),
            Some("S-1-5-21-2597295369-660084033-526266127-1104")
        );
    }

    #[test]
    fn well_known_sid_without_sub_authority_count_mismatch() {
        assert_eq!(
            sid_to_string(&[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]).as_deref(),
            Some("S-1-1-0")
        );
        assert_eq!(
            sid_to_string(&[1, 2, 0, 0, 0, 0, 0, 5, 32, 0, 0, 0]),
            None,
            "truncated"
        );
        assert_eq!(sid_to_string(&[1]), None);
        assert_eq!(sid_to_string(&[]), None);
    }

    proptest::proptest! {
        #[test]
        fn ids_are_written_in_one_form_and_read_back(
            bytes in proptest::array::uniform16(proptest::num::u8::ANY),
            other in proptest::collection::vec(proptest::num::u8::ANY, 0..40),
        ) {
            let uuid = uuid_to_string(&bytes).expect("16 bytes");
            proptest::prop_assert_eq!(uuid.len(), 36);
            proptest::prop_assert!(uuid.bytes().all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            let hex: String = uuid.chars().filter(|c| *c != '-').collect();
            let back: Vec<u8> = (0..16)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
                .collect();
            proptest::prop_assert_eq!(&back[..], &bytes[..]);
            // objectGUID: the first three fields swapped, the rest as they are.
            let guid = guid_to_string(&bytes).expect("16 bytes");
            proptest::prop_assert_eq!(&guid[19..], &uuid[19..]);
            proptest::prop_assert_eq!(&guid[0..2], &uuid[6..8]);
            proptest::prop_assert_eq!(uuid_to_string(&other).is_some(), other.len() == 16);
            proptest::prop_assert_eq!(guid_to_string(&other).is_some(), other.len() == 16);
        }

        #[test]
        fn sids_are_written_as_their_parts(
            revision in proptest::num::u8::ANY,
            authority in 0u64..(1 << 48),
            subs in proptest::collection::vec(proptest::num::u32::ANY, 0..15),
            garbage in proptest::collection::vec(proptest::num::u8::ANY, 0..80),
        ) {
            let mut bytes = vec![revision, subs.len() as u8];
            bytes.extend_from_slice(&authority.to_be_bytes()[2..]);
            for sub in &subs {
                bytes.extend_from_slice(&sub.to_le_bytes());
            }
            let mut expected = format!("S-{revision}-{authority}");
            for sub in &subs {
                expected.push_str(&format!("-{sub}"));
            }
            proptest::prop_assert_eq!(sid_to_string(&bytes), Some(expected));
            // Any bytes: a SID when the count matches the length, never a panic.
            let counted = garbage.len() >= 8 && garbage.len() - 8 == usize::from(garbage[1]) * 4;
            proptest::prop_assert_eq!(sid_to_string(&garbage).is_some(), counted);
        }
    }
}
